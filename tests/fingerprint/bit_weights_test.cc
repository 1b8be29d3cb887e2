#include "fingerprint/bit_weights.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/fingerprint_types.h"
#include "fingerprint/audio_source.h"
#include "fingerprint/ffmpeg_audio_source.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::MissingMusicMessage;
using ::trainspotter::testing::TestMusicFiles;

// The first `seconds` of `path`, decoded as the fingerprinter decodes it (mono, 11025 Hz).
std::vector<int16_t> Decode(const std::string& path, double seconds) {
  auto source = OpenFfmpegAudioFile(path, DecodeLimits());
  EXPECT_TRUE(source.ok()) << source.status();
  std::vector<int16_t> pcm, chunk(1 << 16);
  const size_t limit = static_cast<size_t>(seconds * kFingerprintSampleRate);
  while (source.ok() && pcm.size() < limit) {
    auto n = (*source)->Read(absl::MakeSpan(chunk));
    if (!n.ok() || *n == 0) break;
    pcm.insert(pcm.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  if (pcm.size() > limit) pcm.resize(limit);
  return pcm;
}

double FractionZero(const std::vector<uint8_t>& w) {
  size_t zero = 0;
  for (uint8_t x : w) zero += x == 0;
  return w.empty() ? 0.0 : static_cast<double>(zero) / static_cast<double>(w.size());
}

// The weights recompute Chromaprint's filter responses: where libchromaprint's items and the
// recomputed ones disagree, a bit gets weight 0. On real music they agree on nearly every bit
// (only responses within rounding of 1/30 of a threshold spread round to 0); against items
// with every bit inverted they agree on none, and against another track's items on about half.
TEST(BitWeightsTest, ReproduceChromaprintOnRealMusic) {
  const std::vector<std::string> tracks = TestMusicFiles();
  if (tracks.size() < 2) GTEST_SKIP() << MissingMusicMessage();
  for (size_t t = 0; t < 3 && t + 1 < tracks.size(); ++t) {
    const std::vector<int16_t> pcm = Decode(tracks[t], 40);
    auto items = FingerprintPcm(pcm, kFingerprintSampleRate, 1);
    ASSERT_TRUE(items.ok()) << items.status();
    ASSERT_GT(items->size(), 200u);
    auto weights = ComputeBitWeights(pcm, *items);
    ASSERT_TRUE(weights.ok()) << weights.status();
    ASSERT_EQ(weights->size(), 32 * items->size());
    EXPECT_LT(FractionZero(*weights), 0.08) << tracks[t];
    for (uint8_t w : *weights) ASSERT_LE(w, kMaxBitWeight);

    std::vector<uint32_t> inverted = *items;
    for (uint32_t& x : inverted) x = ~x;
    auto none = ComputeBitWeights(pcm, inverted);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(FractionZero(*none), 1.0) << tracks[t];

    auto other = FingerprintPcm(Decode(tracks[t + 1], 40), kFingerprintSampleRate, 1);
    ASSERT_TRUE(other.ok());
    other->resize(std::min(other->size(), items->size()));
    auto half = ComputeBitWeights(pcm, *other);
    ASSERT_TRUE(half.ok());
    EXPECT_GT(FractionZero(*half), 0.3) << tracks[t];
  }
}

// What the weights are for: noise flips weak bits far more often than strong ones. Real music
// with white noise added at 0 dB SNR: the bits the clean audio's weights call strong (>= 12)
// flip less than a third as often as those they call weak (<= 3).
TEST(BitWeightsTest, StrongBitsSurviveNoise) {
  const std::vector<std::string> tracks = TestMusicFiles();
  if (tracks.empty()) GTEST_SKIP() << MissingMusicMessage();
  const std::vector<int16_t> pcm = Decode(tracks[0], 30);
  double power = 0;
  for (int16_t s : pcm) power += static_cast<double>(s) * s;
  const double sigma = std::sqrt(power / static_cast<double>(pcm.size()));
  std::mt19937 rng(5);
  std::normal_distribution<double> gauss(0.0, sigma);
  std::vector<int16_t> noisy(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) {
    noisy[i] = static_cast<int16_t>(std::clamp(std::lround(pcm[i] + gauss(rng)), -32768L, 32767L));
  }
  auto clean_items = FingerprintPcm(pcm, kFingerprintSampleRate, 1);
  auto noisy_items = FingerprintPcm(noisy, kFingerprintSampleRate, 1);
  ASSERT_TRUE(clean_items.ok() && noisy_items.ok());
  auto weights = ComputeBitWeights(pcm, *clean_items);
  ASSERT_TRUE(weights.ok());
  int64_t strong = 0, strong_flips = 0, weak = 0, weak_flips = 0;
  const size_t n = std::min(clean_items->size(), noisy_items->size());
  for (size_t i = 0; i < n; ++i) {
    const uint32_t flips = (*clean_items)[i] ^ (*noisy_items)[i];
    for (int b = 0; b < 32; ++b) {
      const uint8_t w = (*weights)[32 * i + static_cast<size_t>(b)];
      const int flipped = static_cast<int>((flips >> b) & 1u);
      if (w >= 12) {
        ++strong;
        strong_flips += flipped;
      } else if (w <= 3) {
        ++weak;
        weak_flips += flipped;
      }
    }
  }
  ASSERT_GT(strong, 1000);
  ASSERT_GT(weak, 1000);
  const double strong_rate = static_cast<double>(strong_flips) / static_cast<double>(strong);
  const double weak_rate = static_cast<double>(weak_flips) / static_cast<double>(weak);
  EXPECT_GT(weak_rate, 0.2);  // the noise does damage
  EXPECT_LT(strong_rate, weak_rate / 3) << strong_rate << " vs " << weak_rate;
}

TEST(BitWeightsTest, AudioTooShortForAnItemGivesZeroWeights) {
  const std::vector<int16_t> pcm(2 * kFingerprintSampleRate, 1000);  // 2 s: under one item
  const std::vector<uint32_t> items = {1, 2, 3};
  auto weights = ComputeBitWeights(pcm, items);
  ASSERT_TRUE(weights.ok());
  EXPECT_EQ(*weights, std::vector<uint8_t>(96, 0));
  auto none = ComputeBitWeights(pcm, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace trainspotter
