// ReduceStationaryNoise: STFT spectral subtraction with a percentile noise estimate.
//
// libavutil is used here for its FFT only (av_tx); decoding stays in ffmpeg_audio_source.cc.
#include "fingerprint/noise_reduction.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"

extern "C" {
#include <libavutil/tx.h>
}

namespace trainspotter {
namespace {

// Frame and hop at 11025 Hz: ~186 ms frames (half of Chromaprint's 4096) with 75% overlap, so a
// Hann window overlap-adds to a constant.
constexpr int kFrame = 2048;
constexpr int kHop = 512;
constexpr int kBins = kFrame / 2 + 1;
// The noise power of a bin is its power in the quietest kNoisePercentile of the frames, scaled
// to a mean: for noise alone a bin's power is exponentially distributed, whose p-quantile is
// -ln(1 - p) times its mean.
constexpr double kNoisePercentile = 0.10;
// The estimate is then smoothed across frequency: each bin takes the median of the estimates of
// the 2 * kNoiseSmoothingBins + 1 bins around it (+-8 bins = +-43 Hz). Stationary noise has a
// smooth spectrum; a note held through the whole clip puts its power into a few bins, whose
// quietest frames are then the note, not noise, and were subtracted with it. Measured on the
// accuracy benchmark's clips (docs/decision.md): +-4 and +-8 bins restored the most, +-12 and
// +-16 fewer.
constexpr int kNoiseSmoothingBins = 8;
// Over-subtraction and spectral floor (power gain). Measured on the accuracy benchmark's clips
// of real music at 0 dB and 10 dB pink-noise SNR (docs/decision.md): alpha 2 restored the most
// 10 s clips at 0 dB; the floor keeps what is left of a bin from falling to nothing, which
// would turn the residue into isolated tones ("musical noise").
constexpr double kOverSubtraction = 2.0;
constexpr double kGainFloor = 0.05;
// Frames sampled for the estimate: enough for a percentile, bounded memory for long input.
constexpr int kMaxEstimateFrames = 512;
// Shorter input is returned unchanged: too few frames for a percentile (1 s = 18 full frames).
constexpr size_t kMinSamples = 11025;

struct TxDeleter {
  void operator()(AVTXContext* ctx) const { av_tx_uninit(&ctx); }
};
using TxPtr = std::unique_ptr<AVTXContext, TxDeleter>;

absl::StatusOr<TxPtr> MakeTx(bool inverse, av_tx_fn* fn) {
  AVTXContext* ctx = nullptr;
  const float scale = inverse ? 1.0f / kFrame : 1.0f;
  const int ret =
      av_tx_init(&ctx, fn, AV_TX_FLOAT_RDFT, inverse ? 1 : 0, kFrame, &scale, AV_TX_UNALIGNED);
  if (ret < 0 || ctx == nullptr) {
    return absl::InternalError("noise reduction: libavutil could not set up its FFT");
  }
  return TxPtr(ctx);
}

// Running median of `values` over 2 * half + 1 entries, the edge entries repeated beyond the ends.
std::vector<double> MedianAcrossBins(const std::vector<double>& values, int half) {
  const int n = static_cast<int>(values.size());
  std::vector<double> out(values.size()), around(static_cast<size_t>(2 * half + 1));
  for (int k = 0; k < n; ++k) {
    for (int j = -half; j <= half; ++j) around[j + half] = values[std::clamp(k + j, 0, n - 1)];
    std::nth_element(around.begin(), around.begin() + half, around.end());
    out[k] = around[half];
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<int16_t>> ReduceStationaryNoise(absl::Span<const int16_t> pcm) {
  std::vector<int16_t> out(pcm.begin(), pcm.end());
  if (pcm.size() < kMinSamples) return out;

  av_tx_fn forward_fn = nullptr, inverse_fn = nullptr;
  auto forward = MakeTx(/*inverse=*/false, &forward_fn);
  if (!forward.ok()) return forward.status();
  auto inverse = MakeTx(/*inverse=*/true, &inverse_fn);
  if (!inverse.ok()) return inverse.status();

  std::vector<float> window(kFrame);
  for (int n = 0; n < kFrame; ++n) {
    window[n] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * n / kFrame));
  }
  // Frame f covers samples [f * kHop - kFrame, f * kHop) of the input (zeros outside it), so
  // that every sample lies under kFrame / kHop frames, whose squared windows sum to the same
  // constant everywhere (1.5 for a periodic Hann at 75% overlap).
  const int64_t length = static_cast<int64_t>(pcm.size());
  const int64_t frames = (length + kFrame) / kHop + 1;
  double overlap = 0;
  for (int n = 0; n < kFrame; n += kHop) overlap += static_cast<double>(window[n]) * window[n];

  std::vector<float> buf(kFrame);
  std::vector<AVComplexFloat> spec(kBins);
  auto analyse = [&](int64_t f) {
    const int64_t begin = f * kHop - kFrame;
    for (int n = 0; n < kFrame; ++n) {
      const int64_t i = begin + n;
      buf[n] = i >= 0 && i < length ? window[n] * static_cast<float>(pcm[i]) : 0.0f;
    }
    forward_fn(forward->get(), spec.data(), buf.data(), sizeof(float));
  };

  // Noise estimate from frames that lie wholly inside the signal.
  const int64_t first = kFrame / kHop, last = length / kHop;  // inclusive
  const int64_t inside = last - first + 1;
  const int64_t step = std::max<int64_t>(1, (inside + kMaxEstimateFrames - 1) / kMaxEstimateFrames);
  std::vector<std::vector<float>> power_by_bin(kBins);
  for (auto& p : power_by_bin) p.reserve(static_cast<size_t>(inside / step + 1));
  for (int64_t f = first; f <= last; f += step) {
    analyse(f);
    for (int k = 0; k < kBins; ++k) {
      power_by_bin[k].push_back(spec[k].re * spec[k].re + spec[k].im * spec[k].im);
    }
  }
  std::vector<double> noise(kBins, 0.0);
  bool any_noise = false;
  for (int k = 0; k < kBins; ++k) {
    std::vector<float>& p = power_by_bin[k];
    const size_t at = static_cast<size_t>(kNoisePercentile * static_cast<double>(p.size() - 1));
    std::nth_element(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(at), p.end());
    noise[k] = p[at] / -std::log(1.0 - kNoisePercentile);
    any_noise = any_noise || noise[k] > 0;
  }
  power_by_bin.clear();
  if (!any_noise) return out;  // digital silence somewhere in every bin: nothing to subtract
  noise = MedianAcrossBins(noise, kNoiseSmoothingBins);

  // Subtract and resynthesise (weighted overlap-add).
  std::vector<float> sum(static_cast<size_t>(length), 0.0f);
  for (int64_t f = 0; f < frames; ++f) {
    analyse(f);
    for (int k = 0; k < kBins; ++k) {
      const double p = spec[k].re * spec[k].re + spec[k].im * spec[k].im;
      const double gain = p > 0 ? std::max(1.0 - kOverSubtraction * noise[k] / p, kGainFloor) : 1.0;
      const float amplitude = static_cast<float>(std::sqrt(gain));
      spec[k].re *= amplitude;
      spec[k].im *= amplitude;
    }
    inverse_fn(inverse->get(), buf.data(), spec.data(), sizeof(AVComplexFloat));
    const int64_t begin = f * kHop - kFrame;
    for (int n = 0; n < kFrame; ++n) {
      const int64_t i = begin + n;
      if (i >= 0 && i < length) sum[i] += window[n] * buf[n];
    }
  }
  for (int64_t i = 0; i < length; ++i) {
    out[i] = static_cast<int16_t>(std::clamp(std::lround(sum[i] / overlap), -32768L, 32767L));
  }
  return out;
}

}  // namespace trainspotter
