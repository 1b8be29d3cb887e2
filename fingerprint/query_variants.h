// The extra fingerprints a membership query carries for the matcher's cascade (MatchQuery: the
// plain query, then sub-item phases, then speeds). One definition for every path that turns
// audio into a query -- `trainspotter query`, `trainspotter scan` and the server's MatchAudio --
// so that they give the same answer for the same audio.
//
// Thread-safety: plain functions on the caller's data.
#ifndef TRAINSPOTTER_FINGERPRINT_QUERY_VARIANTS_H_
#define TRAINSPOTTER_FINGERPRINT_QUERY_VARIANTS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"

namespace trainspotter {

// Speeds that undo a speed change (pitch and tempo together) of up to +-2% in the query,
// closest to 1 first (the cascade stops at the first member).
inline constexpr std::array<double, 4> kQuerySpeedFactors = {1.01, 0.99, 1.02, 0.98};

// Asks for the phase variants above (options->phase_offsets) and the noise-reduced variant
// (options->noise_reduced_variant); speed factors are left alone because the server's MatchAudio
// takes them from the client.
void RequestPhaseVariants(FingerprintOptions* options);
// Asks for both the phase variants and the speed variants above (what `trainspotter query`
// and `trainspotter scan` send).
void RequestQueryVariants(FingerprintOptions* options);

// Seconds of audio a phase offset of `samples` (at kFingerprintSampleRate) skips.
inline double PhaseOffsetSeconds(int samples) {
  return static_cast<double>(samples) / static_cast<double>(kFingerprintSampleRate);
}

// Moves result->phase_variants out as (PhaseOffsetSeconds(offset), items), in the order of
// options.phase_offsets, followed by result->noise_reduced_items as (0, items) and the
// noise-reduced phases as (PhaseOffsetSeconds(offset), items): the matcher searches every phase
// variant as one more version of the query starting that many seconds in, and the noise-reduced
// one starts where the plain query does. Empty variants (audio too short for that phase) are
// dropped, as the server refuses them; every path drops them alike, so answers stay the same.
// Each carries its bit weights when the result has them (FingerprintOptions::bit_weights).
QueryVersions TakePhaseVariants(const FingerprintOptions& options, FingerprintResult* result);
// Moves result->speed_variants out as (factor, items), in the order of options.speed_factors,
// dropping empty ones likewise.
QueryVersions TakeSpeedVariants(const FingerprintOptions& options, FingerprintResult* result);

// With options.defer_variants: how many variants ComputeDeferredVariants + TakePhaseVariants +
// TakeSpeedVariants yield at most (the phases, the noise-reduced one and its phases, the
// speeds): what the matcher's union bound counts before they are computed. Only a variant of
// audio too short for its phase is ever dropped, and audio that short has too few items to match.
int DeferredVariantCount(const FingerprintOptions& options);

// The computation of a result's deferred variants, for later: takes result->deferred_pcm and
// returns a function that computes them (ComputeDeferredVariants) and hands them out as
// TakePhaseVariants and TakeSpeedVariants do, with a refiner over the same audio. Meant to be
// called at most once. `name` is used in messages.
std::function<absl::StatusOr<DeferredVariants>()> DeferVariants(const std::string& name,
                                                                const FingerprintOptions& options,
                                                                FingerprintResult* result);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_QUERY_VARIANTS_H_
