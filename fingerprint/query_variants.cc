#include "fingerprint/query_variants.h"

#include <memory>
#include <utility>

#include "common/status_macros.h"

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

int DeferredVariantCount(const FingerprintOptions& options) {
  const int phases = static_cast<int>(options.phase_offsets.size());
  return phases + (options.noise_reduced_variant ? 1 + phases : 0) +
         static_cast<int>(options.speed_factors.size());
}

std::function<absl::StatusOr<std::pair<ItemVariants, ItemVariants>>()> DeferVariants(
    const std::string& name, const FingerprintOptions& options, FingerprintResult* result) {
  auto held = std::make_shared<FingerprintResult>();
  held->deferred_pcm = std::move(result->deferred_pcm);
  result->deferred_pcm.clear();
  return [name, options, held]() -> absl::StatusOr<std::pair<ItemVariants, ItemVariants>> {
    TS_RETURN_IF_ERROR(ComputeDeferredVariants(name, options, held.get()));
    ItemVariants phase = TakePhaseVariants(options, held.get());
    ItemVariants speed = TakeSpeedVariants(options, held.get());
    return std::make_pair(std::move(phase), std::move(speed));
  };
}

}  // namespace trainspotter
