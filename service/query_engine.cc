#include "service/query_engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace trainspotter {
namespace {

int EffectiveMaxMatches(int requested) {
  if (requested <= 0) return kDefaultMaxMatches;
  return std::min(requested, kMaxMaxMatches);
}

}  // namespace

absl::Status ValidateSpeedFactors(const std::vector<double>& factors) {
  if (factors.size() > static_cast<size_t>(kMaxSpeedVariants)) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxSpeedVariants, " speed factors, got ", factors.size()));
  }
  for (double factor : factors) {
    if (!(factor > 0.5 && factor < 2.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("speed factor ", factor, " is outside (0.5, 2)"));
    }
  }
  return absl::OkStatus();
}

// Bit weights must cover the items exactly (32 per item; the proto packs 16 bytes per item).
absl::Status ValidateWeights(const std::string& what, const std::vector<uint8_t>& weights,
                             size_t items) {
  if (weights.empty() || weights.size() == 32 * items) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": bit_weights holds ", weights.size() / 2,
                                                 " bytes for ", items, " items (16 per item)"));
}

absl::Status ValidatePhaseVariants(const QueryVersions& variants) {
  if (variants.size() > static_cast<size_t>(kMaxPhaseVariants)) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxPhaseVariants, " phase variants, got ", variants.size()));
  }
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& [start, version] = variants[i];
    // A phase is a fraction of an item (~0.124 s); a second leaves room for any client's grid
    // while keeping query times honest.
    if (!(start >= 0 && start < 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("phase variant ", i, ": start_seconds ", start, " is outside [0, 1)"));
    }
    if (version.items.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("phase variant ", i, " has no items"));
    }
    TS_RETURN_IF_ERROR(
        ValidateWeights(absl::StrCat("phase variant ", i), version.weights, version.items.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<QueryOutcome> QueryEngine::MatchFingerprint(const Fingerprint& fingerprint,
                                                           QueryVariants variants,
                                                           const QuerySpec& spec) const {
  if (fingerprint.algorithm != kChromaprintAlgorithm) {
    return absl::InvalidArgumentError(absl::StrCat("fingerprint algorithm ", fingerprint.algorithm,
                                                   " is not supported (the catalogue uses ",
                                                   kChromaprintAlgorithm, ", fpcalc's default)"));
  }
  if (fingerprint.items.empty()) {
    return absl::InvalidArgumentError("the fingerprint is empty (no audio, or under ~3 s?)");
  }
  if (!(fingerprint.duration_seconds >= 0)) {
    return absl::InvalidArgumentError("duration must be a non-negative number of seconds");
  }
  std::vector<double> factors;
  for (const auto& [factor, version] : variants.speed) factors.push_back(factor);
  TS_RETURN_IF_ERROR(ValidateSpeedFactors(factors));
  TS_RETURN_IF_ERROR(ValidatePhaseVariants(variants.phase));
  TS_RETURN_IF_ERROR(ValidateWeights("fingerprint", variants.weights, fingerprint.items.size()));
  if (absl::Now() >= spec.deadline) {
    return absl::DeadlineExceededError("deadline passed before matching started");
  }

  CatalogQuery query;
  query.items = fingerprint.items;
  query.weights = std::move(variants.weights);
  query.phase_variants = std::move(variants.phase);
  query.speed_variants = std::move(variants.speed);
  query.deferred_variants = std::move(variants.deferred);
  query.deferred_versions = variants.deferred_count;
  query.datasets = spec.datasets;
  query.max_matches = EffectiveMaxMatches(spec.max_matches);
  query.deadline = spec.deadline;
  TS_ASSIGN_OR_RETURN(CatalogMatchResult result, catalog_->Match(query));

  QueryOutcome outcome;
  // A fingerprint that covers more than its stated duration came without a duration (e.g. a
  // compressed fingerprint sent alone): report what the items cover.
  outcome.duration_seconds = std::max(fingerprint.duration_seconds,
                                      ItemToSeconds(static_cast<double>(fingerprint.items.size())));
  outcome.result = std::move(result);
  return outcome;
}

absl::StatusOr<QueryOutcome> QueryEngine::MatchAudio(absl::string_view bytes,
                                                     const std::string& name, double max_seconds,
                                                     const std::vector<double>& speed_factors,
                                                     const QuerySpec& spec) const {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": no audio bytes"));
  if (!(max_seconds >= 0)) {
    return absl::InvalidArgumentError("max_seconds must be >= 0 (0 = the whole file)");
  }
  TS_RETURN_IF_ERROR(ValidateSpeedFactors(speed_factors));

  FingerprintOptions options;
  options.max_seconds = max_seconds;
  options.speed_factors = speed_factors;
  // The sub-item phases `trainspotter query` tries: without them an upload of a short clip cut
  // off the reference's item grid is missed where the CLI finds it.
  RequestPhaseVariants(&options);
  // Computed only if the plain fingerprint finds no member.
  options.defer_variants = true;
  options.limits.deadline = spec.deadline;
  options.limits.interrupt = spec.cancelled;
  TS_ASSIGN_OR_RETURN(FingerprintResult fp,
                      fingerprinter_->FingerprintBuffer(bytes, name, options));

  QueryVariants variants;
  variants.weights = std::move(fp.weights);
  if (fp.variants_deferred()) {
    variants.deferred_count = DeferredVariantCount(options);
    variants.deferred = DeferVariants(name, options, &fp);
  } else {  // too long to hold: computed while it streamed
    variants.phase = TakePhaseVariants(options, &fp);
    variants.speed = TakeSpeedVariants(options, &fp);
  }
  if (fp.fingerprint.items.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": decoded, but too short to fingerprint (",
                     fp.fingerprint.duration_seconds, " s of audio)"));
  }
  TS_ASSIGN_OR_RETURN(QueryOutcome outcome,
                      MatchFingerprint(fp.fingerprint, std::move(variants), spec));
  outcome.duration_seconds = fp.fingerprint.duration_seconds;
  outcome.warnings = std::move(fp.warnings);
  return outcome;
}

}  // namespace trainspotter
