// FingerprintFile / FingerprintBuffer / FingerprintAudioSource: decoder -> Chromaprint, streamed.
#include "fingerprint/fingerprinter.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/audio_source.h"
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

}  // namespace

absl::StatusOr<FingerprintResult> FingerprintAudioSource(AudioSource& source,
                                                         const std::string& name,
                                                         const FingerprintOptions& options) {
  TS_RETURN_IF_ERROR(ValidateOptions(name, options));
  const int rate = source.sample_rate();

  TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> main, ChromaprintStream::Create(rate, 1));
  // Speed variants: the same samples, declared at rate * f, i.e. played f times as fast.
  std::vector<std::unique_ptr<ChromaprintStream>> variants;
  variants.reserve(options.speed_factors.size());
  for (double f : options.speed_factors) {
    const int declared_rate = static_cast<int>(std::lround(rate * f));
    TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> v,
                        ChromaprintStream::Create(declared_rate, 1));
    variants.push_back(std::move(v));
  }
  // Phase variants: the same stream at the Chromaprint rate, without its first k samples.
  std::vector<std::unique_ptr<ChromaprintStream>> phases;
  std::vector<uint64_t> phase_skip;
  for (int k : options.phase_offsets) {
    TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> v, ChromaprintStream::Create(rate, 1));
    phases.push_back(std::move(v));
    phase_skip.push_back(static_cast<uint64_t>(k) * static_cast<uint64_t>(rate) /
                         static_cast<uint64_t>(kFingerprintSampleRate));
  }

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
  // The noise-reduced variant needs the whole input: it is kept until it grows too long. Its
  // frame sizes are set for the Chromaprint rate, which the FFmpeg source always yields.
  std::vector<int16_t> kept;
  bool keep = options.noise_reduced_variant && rate == kFingerprintSampleRate;
  const uint64_t keep_limit = static_cast<uint64_t>(kMaxNoiseReducedSeconds * rate);

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
    for (auto& v : variants) TS_RETURN_IF_ERROR(v->Feed(chunk));
    if (narrowband != nullptr) {
      band_filter->Process(chunk, &filtered);
      TS_RETURN_IF_ERROR(narrowband->Feed(filtered));
    }
    for (size_t p = 0; p < phases.size(); ++p) {
      if (fed + n <= phase_skip[p]) continue;
      const size_t skip = phase_skip[p] > fed ? static_cast<size_t>(phase_skip[p] - fed) : 0;
      TS_RETURN_IF_ERROR(phases[p]->Feed(chunk.subspan(skip)));
    }
    if (keep && fed + n > keep_limit) {
      keep = false;
      std::vector<int16_t>().swap(kept);
    }
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
  for (auto& v : variants) {
    TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, v->Finish());
    result.speed_variants.push_back(std::move(items));
  }
  if (narrowband != nullptr) {
    TS_ASSIGN_OR_RETURN(result.narrowband_items, narrowband->Finish());
  }
  for (auto& v : phases) {
    TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, v->Finish());
    result.phase_variants.push_back(std::move(items));
  }
  if (keep) {
    absl::StatusOr<std::vector<int16_t>> reduced_or = ReduceStationaryNoise(kept);
    if (!reduced_or.ok()) {
      return absl::Status(reduced_or.status().code(),
                          absl::StrCat(name, ": ", reduced_or.status().message()));
    }
    const std::vector<int16_t>& reduced = *reduced_or;
    std::vector<int16_t>().swap(kept);
    // The reduced audio as given, then at the same sub-item phases as the plain one.
    auto fingerprint_from = [&](size_t skip) -> absl::StatusOr<std::vector<uint32_t>> {
      if (skip >= reduced.size()) return std::vector<uint32_t>();
      TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> stream,
                          ChromaprintStream::Create(rate, 1));
      TS_RETURN_IF_ERROR(stream->Feed(absl::MakeConstSpan(reduced).subspan(skip)));
      return stream->Finish();
    };
    TS_ASSIGN_OR_RETURN(result.noise_reduced_items, fingerprint_from(0));
    for (uint64_t skip : phase_skip) {
      TS_ASSIGN_OR_RETURN(std::vector<uint32_t> items, fingerprint_from(static_cast<size_t>(skip)));
      result.noise_reduced_phase_variants.push_back(std::move(items));
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
