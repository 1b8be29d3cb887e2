// Membership queries in domain terms (no proto, no gRPC): a fingerprint or audio bytes in, the
// catalogue's decision out. The gRPC handlers convert to and from these types.
//
// Thread-safety: all methods may be called concurrently (Catalog and AudioFingerprinter are).
#ifndef TRAINSPOTTER_SERVICE_QUERY_ENGINE_H_
#define TRAINSPOTTER_SERVICE_QUERY_ENGINE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "fingerprint/query_variants.h"
#include "matcher/catalog.h"
#include "service/audio_fingerprinter.h"

namespace trainspotter {

// Default and cap for the number of matches returned.
inline constexpr int kDefaultMaxMatches = 10;
inline constexpr int kMaxMaxMatches = 100;
inline constexpr int kMaxSpeedVariants = 8;
inline constexpr int kMaxPhaseVariants = 8;

// Optional fingerprints of the same query audio, tried in this order when the plain fingerprint
// finds no member (MatchQuery's cascade).
struct QueryVariants {
  QueryVersions phase;  // (start seconds, items): sub-item phases
  QueryVersions speed;  // (factor, items): other speeds
  // The plain fingerprint's bit weights (common/fingerprint_types.h), if known; empty = every
  // bit at full weight.
  std::vector<uint8_t> weights;
  // More, computed only if those find no member (MatchQuery::deferred_variants): the server's
  // own, for audio it decoded; never a client's.
  std::function<absl::StatusOr<DeferredVariants>()> deferred;
  int deferred_count = 0;
};

struct QuerySpec {
  std::vector<std::string> datasets;  // empty = all
  int max_matches = 0;                // 0 = kDefaultMaxMatches; capped at kMaxMaxMatches
  absl::Time deadline = absl::InfiniteFuture();
  // Polled while decoding: true aborts with CANCELLED (client went away). May be empty.
  std::function<bool()> cancelled;
};

struct QueryOutcome {
  double duration_seconds = 0;
  CatalogMatchResult result;
  std::vector<std::string> warnings;
};

class QueryEngine {
 public:
  // Neither pointer is owned; both must outlive the engine.
  QueryEngine(const Catalog* catalog, AudioFingerprinter* fingerprinter)
      : catalog_(catalog), fingerprinter_(fingerprinter) {}

  // Matches a client-computed fingerprint and its variants. INVALID_ARGUMENT: empty
  // fingerprint, unsupported algorithm, bad speed or phase variant (ValidateSpeedFactors,
  // ValidatePhaseVariants). DEADLINE_EXCEEDED past spec.deadline.
  absl::StatusOr<QueryOutcome> MatchFingerprint(const Fingerprint& fingerprint,
                                                QueryVariants variants,
                                                const QuerySpec& spec) const;

  // Decodes and fingerprints audio bytes (max_seconds 0 = whole file), then matches as
  // `trainspotter query` does: the plain fingerprint, then the sub-item phases of
  // fingerprint/query_variants.h, then `speed_factors` (the client's choice).
  // INVALID_ARGUMENT with the decoder's reason for input that is not (readable) audio.
  absl::StatusOr<QueryOutcome> MatchAudio(absl::string_view bytes, const std::string& name,
                                          double max_seconds,
                                          const std::vector<double>& speed_factors,
                                          const QuerySpec& spec) const;

 private:
  const Catalog* catalog_;
  AudioFingerprinter* fingerprinter_;
};

// Checks speed factors (each in (0.5, 2), at most kMaxSpeedVariants): INVALID_ARGUMENT.
absl::Status ValidateSpeedFactors(const std::vector<double>& factors);
// Checks phase variants (at most kMaxPhaseVariants, each starting in [0, 1) s with at least one
// item): INVALID_ARGUMENT naming the bad one.
absl::Status ValidatePhaseVariants(const QueryVersions& variants);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_QUERY_ENGINE_H_
