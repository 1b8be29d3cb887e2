// Reference fingerprints -> searchable index -> aligned matches with a calibrated decision.
//
// The Matcher holds every reference track's Chromaprint items in memory, keyed by an int64 the
// caller chooses (the catalogue uses its SQLite row id). It finds which references share audio
// with a query, where (offsets in both), and whether the agreement is too strong to be chance.
//
// Thread-safety: Match() may run concurrently from many threads, and concurrently with Add()
// and Remove() (a reader/writer lock inside; writers are short).
#ifndef TRAINSPOTTER_MATCHER_MATCHER_H_
#define TRAINSPOTTER_MATCHER_MATCHER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/fingerprint_types.h"

namespace trainspotter {

struct MatcherOptions {
  // Upper bound on decision false-positive probability per query: a match is a member only if
  // its false_match_probability is at or below this. The probability is calibrated on
  // non-member audio with a 5x margin (matcher/decision.h, tools/null-calibration.sh), so at
  // most about this fraction of non-member queries is called a member.
  double max_false_match_probability = 1e-5;
  // From this many indexed items (~34 hours of audio) on, candidates come from the inverted
  // multi-index (matcher/imi_index.h) instead of an exhaustive scan of every position: the scan
  // costs ~4.5 ms of CPU per indexed hour, the index a fraction of that. Below it, the scan is
  // fast enough and finds everything.
  int64_t approximate_min_items = int64_t{1} << 20;
  // Postings the index reads per query window: this fraction of all indexed windows, at least
  // approximate_min_budget. More finds more heavily distorted clips and costs linearly more
  // (tools/bench-scale.sh measures both against the exhaustive scan).
  double approximate_probe_fraction = 4e-4;
  int approximate_min_budget = 2048;
  // Reference windows indexed: one every `approximate_stride` items (8 or 4). 4 doubles the
  // postings (~15 KB more per indexed hour) and the windows of a query that align with them.
  int approximate_stride = 8;
};

struct MatchQuery {
  std::vector<uint32_t> items;
  // Optional bit weights of `items` (common/fingerprint_types.h: 32 per item, or empty = every
  // bit at full weight); each variant below may carry its own. The decision weighs each bit's
  // agreement by them (decision.h).
  std::vector<uint8_t> weights;
  // Optional fingerprints of the same audio re-played at other speeds (factor, items); tried
  // when the plain query finds no member, to undo speed changes of the query.
  QueryVersions speed_variants;
  // Optional fingerprints of the same audio starting `seconds` later (start, items): sub-item
  // phases that land closer to a reference's item grid, or (start 0) the audio with its noise
  // floor subtracted. Tried in order when the plain query finds no member, before the speed
  // variants. One at start 0 is searched; one at start > 0 is a phase of the last version
  // searched before it (the query, or a variant at start 0), verified at the alignments that
  // search voted for: a fraction of an item later, the same audio aligns within the verifier's
  // offset search, and the index is not searched again.
  QueryVersions phase_variants;
  // Optional: more variants, computed only if none of the versions above finds a member (a
  // caller that holds the audio defers the work). Called at most once; its phase variants are
  // then tried, then its speed variants. It may return at most `deferred_versions` of them in
  // all, and the union bound counts that many from the first pass on, so that the answer is the
  // same as if they had been given up front.
  std::function<absl::StatusOr<DeferredVariants>()> deferred_variants;
  int deferred_versions = 0;
  // If set, only references whose key passes are considered (e.g. a dataset filter).
  std::function<bool(int64_t)> filter;
  int max_matches = 10;
  // Also return the best alignments that did not pass the decision (member = false), for
  // diagnostics; by default only members are returned.
  bool include_non_members = false;
  absl::Time deadline = absl::InfiniteFuture();
  // Scan every reference position even where the approximate index exists (benchmarks measure
  // what the index misses against this).
  bool exhaustive = false;
};

// One reference segment that the query shares audio with.
struct SegmentMatch {
  int64_t key = 0;
  bool member = false;                    // passes the decision rule
  double confidence = 0;                  // 1 - false_match_probability, clamped to [0, 1]
  double false_match_probability = 1;     // chance that a non-member agrees this well, per query
  double query_start = 0, query_end = 0;  // seconds in the query
  double ref_start = 0, ref_end = 0;      // seconds in the reference
  double bit_error_rate = 0.5;            // over the aligned, informative items
  double speed = 1.0;                     // query speed factor that matched (1 = as is)
  // The look-alike screen (decision.h) demoted it: member is false although the chance model
  // passed it, because its bit errors are more than the query's own noise explains.
  bool sounds_alike = false;
  // log10 of the chance that one given alignment of unrelated audio agrees this well (before
  // the correction for the number of alignments searched); more negative = stronger evidence.
  double log10_chance = 0;
};

class Matcher {
 public:
  static absl::StatusOr<std::unique_ptr<Matcher>> Create(const MatcherOptions& options);
  virtual ~Matcher() = default;

  // Adds (or replaces) the reference `key`. INVALID_ARGUMENT if `items` is too short to index.
  virtual absl::Status Add(int64_t key, absl::Span<const uint32_t> items) = 0;
  // Adds the narrowband twin of `key` (its audio band-limited to 300-3400 Hz): searched beside
  // the main fingerprint, reported under the same key. NOT_FOUND if `key` is not present;
  // replaced or removed with the key. The default implementation ignores twins.
  virtual absl::Status AddNarrowband(int64_t key, absl::Span<const uint32_t> items) {
    (void)key;
    (void)items;
    return absl::OkStatus();
  }
  // Removes `key` (and its twin); removing an absent key is OK.
  virtual absl::Status Remove(int64_t key) = 0;
  // Matches best first (members first, then by false_match_probability). An empty result or
  // only non-members means "not in the catalogue". DEADLINE_EXCEEDED past query.deadline.
  virtual absl::StatusOr<std::vector<SegmentMatch>> Match(const MatchQuery& query) const = 0;

  // A hint before a bulk load of about `items` items in all (references and twins): memory is
  // set aside at once instead of growing. The default ignores it.
  virtual absl::Status Reserve(int64_t items) {
    (void)items;
    return absl::OkStatus();
  }
  // Snapshots: everything Add/AddNarrowband loaded, and the approximate index built over it,
  // in one file, so that a large catalogue opens by reading it back instead of re-indexing
  // every fingerprint. `stamp(key)` is stored beside each reference (the catalogue uses it to
  // see which references changed since). Written atomically (temporary file, fsync, rename).
  // The defaults are UNIMPLEMENTED.
  virtual absl::Status WriteSnapshot(const std::string& path,
                                     const std::function<int64_t(int64_t key)>& stamp) {
    (void)path;
    (void)stamp;
    return absl::UnimplementedError("this matcher writes no snapshots");
  }
  // Loads a snapshot into an empty matcher: all or nothing (DATA_LOSS naming the problem if the
  // file is damaged, FAILED_PRECONDITION if references were added already). Returns each
  // reference's (key, stamp).
  virtual absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> ReadSnapshot(
      const std::string& path) {
    (void)path;
    return absl::UnimplementedError("this matcher reads no snapshots");
  }

  // Called after a bulk load (the catalogue calls it at open): builds the approximate index if
  // the references are many enough, and from then on keeps it up to date as references are
  // added (building it when they become many enough). The default does nothing.
  virtual absl::Status FinishLoading() { return absl::OkStatus(); }

  virtual int64_t num_tracks() const = 0;
  virtual int64_t num_items() const = 0;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_MATCHER_H_
