// FingerprintFile / FingerprintBuffer / FingerprintAudioSource: decoder -> Chromaprint, streamed.
#include "fingerprint/fingerprinter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/audio_source.h"
#include "fingerprint/bit_weights.h"
#include "fingerprint/chromaprint_fingerprinter.h"
#include "fingerprint/ffmpeg_audio_source.h"
#include "fingerprint/narrowband_filter.h"
#include "fingerprint/noise_reduction.h"

namespace trainspotter {
namespace {

constexpr double kMinSpeedFactor = 0.25;
constexpr double kMaxSpeedFactor = 4.0;
constexpr size_t kChunkSamples = 16384;

absl::Status ValidateOptions(const std::string& name, const FingerprintOptions& options) {
  if (!(options.max_seconds >= 0) || !std::isfinite(options.max_seconds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": max_seconds must be a finite number >= 0, not ", options.max_seconds));
  }
  for (double f : options.speed_factors) {
    if (!(f >= kMinSpeedFactor && f <= kMaxSpeedFactor)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": speed factor ", f, " out of range [",
                                                     kMinSpeedFactor, ", ", kMaxSpeedFactor, "]"));
    }
  }
  for (int k : options.phase_offsets) {
    if (k <= 0 || k >= kItemHopSamples) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": phase offset ", k, " out of range (0, ", kItemHopSamples, ")"));
    }
  }
  return absl::OkStatus();
}

// The items of `pcm` (mono, at `rate`) without its first `skip` samples; none if nothing is
// left.
absl::StatusOr<std::vector<uint32_t>> FingerprintFrom(absl::Span<const int16_t> pcm, int rate,
                                                      size_t skip) {
  if (skip >= pcm.size()) return std::vector<uint32_t>();
  return FingerprintPcm(pcm.subspan(skip), rate, 1);
}

// Samples of `rate` audio that FingerprintOptions::phase_offsets skip.
std::vector<uint64_t> PhaseSkips(const FingerprintOptions& options, int rate) {
  std::vector<uint64_t> skips;
  for (int k : options.phase_offsets) {
    skips.push_back(static_cast<uint64_t>(k) * static_cast<uint64_t>(rate) /
                    static_cast<uint64_t>(kFingerprintSampleRate));
  }
  return skips;
}

// The bit weights of phase variants computed from `pcm` (one per entry of `phase_skip`, in
// order), into `weights`.
absl::Status AddPhaseWeights(absl::Span<const int16_t> pcm, const std::vector<uint64_t>& phase_skip,
                             const std::vector<std::vector<uint32_t>>& phases,
                             std::vector<std::vector<uint8_t>>* weights) {
  weights->clear();
  for (size_t p = 0; p < phases.size() && p < phase_skip.size(); ++p) {
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(phase_skip[p], pcm.size()));
    TS_ASSIGN_OR_RETURN(std::vector<uint8_t> w, ComputeBitWeights(pcm.subspan(skip), phases[p]));
    weights->push_back(std::move(w));
  }
  return absl::OkStatus();
}

// The noise-reduced variant of the whole input `pcm` and its phases, into `result`, with their
// bit weights if `weights`.
absl::Status AddNoiseReducedVariants(const std::string& name, absl::Span<const int16_t> pcm,
                                     int rate, const std::vector<uint64_t>& phase_skip,
                                     bool weights, FingerprintResult* result) {
  absl::StatusOr<std::vector<int16_t>> reduced = ReduceStationaryNoise(pcm);
  if (!reduced.ok()) {
    return absl::Status(reduced.status().code(),
                        absl::StrCat(name, ": ", reduced.status().message()));
  }
  // The reduced audio as given, then at the same sub-item phases as the plain one.
  TS_ASSIGN_OR_RETURN(result->noise_reduced_items, FingerprintFrom(*reduced, rate, 0));
  for (uint64_t skip : phase_skip) {
    TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items,
                        FingerprintFrom(*reduced, rate, static_cast<size_t>(skip)));
    result->noise_reduced_phase_variants.push_back(std::move(items));
  }
  if (weights) {
    TS_ASSIGN_OR_RETURN(result->noise_reduced_weights,
                        ComputeBitWeights(*reduced, result->noise_reduced_items));
    TS_RETURN_IF_ERROR(AddPhaseWeights(*reduced, phase_skip, result->noise_reduced_phase_variants,
                                       &result->noise_reduced_phase_weights));
  }
  return absl::OkStatus();
}

// The speed and phase variants of one stream of samples, fed as it arrives.
class VariantStreams {
 public:
  static absl::StatusOr<VariantStreams> Create(const FingerprintOptions& options, int rate) {
    VariantStreams v;
    // Speed variants: the same samples, declared at rate * f, i.e. played f times as fast.
    for (double f : options.speed_factors) {
      const int declared_rate = static_cast<int>(std::lround(rate * f));
      TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> s,
                          ChromaprintStream::Create(declared_rate, 1));
      v.speeds_.push_back(std::move(s));
    }
    // Phase variants: the same stream at the Chromaprint rate, without its first k samples.
    v.phase_skip_ = PhaseSkips(options, rate);
    for (size_t p = 0; p < v.phase_skip_.size(); ++p) {
      TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> s, ChromaprintStream::Create(rate, 1));
      v.phases_.push_back(std::move(s));
    }
    return v;
  }

  // `chunk` holds the samples from position `at` of the stream on.
  absl::Status Feed(absl::Span<const int16_t> chunk, uint64_t at) {
    for (auto& s : speeds_) TS_RETURN_IF_ERROR(s->Feed(chunk));
    for (size_t p = 0; p < phases_.size(); ++p) {
      if (at + chunk.size() <= phase_skip_[p]) continue;
      const size_t skip = phase_skip_[p] > at ? static_cast<size_t>(phase_skip_[p] - at) : 0;
      TS_RETURN_IF_ERROR(phases_[p]->Feed(chunk.subspan(skip)));
    }
    return absl::OkStatus();
  }

  absl::Status Finish(FingerprintResult* result) {
    for (auto& s : speeds_) {
      TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, s->Finish());
      result->speed_variants.push_back(std::move(items));
    }
    for (auto& s : phases_) {
      TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, s->Finish());
      result->phase_variants.push_back(std::move(items));
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<ChromaprintStream>> speeds_;
  std::vector<std::unique_ptr<ChromaprintStream>> phases_;
  std::vector<uint64_t> phase_skip_;
};

}  // namespace

absl::StatusOr<FingerprintResult> FingerprintAudioSource(AudioSource& source,
                                                         const std::string& name,
                                                         const FingerprintOptions& options) {
  TS_RETURN_IF_ERROR(ValidateOptions(name, options));
  const int rate = source.sample_rate();

  TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> main, ChromaprintStream::Create(rate, 1));
  std::unique_ptr<ChromaprintStream> narrowband;
  std::unique_ptr<NarrowbandFilter> band_filter;
  std::vector<int16_t> filtered;
  if (options.narrowband_twin) {
    TS_ASSIGN_OR_RETURN(narrowband, ChromaprintStream::Create(rate, 1));
    band_filter = std::make_unique<NarrowbandFilter>(rate);
  }

  // fpcalc's -length: a whole number of samples, the product truncated.
  const uint64_t limit = options.max_seconds > 0
                             ? static_cast<uint64_t>(std::min(options.max_seconds * rate, 9.0e18))
                             : std::numeric_limits<uint64_t>::max();
  // The noise-reduced variant, and deferred variants, need the whole input: it is kept until it
  // grows too long. The reduction's frame sizes are set for the Chromaprint rate, which the
  // FFmpeg source always yields.
  const bool any_variant = !options.speed_factors.empty() || !options.phase_offsets.empty() ||
                           options.noise_reduced_variant;
  bool defer = options.defer_variants && any_variant && rate == kFingerprintSampleRate;
  std::vector<int16_t> kept;
  bool keep = (options.noise_reduced_variant || defer) && rate == kFingerprintSampleRate;
  const uint64_t keep_limit = static_cast<uint64_t>(kMaxNoiseReducedSeconds * rate);
  std::optional<VariantStreams> variants;
  if (!defer) {
    TS_ASSIGN_OR_RETURN(variants, VariantStreams::Create(options, rate));
  }

  std::vector<int16_t> buffer(kChunkSamples);
  uint64_t fed = 0;
  bool reached_end = false;
  while (fed < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), limit - fed));
    TS_ASSIGN_OR_RETURN(size_t n, source.Read(absl::MakeSpan(buffer.data(), want)));
    if (n == 0) {
      reached_end = true;
      break;
    }
    absl::Span<const int16_t> chunk(buffer.data(), n);
    TS_RETURN_IF_ERROR(main->Feed(chunk));
    if (narrowband != nullptr) {
      band_filter->Process(chunk, &filtered);
      TS_RETURN_IF_ERROR(narrowband->Feed(filtered));
    }
    if (keep && fed + n > keep_limit) {
      keep = false;
      if (defer) {
        // Too long to hold: the variants catch up on what was kept and stream from here on.
        defer = false;
        TS_ASSIGN_OR_RETURN(variants, VariantStreams::Create(options, rate));
        TS_RETURN_IF_ERROR(variants->Feed(kept, 0));
      }
      std::vector<int16_t>().swap(kept);
    }
    if (variants.has_value()) TS_RETURN_IF_ERROR(variants->Feed(chunk, fed));
    if (keep) kept.insert(kept.end(), chunk.begin(), chunk.end());
    fed += n;
  }

  FingerprintResult result;
  result.fingerprinted_seconds = static_cast<double>(fed) / rate;
  if (fed == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": nothing decodable: no audio samples could be decoded"));
  }
  TS_ASSIGN_OR_RETURN(result.fingerprint.items, main->Finish());
  if (result.fingerprint.items.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: too short to fingerprint (%.2f s of audio; Chromaprint needs about 3 s)", name,
        result.fingerprinted_seconds));
  }
  if (narrowband != nullptr) {
    TS_ASSIGN_OR_RETURN(result.narrowband_items, narrowband->Finish());
  }
  // Bit weights need the audio: only input short enough to be held gets them.
  const bool weights = options.bit_weights && keep;
  if (weights) {
    TS_ASSIGN_OR_RETURN(result.weights, ComputeBitWeights(kept, result.fingerprint.items));
  }
  if (defer) {
    result.deferred_pcm = std::move(kept);  // not empty: something was fed
  } else {
    TS_RETURN_IF_ERROR(variants->Finish(&result));
    if (weights) {
      TS_RETURN_IF_ERROR(AddPhaseWeights(kept, PhaseSkips(options, rate), result.phase_variants,
                                         &result.phase_variant_weights));
    }
    if (keep && options.noise_reduced_variant) {
      TS_RETURN_IF_ERROR(
          AddNoiseReducedVariants(name, kept, rate, PhaseSkips(options, rate), weights, &result));
    }
  }
  result.fingerprint.algorithm = kChromaprintAlgorithm;

  const int64_t declared_ms = source.declared_duration_ms();
  if (declared_ms >= 0) {
    result.fingerprint.duration_seconds = static_cast<double>(declared_ms) / 1000.0;
  } else if (reached_end) {
    result.fingerprint.duration_seconds = source.decoded_seconds();
  }
  result.warnings = source.warnings();
  return result;
}

absl::Status ComputeDeferredVariants(const std::string& name, const FingerprintOptions& options,
                                     FingerprintResult* result) {
  if (!result->variants_deferred()) return absl::OkStatus();
  TS_RETURN_IF_ERROR(ValidateOptions(name, options));
  const int rate = kFingerprintSampleRate;  // deferred only at this rate
  std::vector<int16_t> pcm = std::move(result->deferred_pcm);
  result->deferred_pcm.clear();
  // The decode is over, but options.limits still bound the time this takes.
  auto check = [&]() -> absl::Status {
    if (absl::Now() > options.limits.deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(name, ": deadline passed while fingerprinting query variants"));
    }
    if (options.limits.interrupt && options.limits.interrupt()) {
      return absl::CancelledError(absl::StrCat(name, ": cancelled"));
    }
    return absl::OkStatus();
  };
  TS_ASSIGN_OR_RETURN(VariantStreams variants, VariantStreams::Create(options, rate));
  constexpr size_t kStep = 16 * kChunkSamples;  // ~24 s of audio between checks
  for (size_t at = 0; at < pcm.size(); at += kStep) {
    TS_RETURN_IF_ERROR(check());
    const size_t n = std::min(kStep, pcm.size() - at);
    TS_RETURN_IF_ERROR(variants.Feed(absl::MakeConstSpan(pcm).subspan(at, n), at));
  }
  TS_RETURN_IF_ERROR(variants.Finish(result));
  if (options.bit_weights) {
    TS_RETURN_IF_ERROR(AddPhaseWeights(pcm, PhaseSkips(options, rate), result->phase_variants,
                                       &result->phase_variant_weights));
  }
  TS_RETURN_IF_ERROR(check());
  if (options.noise_reduced_variant) {
    TS_RETURN_IF_ERROR(AddNoiseReducedVariants(name, pcm, rate, PhaseSkips(options, rate),
                                               options.bit_weights, result));
  }
  return absl::OkStatus();
}

absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                  const FingerprintOptions& options) {
  TS_RETURN_IF_ERROR(ValidateOptions(path, options));
  TS_ASSIGN_OR_RETURN(std::unique_ptr<AudioSource> source,
                      OpenFfmpegAudioFile(path, options.limits));
  return FingerprintAudioSource(*source, path, options);
}

absl::StatusOr<FingerprintResult> FingerprintBuffer(absl::string_view bytes,
                                                    const std::string& name,
                                                    const FingerprintOptions& options) {
  TS_RETURN_IF_ERROR(ValidateOptions(name, options));
  TS_ASSIGN_OR_RETURN(std::unique_ptr<AudioSource> source,
                      OpenFfmpegAudioBuffer(bytes, name, options.limits));
  return FingerprintAudioSource(*source, name, options);
}

}  // namespace trainspotter
