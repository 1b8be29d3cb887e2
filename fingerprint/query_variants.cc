#include "fingerprint/query_variants.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace trainspotter {

void RequestPhaseVariants(FingerprintOptions* options) {
  options->phase_offsets.assign(kQueryPhaseOffsets.begin(), kQueryPhaseOffsets.end());
  options->noise_reduced_variant = true;
  options->bit_weights = true;
}

void RequestQueryVariants(FingerprintOptions* options) {
  RequestPhaseVariants(options);
  options->speed_factors.assign(kQuerySpeedFactors.begin(), kQuerySpeedFactors.end());
}

namespace {

// Moves `items[i]` (and its weights, if `weights` has as many entries) into `out`, at `at[i]`,
// skipping empty ones.
void TakeVersions(const std::vector<double>& at, std::vector<std::vector<uint32_t>>* items,
                  std::vector<std::vector<uint8_t>>* weights, QueryVersions* out) {
  for (size_t i = 0; i < at.size() && i < items->size(); ++i) {
    if ((*items)[i].empty()) continue;
    WeightedItems v;
    v.items = std::move((*items)[i]);
    if (weights != nullptr && weights->size() == items->size()) {
      v.weights = std::move((*weights)[i]);
    }
    out->emplace_back(at[i], std::move(v));
  }
  items->clear();
  if (weights != nullptr) weights->clear();
}

}  // namespace

QueryVersions TakePhaseVariants(const FingerprintOptions& options, FingerprintResult* result) {
  std::vector<double> starts;
  for (int k : options.phase_offsets) starts.push_back(PhaseOffsetSeconds(k));
  QueryVersions out;
  TakeVersions(starts, &result->phase_variants, &result->phase_variant_weights, &out);
  if (!result->noise_reduced_items.empty()) {
    WeightedItems v;
    v.items = std::move(result->noise_reduced_items);
    v.weights = std::move(result->noise_reduced_weights);
    out.emplace_back(0.0, std::move(v));
  }
  result->noise_reduced_items.clear();
  result->noise_reduced_weights.clear();
  TakeVersions(starts, &result->noise_reduced_phase_variants, &result->noise_reduced_phase_weights,
               &out);
  return out;
}

QueryVersions TakeSpeedVariants(const FingerprintOptions& options, FingerprintResult* result) {
  QueryVersions out;
  TakeVersions(options.speed_factors, &result->speed_variants, nullptr, &out);
  return out;
}

int DeferredVariantCount(const FingerprintOptions& options) {
  const int phases = static_cast<int>(options.phase_offsets.size());
  return phases + (options.noise_reduced_variant ? 1 + phases : 0) +
         static_cast<int>(options.speed_factors.size());
}

std::function<absl::StatusOr<DeferredVariants>()> DeferVariants(const std::string& name,
                                                                const FingerprintOptions& options,
                                                                FingerprintResult* result) {
  auto held = std::make_shared<FingerprintResult>();
  held->deferred_pcm = std::move(result->deferred_pcm);
  result->deferred_pcm.clear();
  return [name, options, held]() -> absl::StatusOr<DeferredVariants> {
    // ComputeDeferredVariants releases the audio; the refiner keeps a copy (22 KB per second).
    auto pcm = std::make_shared<const std::vector<int16_t>>(held->deferred_pcm);
    TS_RETURN_IF_ERROR(ComputeDeferredVariants(name, options, held.get()));
    DeferredVariants out;
    out.phase_variants = TakePhaseVariants(options, held.get());
    out.speed_variants = TakeSpeedVariants(options, held.get());
    const absl::Time deadline = options.limits.deadline;
    out.refine = [name, pcm, deadline](double speed,
                                       int skip_samples) -> absl::StatusOr<std::vector<uint32_t>> {
      if (!(speed >= 0.5 && speed <= 2.0) || skip_samples < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": no refined version at speed ", speed, ", skip ", skip_samples));
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(name, ": deadline passed while refining a match"));
      }
      const size_t skip = static_cast<size_t>(skip_samples);
      if (skip >= pcm->size()) return std::vector<uint32_t>();
      // Declared at rate * speed: the same samples played `speed` times as fast, as the
      // speed variants are made.
      const int declared = static_cast<int>(std::lround(kFingerprintSampleRate * speed));
      return FingerprintPcm(absl::MakeConstSpan(*pcm).subspan(skip), declared, 1);
    };
    return out;
  };
}

}  // namespace trainspotter
