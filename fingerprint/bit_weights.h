// How far each bit of a query's Chromaprint items can be trusted.
//
// Chromaprint decides each pair of bits of an item by comparing one filter response (a
// difference of log-energies over a patch of the chroma image) with three thresholds. A bit
// whose response lay far from the threshold that decided it survives noise and re-encoding; one
// that lay on the threshold flips with the slightest change. On the accuracy benchmark's noisy
// clips (pink noise at 10 dB and 0 dB SNR) the bits nearest their thresholds disagreed with the
// reference ~45-50% of the time, those furthest from it 5-7%: the matcher weighs each query
// bit's agreement accordingly (matcher/decision.h).
//
// The responses are recomputed here from the PCM, following Chromaprint's default algorithm
// (its frame, chroma, smoothing, normalisation, 16 filters and their thresholds); the items must
// be those libchromaprint computed from the same PCM (fingerprint/fingerprinter.h). A bit on which
// the two disagree (a response within rounding of its threshold) gets weight 0.
//
// Thread-safety: a plain function on the caller's data.
#ifndef TRAINSPOTTER_FINGERPRINT_BIT_WEIGHTS_H_
#define TRAINSPOTTER_FINGERPRINT_BIT_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace trainspotter {

// Weights of `items`, the Chromaprint items of `pcm` (mono, kFingerprintSampleRate): 32 per item,
// weights[32 * i + b] for bit b of item i (b = 0 the lowest), each in 0..kMaxBitWeight
// (common/fingerprint_types.h): the distance of the bit's filter response from its deciding
// threshold, in units of the spread of that filter's thresholds (its lowest to its highest),
// times kMaxBitWeight, capped at kMaxBitWeight. Items the PCM does not yield (there should be
// none) get weight 0. INTERNAL if libavutil's FFT cannot be set up.
absl::StatusOr<std::vector<uint8_t>> ComputeBitWeights(absl::Span<const int16_t> pcm,
                                                       absl::Span<const uint32_t> items);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_BIT_WEIGHTS_H_
