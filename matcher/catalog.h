// The catalogue: training datasets, their tracks' metadata and fingerprints, searchable by sound.
//
// A catalogue is a directory: `catalog.db` (SQLite, WAL mode) holds datasets, tracks and their
// fingerprints; `LOCK` is held (flock) by the one writer. The in-memory Matcher is built from
// the database on Open() and kept in step by every write through this object.
//
// Thread-safety: all methods may be called concurrently; Match() runs concurrently with writes.
// Other processes: any number of kReadOnly catalogues may be open while one kReadWrite writes.
// A reader's metadata look-ups see the latest commits; its Matcher is the snapshot it loaded at
// Open() (tracks deleted since are dropped from its answers; tracks added since need a reopen).
#ifndef TRAINSPOTTER_MATCHER_CATALOG_H_
#define TRAINSPOTTER_MATCHER_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "matcher/matcher.h"

namespace trainspotter {

struct TrackMetadata {
  std::string title, artist, album, source_url, license;
  double duration_seconds = 0;
  // Every other column the dataset lists, in manifest order.
  std::vector<std::pair<std::string, std::string>> extra;
};

struct TrackInput {
  std::string track_id;
  TrackMetadata metadata;
  std::vector<uint32_t> items;
  // Optional: the fingerprint of the same audio band-limited to 300-3400 Hz (FingerprintOptions::
  // narrowband_twin). Indexed beside `items` so that band-limited copies (telephone, small
  // speakers) are found; it costs as much memory again.
  std::vector<uint32_t> narrowband_items;
  // Identifies the content (e.g. hash of file bytes or of the fingerprint); re-ingesting a track
  // whose hash is unchanged is skipped, a changed one replaces the old fingerprints.
  std::string content_hash;
};

struct DatasetInfo {
  std::string name, version, description;
  int64_t tracks = 0;
  double hours = 0;
};

struct TrackInfo {
  std::string dataset, version, track_id;
  TrackMetadata metadata;
  int64_t num_items = 0;
  std::string content_hash;
};

struct CatalogMatch {
  TrackInfo track;
  SegmentMatch segment;
};

struct CatalogMatchResult {
  bool member = false;
  std::vector<CatalogMatch> matches;  // best first
};

struct CatalogQuery {
  std::vector<uint32_t> items;
  std::vector<uint8_t> weights;       // see MatchQuery
  QueryVersions speed_variants;       // see MatchQuery
  std::vector<std::string> datasets;  // empty = all
  int max_matches = 10;
  absl::Time deadline = absl::InfiniteFuture();
  // Also return the best alignments that fail the decision (member = false), for diagnostics.
  bool include_non_members = false;
  QueryVersions phase_variants;                                          // see MatchQuery
  bool exhaustive = false;                                               // see MatchQuery
  std::function<absl::StatusOr<DeferredVariants>()> deferred_variants;   // see MatchQuery
  int deferred_versions = 0;                                             // see MatchQuery
};

class Catalog {
 public:
  enum class Mode { kReadOnly, kReadWrite };

  // Opens (kReadWrite: creates if missing) the catalogue in `dir`. kReadWrite takes the writer
  // lock: FAILED_PRECONDITION naming the holder if another writer has it. A catalogue written
  // by a newer format version is refused with FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& dir, Mode mode,
                                                       const MatcherOptions& options = {});

  struct OpenOptions {
    Mode mode = Mode::kReadOnly;
    MatcherOptions matcher;
    // False: no Matcher is built, so Open() does not read every fingerprint (fast for listing,
    // ingesting and deleting); Match() then returns FAILED_PRECONDITION.
    bool build_index = true;
    // Read the index from DIR/index.snapshot when there is one (WriteIndexSnapshot); false
    // indexes every fingerprint (benchmarks compare the two).
    bool use_index_snapshot = true;
    // Makes the empty Matcher that Open() fills; unset = Matcher::Create. The seam through which
    // tests plug in a fake.
    std::function<absl::StatusOr<std::unique_ptr<Matcher>>(const MatcherOptions&)> matcher_factory;
  };
  // As above, with every option. NOT_FOUND if kReadOnly and `dir` holds no catalogue.
  // Tracks the Matcher refuses to index (e.g. too short) are kept but skipped (num_unindexed()).
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& dir,
                                                       const OpenOptions& options);
  virtual ~Catalog() = default;

  // Creates the dataset (name, version) if needed; updates the description if given. A dataset
  // is keyed by name: an empty `version` keeps the stored one, a stored empty version is filled
  // in, and a different non-empty version is FAILED_PRECONDITION (delete it or use a new name).
  virtual absl::Status EnsureDataset(const std::string& name, const std::string& version,
                                     const std::string& description) = 0;
  // True if (dataset, track_id) is stored with this content hash.
  virtual absl::StatusOr<bool> HasTrack(const std::string& dataset, const std::string& track_id,
                                        const std::string& content_hash) const = 0;
  // Adds or replaces tracks in one transaction; durable when it returns OK (fsync'ed: survives a
  // killed process and a power cut). All or nothing: INVALID_ARGUMENT naming the track if one
  // has an empty id or fingerprint, repeats in the batch, or is refused by the Matcher (too
  // short to index); NOT_FOUND if the dataset does not exist; FAILED_PRECONDITION if read-only.
  virtual absl::Status AddTracks(const std::string& dataset, absl::Span<const TrackInput> tracks) = 0;
  // Deletes one track or (track_id empty) the whole dataset. Returns the number of tracks removed.
  // NOT_FOUND naming the missing dataset or track.
  virtual absl::StatusOr<int64_t> Delete(const std::string& dataset,
                                         const std::string& track_id) = 0;

  virtual absl::StatusOr<std::vector<DatasetInfo>> ListDatasets() const = 0;
  virtual absl::StatusOr<TrackInfo> GetTrack(const std::string& dataset,
                                             const std::string& track_id) const = 0;

  // INVALID_ARGUMENT if query.datasets names an unknown dataset; FAILED_PRECONDITION if opened
  // without an index.
  virtual absl::StatusOr<CatalogMatchResult> Match(const CatalogQuery& query) const = 0;

  virtual int64_t num_tracks() const = 0;
  virtual double hours() const = 0;
  // Stored tracks the Matcher refused at Open() (too short to index); they never match.
  virtual int64_t num_unindexed() const = 0;
  // Checks the database (SQLite integrity_check, foreign keys, every track has its fingerprint).
  // DATA_LOSS listing what is wrong.
  virtual absl::Status CheckIntegrity() const = 0;
  // Checks integrity, then gives the space of deleted tracks back to the file system (an atomic
  // rewrite of the database). The in-memory index needs no compaction of its own: it is rebuilt
  // from the database at every open, and compacts itself when half its items are deleted.
  // FAILED_PRECONDITION if read-only; DATA_LOSS (and nothing rewritten) if damaged.
  virtual absl::Status Compact() = 0;
  // Writes the loaded index to DIR/index.snapshot (atomically), from which later opens read it
  // back instead of re-indexing every fingerprint: a 1M-track catalogue opens in seconds, not
  // a minute. Tracks added, changed or deleted after the snapshot are reconciled at open (read
  // from the database), so a stale snapshot costs time, never answers; a damaged one is
  // ignored with a warning. FAILED_PRECONDITION if read-only or opened without an index.
  virtual absl::Status WriteIndexSnapshot() {
    return absl::UnimplementedError("this catalogue writes no index snapshots");
  }
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_CATALOG_H_
