#include "fingerprint/query_variants.h"

namespace trainspotter {

void RequestPhaseVariants(FingerprintOptions* options) {
  options->phase_offsets.assign(kQueryPhaseOffsets.begin(), kQueryPhaseOffsets.end());
  options->noise_reduced_variant = true;
}

void RequestQueryVariants(FingerprintOptions* options) {
  RequestPhaseVariants(options);
  options->speed_factors.assign(kQuerySpeedFactors.begin(), kQuerySpeedFactors.end());
}

ItemVariants TakePhaseVariants(const FingerprintOptions& options, FingerprintResult* result) {
  ItemVariants out;
  for (size_t i = 0; i < options.phase_offsets.size() && i < result->phase_variants.size(); ++i) {
    if (result->phase_variants[i].empty()) continue;
    out.emplace_back(PhaseOffsetSeconds(options.phase_offsets[i]),
                     std::move(result->phase_variants[i]));
  }
  result->phase_variants.clear();
  if (!result->noise_reduced_items.empty()) {
    out.emplace_back(0.0, std::move(result->noise_reduced_items));
  }
  result->noise_reduced_items.clear();
  for (size_t i = 0;
       i < options.phase_offsets.size() && i < result->noise_reduced_phase_variants.size(); ++i) {
    if (result->noise_reduced_phase_variants[i].empty()) continue;
    out.emplace_back(PhaseOffsetSeconds(options.phase_offsets[i]),
                     std::move(result->noise_reduced_phase_variants[i]));
  }
  result->noise_reduced_phase_variants.clear();
  return out;
}

ItemVariants TakeSpeedVariants(const FingerprintOptions& options, FingerprintResult* result) {
  ItemVariants out;
  for (size_t i = 0; i < options.speed_factors.size() && i < result->speed_variants.size(); ++i) {
    if (result->speed_variants[i].empty()) continue;
    out.emplace_back(options.speed_factors[i], std::move(result->speed_variants[i]));
  }
  result->speed_variants.clear();
  return out;
}

}  // namespace trainspotter
