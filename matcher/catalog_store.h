// The catalogue's on-disk store: one SQLite database (WAL mode) holding datasets, tracks with
// their metadata, and each track's fingerprint items. This is the only code that speaks SQL and
// the only file that includes sqlite3.h (in the .cc; this header does not).
//
// Schema (format version kCatalogFormatVersion, kept in PRAGMA user_version):
//   datasets(id, name UNIQUE, version, description, created_at, updated_at)
//   tracks(id, dataset_id, track_id, title, artist, album, source_url, license, duration,
//          extra /* JSON [[key, value], ...] */, content_hash, num_items, updated_at)
//          UNIQUE(dataset_id, track_id)
//   fingerprints(track_rowid PRIMARY KEY -> tracks.id, items BLOB /* uint32 little-endian */)
// Fingerprints sit in their own table so that metadata scans never page through blobs.
//
// Durability: every write is one transaction; with WAL and synchronous=FULL the WAL is fsync'ed
// at each commit, so a write that returned OK survives a process kill *and* a power cut. (With
// synchronous=NORMAL a commit survives a kill but can be lost on power failure, which would
// break "reported as done means stored"; one fsync per batch of tracks is cheap.)
//
// Thread-safety: none. A CatalogStore is one SQLite connection; the caller serialises use.
// Several CatalogStores (in one or many processes) may open the same file: WAL lets readers
// run while one writer writes. Writers must be serialised by the caller (Catalog's LOCK file).
#ifndef TRAINSPOTTER_MATCHER_CATALOG_STORE_H_
#define TRAINSPOTTER_MATCHER_CATALOG_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "matcher/catalog.h"

struct sqlite3;
struct sqlite3_stmt;

namespace trainspotter {

// Version of the on-disk format this code writes and the newest it reads.
inline constexpr int kCatalogFormatVersion = 1;

struct DatasetRow {
  int64_t id = 0;
  std::string name, version, description;
};

// Where one TrackInput of a PutTracks() batch was stored.
struct PutResult {
  int64_t key = 0;        // tracks.id, the Matcher key
  bool replaced = false;  // an older version of the track was overwritten
  double old_duration_seconds = 0;
};

class CatalogStore {
 public:
  // Opens the database file at `path`. Read-write creates the file and schema if missing;
  // read-only needs an existing catalogue (NOT_FOUND otherwise). FAILED_PRECONDITION if the file
  // was written by a newer format version or is not a trainspotter catalogue; DATA_LOSS if it is
  // not a readable database.
  static absl::StatusOr<std::unique_ptr<CatalogStore>> Open(const std::string& path,
                                                            bool read_only);
  ~CatalogStore();
  CatalogStore(const CatalogStore&) = delete;
  CatalogStore& operator=(const CatalogStore&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // ---- datasets -------------------------------------------------------------------------
  // Creates the dataset, or updates its description (if non-empty) and its version (if it was
  // stored without one). FAILED_PRECONDITION if it exists with another non-empty version.
  absl::StatusOr<DatasetRow> EnsureDataset(const std::string& name, const std::string& version,
                                           const std::string& description);
  // nullopt if there is no such dataset.
  absl::StatusOr<std::optional<DatasetRow>> FindDataset(const std::string& name);
  // Every dataset with its track count and hours, by name.
  absl::StatusOr<std::vector<DatasetInfo>> ListDatasets();

  // ---- tracks ---------------------------------------------------------------------------
  // Adds or replaces `tracks` of dataset `dataset_id` in one transaction. Before committing,
  // `before_commit` (if set) is called with where each track went; if it fails, the transaction
  // is rolled back and its status returned. INVALID_ARGUMENT for an empty track_id, no items or
  // a track_id repeated within the batch (naming it).
  absl::StatusOr<std::vector<PutResult>> PutTracks(
      int64_t dataset_id, absl::Span<const TrackInput> tracks,
      const std::function<absl::Status(absl::Span<const PutResult>)>& before_commit = nullptr);

  // The stored content hash of (dataset, track_id), nullopt if absent.
  absl::StatusOr<std::optional<std::string>> GetContentHash(const std::string& dataset,
                                                            const std::string& track_id);
  // NOT_FOUND if absent.
  absl::StatusOr<TrackInfo> GetTrack(const std::string& dataset, const std::string& track_id);
  // By Matcher key; nullopt if absent (e.g. deleted meanwhile).
  absl::StatusOr<std::optional<TrackInfo>> GetTrackByKey(int64_t key);
  // The fingerprint items of `key`; nullopt if absent.
  absl::StatusOr<std::optional<std::vector<uint32_t>>> GetItems(int64_t key);

  // The narrowband twin's items of `key`; nullopt if it has none.
  absl::StatusOr<std::optional<std::vector<uint32_t>>> GetNarrowbandItems(int64_t key);
  // Calls `fn(key, dataset_id, stamp)` for every track, in key order, without reading
  // fingerprints. `stamp` changes whenever the track's fingerprint may have (it hashes the item
  // count, the content hash and the time of the last write).
  absl::Status ForEachTrackStamp(
      const std::function<absl::Status(int64_t key, int64_t dataset_id, int64_t stamp)>& fn);

  // Calls `fn(key, dataset_id, items)` for every stored fingerprint, in key order. Stops at and
  // returns the first error `fn` returns.
  absl::Status ForEachFingerprint(
      const std::function<absl::Status(int64_t key, int64_t dataset_id,
                                       absl::Span<const uint32_t> items)>& fn);

  // Calls `fn(key, items)` for every stored narrowband twin (see catalog.h), in key order.
  absl::Status ForEachNarrowband(
      const std::function<absl::Status(int64_t key, absl::Span<const uint32_t> items)>& fn);

  struct Removed {
    std::vector<int64_t> keys;
    double seconds = 0;
  };
  // Deletes one track (track_id non-empty) or the whole dataset, in one transaction.
  // NOT_FOUND naming what is missing.
  absl::StatusOr<Removed> Delete(const std::string& dataset, const std::string& track_id);

  // Total tracks and seconds of audio in the catalogue.
  absl::Status Totals(int64_t* tracks, double* seconds);
  // Fingerprint items stored in all, narrowband twins included (sizes an index before loading).
  absl::StatusOr<int64_t> TotalItems();

  // PRAGMA integrity_check plus foreign-key check; DATA_LOSS with SQLite's findings if not ok.
  absl::Status CheckIntegrity();
  // Moves the WAL into the database file (best effort when readers are active).
  absl::Status Checkpoint();
  // Rewrites the database without the free pages that deletes leave (SQLite VACUUM: atomic,
  // so a crash leaves the old file or the new one, never a mix). Skipped when under 1% of
  // the pages are free.
  absl::Status Vacuum();

 private:
  CatalogStore(std::string path, bool read_only) : path_(std::move(path)), read_only_(read_only) {}
  absl::Status Init();
  absl::Status CreateSchema();
  absl::Status CheckWritable() const;
  absl::Status Exec(const char* sql);
  absl::StatusOr<sqlite3_stmt*> Prepare(const char* sql);
  absl::Status Error(const char* what) const;

  std::string path_;
  bool read_only_;
  sqlite3* db_ = nullptr;
  // Prepared statements, keyed by their SQL text's address (the SQL are string literals).
  std::vector<std::pair<const char*, sqlite3_stmt*>> statements_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_CATALOG_STORE_H_
