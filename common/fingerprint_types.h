// Vocabulary shared by every module: a Chromaprint fingerprint and its time base.
#ifndef TRAINSPOTTER_COMMON_FINGERPRINT_TYPES_H_
#define TRAINSPOTTER_COMMON_FINGERPRINT_TYPES_H_

#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace trainspotter {

// Chromaprint's default algorithm (CHROMAPRINT_ALGORITHM_TEST2 = 1, what fpcalc uses) works on
// mono 11025 Hz audio, 4096-sample frames with a hop of 4096/3 = 1365 samples: one 32-bit item
// every 1365/11025 s (~0.1238 s, ~8.08 items per second).
inline constexpr int kChromaprintAlgorithm = 1;
inline constexpr int kFingerprintSampleRate = 11025;
inline constexpr int kItemHopSamples = 1365;
inline constexpr double kSecondsPerItem =
    static_cast<double>(kItemHopSamples) / static_cast<double>(kFingerprintSampleRate);
inline constexpr double kItemsPerSecond = 1.0 / kSecondsPerItem;

// Audio one item summarises: Chromaprint's 4096-sample frame plus the 19 following hops that its
// chroma smoothing (5 frames) and image filters (up to 16 frames) reach into: ~2.72 s. Item i
// covers [ItemToSeconds(i), ItemToSeconds(i) + kItemSpanSeconds).
inline constexpr int kItemSpanSamples = 19 * kItemHopSamples + 4096;
inline constexpr double kItemSpanSeconds =
    static_cast<double>(kItemSpanSamples) / static_cast<double>(kFingerprintSampleRate);

// The item Chromaprint's default algorithm gives audio with no energy in its chroma band
// (28-3520 Hz): digital silence, dither, anything its normaliser rounds to zero. Every filter
// then sees an empty image, so the item is the same for all such audio: two unrelated tracks
// that fade into silence arrive at the same item, at their own times.
inline constexpr uint32_t kSilenceItem = 0x256DF977;

// Per-bit weights of a query's items (fingerprint/bit_weights.h): how far each bit's Chromaprint
// filter response lay from the threshold that decided it, 0 (on it: the bit is a coin toss
// under any noise) to kMaxBitWeight (far: it survives). 32 per item, weights[32 * i + b] for bit
// b of item i; an empty vector means every bit at full weight.
inline constexpr int kMaxBitWeight = 15;

// One version of a query's fingerprint (the plain one, a phase, the noise-reduced one, a speed):
// its items and, when the audio they came from was at hand, their bit weights (else empty).
struct WeightedItems {
  std::vector<uint32_t> items;
  std::vector<uint8_t> weights;

  friend bool operator==(const WeightedItems& a, const WeightedItems& b) {
    return a.items == b.items && a.weights == b.weights;
  }
};

// Sub-item phases, in samples at kFingerprintSampleRate: quarters of Chromaprint's 1365-sample
// hop. A clip cut anywhere is rarely on the reference's item grid; one of these lands closer.
// The query's phase variants (fingerprint/query_variants.h) and the matcher's refinement of a
// match (matcher.cc) both use them.
inline constexpr std::array<int, 3> kQueryPhaseOffsets = {341, 682, 1024};

// The query's audio fingerprinted again, re-played at `speed` (times as fast, in [0.5, 2]) and
// without its first `skip_samples` samples at kFingerprintSampleRate: what the matcher's
// look-alike screen asks for, between the cascade's speeds and phases, before it calls a match
// "sounds alike" (matcher.h, DeferredVariants::refine; made by fingerprint/query_variants.h).
using QueryRefiner =
    std::function<absl::StatusOr<std::vector<uint32_t>>(double speed, int skip_samples)>;

// Versions of a query: (start seconds or speed factor, items with their bit weights if any).
using QueryVersions = std::vector<std::pair<double, WeightedItems>>;

// Variants of a query that its caller computes only when the matcher asks for them
// (fingerprint/query_variants.h DeferVariants makes them; matcher.h MatchQuery takes them).
struct DeferredVariants {
  QueryVersions phase_variants;  // tried in order, as MatchQuery::phase_variants
  QueryVersions speed_variants;  // as MatchQuery::speed_variants
  // Optional: the query's audio fingerprinted again at any speed and phase. The look-alike
  // screen tries such versions, between the cascade's speeds and phases, before it demotes a
  // member whose bit errors the query's noise does not explain: a copy re-played at a speed
  // between two of the speed variants, or cut off their item grid, agrees far better at its
  // own speed and phase.
  QueryRefiner refine;
};

// Seconds from the start of the fingerprinted audio to the start of item `index`.
inline double ItemToSeconds(double index) { return index * kSecondsPerItem; }
// Item index nearest to `seconds` (never negative).
int64_t SecondsToItem(double seconds);

// A fingerprint: Chromaprint's raw items plus the duration of the audio they came from.
struct Fingerprint {
  std::vector<uint32_t> items;
  // Duration of the whole decoded input in seconds (may exceed what `items` covers when the
  // fingerprint was limited to the first N seconds, as fpcalc's -length does).
  double duration_seconds = 0.0;
  int algorithm = kChromaprintAlgorithm;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_COMMON_FINGERPRINT_TYPES_H_
