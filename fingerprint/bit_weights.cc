// ComputeBitWeights: Chromaprint's default feature pipeline, recomputed to keep the filter
// responses that libchromaprint quantises away.
//
// The pipeline (Chromaprint 1.5, algorithm "test2"): 4096-sample frames every 1365 samples,
// Hamming window, power spectrum; bins 28-3520 Hz summed into 12 pitch classes (a bin's class is
// the fractional part of its octave above 27.5 Hz, times 12); each class smoothed over 5 frames
// (0.25, 0.75, 1, 0.75, 0.25); each 12-vector divided by its Euclidean norm (zeroed below 0.01).
// Item i is read from frames [i, i + 16) of that image: 16 filters, each log((1 + a) / (1 + b))
// of two sums of rectangles of the image, each quantised by three thresholds into a 2-bit Gray
// code, the first filter in the item's top bits. libavutil is used here for its FFT only.
#include "fingerprint/bit_weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "common/fingerprint_types.h"

extern "C" {
#include <libavutil/tx.h>
}

namespace trainspotter {
namespace {

constexpr int kFrame = 4096;
constexpr int kBins = kFrame / 2 + 1;
constexpr int kClasses = 12;
constexpr int kSmoothing = 5;
constexpr std::array<double, kSmoothing> kSmoothingTaps = {0.25, 0.75, 1.0, 0.75, 0.25};
constexpr double kMinNorm = 0.01;
constexpr int kFilterFrames = 16;  // the widest filter: an item reads 16 rows of the image

// A filter: its shape (0-5), first pitch class, classes spanned, frames spanned; and the three
// thresholds that quantise its response. The values are Chromaprint's default configuration.
struct Classifier {
  int shape, y, height, width;
  double t0, t1, t2;
};
constexpr std::array<Classifier, 16> kClassifiers = {{
    {0, 4, 3, 15, 1.98215, 2.35817, 2.63523},
    {4, 4, 6, 15, -1.03809, -0.651211, -0.282167},
    {1, 0, 4, 16, -0.298702, 0.119262, 0.558497},
    {3, 8, 2, 12, -0.105439, 0.0153946, 0.135898},
    {3, 4, 4, 8, -0.142891, 0.0258736, 0.200632},
    {4, 0, 3, 5, -0.826319, -0.590612, -0.368214},
    {1, 2, 2, 9, -0.557409, -0.233035, 0.0534525},
    {2, 7, 3, 4, -0.0646826, 0.00620476, 0.0784847},
    {2, 6, 2, 16, -0.192387, -0.029699, 0.215855},
    {2, 1, 3, 2, -0.0397818, -0.00568076, 0.0292026},
    {5, 10, 1, 15, -0.53823, -0.369934, -0.190235},
    {3, 6, 2, 10, -0.124877, 0.0296483, 0.139239},
    {2, 1, 1, 14, -0.101475, 0.0225617, 0.231971},
    {3, 5, 6, 4, -0.0799915, -0.00729616, 0.063262},
    {1, 9, 2, 12, -0.272556, 0.019424, 0.302559},
    {3, 4, 2, 14, -0.164292, -0.0321188, 0.0846339},
}};

struct TxDeleter {
  void operator()(AVTXContext* ctx) const { av_tx_uninit(&ctx); }
};

// Rows of the smoothed, normalised chroma image as a summed-area table: sum(r, c) is the sum of
// rows [0, r) and classes [0, c).
class IntegralImage {
 public:
  explicit IntegralImage(size_t rows) : table_((rows + 1) * (kClasses + 1), 0.0) {}
  void SetRow(size_t r, const std::array<double, kClasses>& row) {
    double across = 0;
    for (int c = 0; c < kClasses; ++c) {
      across += row[c];
      at(r + 1, c + 1) = at(r, c + 1) + across;
    }
  }
  // Sum over rows [r1, r2) and classes [c1, c2).
  double Area(size_t r1, int c1, size_t r2, int c2) const {
    return at(r2, c2) - at(r1, c2) - at(r2, c1) + at(r1, c1);
  }

 private:
  double& at(size_t r, int c) { return table_[r * (kClasses + 1) + c]; }
  double at(size_t r, int c) const { return table_[r * (kClasses + 1) + c]; }
  std::vector<double> table_;
};

// The response of filter `f` to the image rows [x, x + f.width).
double Response(const Classifier& f, const IntegralImage& im, size_t x) {
  const size_t w = static_cast<size_t>(f.width);
  const int y = f.y, h = f.height;
  double a = 0, b = 0;
  switch (f.shape) {
    case 0:  // the whole patch
      a = im.Area(x, y, x + w, y + h);
      break;
    case 1:  // upper classes against lower ones
      a = im.Area(x, y + h / 2, x + w, y + h);
      b = im.Area(x, y, x + w, y + h / 2);
      break;
    case 2:  // later frames against earlier ones
      a = im.Area(x + w / 2, y, x + w, y + h);
      b = im.Area(x, y, x + w / 2, y + h);
      break;
    case 3:  // checkerboard: one diagonal pair of quadrants against the other
      a = im.Area(x, y + h / 2, x + w / 2, y + h) + im.Area(x + w / 2, y, x + w, y + h / 2);
      b = im.Area(x, y, x + w / 2, y + h / 2) + im.Area(x + w / 2, y + h / 2, x + w, y + h);
      break;
    case 4:  // the middle third of the classes against the outer two
      a = im.Area(x, y + h / 3, x + w, y + 2 * (h / 3));
      b = im.Area(x, y, x + w, y + h / 3) + im.Area(x, y + 2 * (h / 3), x + w, y + h);
      break;
    default:  // 5: the middle third of the frames against the outer two
      a = im.Area(x + w / 3, y, x + 2 * (w / 3), y + h);
      b = im.Area(x, y, x + w / 3, y + h) + im.Area(x + 2 * (w / 3), y, x + w, y + h);
      break;
  }
  return std::log((1.0 + a) / (1.0 + b));
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ComputeBitWeights(absl::Span<const int16_t> pcm,
                                                       absl::Span<const uint32_t> items) {
  std::vector<uint8_t> weights(items.size() * 32, 0);
  const size_t frames =
      pcm.size() >= static_cast<size_t>(kFrame) ? (pcm.size() - kFrame) / kItemHopSamples + 1 : 0;
  if (frames < static_cast<size_t>(kSmoothing + kFilterFrames - 1) || items.empty()) {
    return weights;
  }
  AVTXContext* raw = nullptr;
  av_tx_fn fft = nullptr;
  const float scale = 1.0f;
  if (av_tx_init(&raw, &fft, AV_TX_FLOAT_RDFT, 0, kFrame, &scale, AV_TX_UNALIGNED) < 0 ||
      raw == nullptr) {
    return absl::InternalError("bit weights: libavutil could not set up its FFT");
  }
  std::unique_ptr<AVTXContext, TxDeleter> tx(raw);

  // Pitch class of each spectrum bin in Chromaprint's band (-1 outside it).
  std::array<int, kBins> pitch_class;
  pitch_class.fill(-1);
  const int lo = std::max(1, static_cast<int>(std::round(kFrame * 28.0 / kFingerprintSampleRate)));
  const int hi =
      std::min(kFrame / 2, static_cast<int>(std::round(kFrame * 3520.0 / kFingerprintSampleRate)));
  for (int i = lo; i < hi; ++i) {
    const double freq = static_cast<double>(i) * kFingerprintSampleRate / kFrame;
    const double octave = std::log2(freq / (440.0 / 16.0));
    pitch_class[i] = static_cast<int>(kClasses * (octave - std::floor(octave)));
  }
  // Hamming window, scaled from 16-bit samples to [-1, 1).
  std::vector<float> window(kFrame);
  for (int n = 0; n < kFrame; ++n) {
    window[n] =
        static_cast<float>((0.54 - 0.46 * std::cos(n * 2.0 * M_PI / (kFrame - 1))) / 32767.0);
  }

  std::vector<std::array<double, kClasses>> chroma(frames);
  std::vector<float> in(kFrame);
  std::vector<AVComplexFloat> out(kBins);
  for (size_t f = 0; f < frames; ++f) {
    const int16_t* s = pcm.data() + f * kItemHopSamples;
    for (int n = 0; n < kFrame; ++n) in[n] = s[n] * window[n];
    fft(tx.get(), out.data(), in.data(), sizeof(AVComplexFloat));
    chroma[f].fill(0.0);
    for (int i = lo; i < hi; ++i) {
      const double re = out[i].re, im = out[i].im;
      chroma[f][pitch_class[i]] += re * re + im * im;
    }
  }
  const size_t rows = frames - kSmoothing + 1;
  IntegralImage image(rows);
  for (size_t r = 0; r < rows; ++r) {
    std::array<double, kClasses> row{};
    for (int j = 0; j < kSmoothing; ++j) {
      for (int c = 0; c < kClasses; ++c) row[c] += kSmoothingTaps[j] * chroma[r + j][c];
    }
    double norm = 0;
    for (double v : row) norm += v * v;
    norm = std::sqrt(norm);
    for (double& v : row) v = norm < kMinNorm ? 0.0 : v / norm;
    image.SetRow(r, row);
  }

  const size_t computed = std::min(items.size(), rows - kFilterFrames + 1);
  static constexpr std::array<uint32_t, 4> kGray = {0, 1, 3, 2};
  for (size_t i = 0; i < computed; ++i) {
    for (int k = 0; k < 16; ++k) {
      const Classifier& c = kClassifiers[k];
      const double v = Response(c, image, i);
      const int level = (v >= c.t0) + (v >= c.t1) + (v >= c.t2);
      const uint32_t code = kGray[level];
      const int shift = 2 * (15 - k);
      const uint32_t expected = (items[i] >> shift) & 3u;
      const double spread = c.t2 - c.t0;
      // The high bit says which side of t1 the response lies; the low one whether it lies
      // between t0 and t2.
      const double margin_high = std::abs(v - c.t1) / spread;
      const double margin_low = std::min(std::abs(v - c.t0), std::abs(v - c.t2)) / spread;
      auto weight = [](double margin) {
        return static_cast<uint8_t>(
            std::min<double>(kMaxBitWeight, std::round(kMaxBitWeight * margin)));
      };
      uint8_t* w = &weights[32 * i + static_cast<size_t>(shift)];
      if (((code ^ expected) & 2u) == 0) w[1] = weight(margin_high);
      if (((code ^ expected) & 1u) == 0) w[0] = weight(margin_low);
    }
  }
  return weights;
}

}  // namespace trainspotter
