// FingerprintAudioSource (the decoder-independent core) with FakeAudioSource: limits, speed
// variants, errors and warnings.
#include "fingerprint/fingerprinter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "fingerprint/bit_weights.h"
#include "fingerprint/noise_reduction.h"
#include "gtest/gtest.h"
#include "tests/testing/audio_synth.h"
#include "tests/testing/fake_audio_source.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::FakeAudioSource;
using ::trainspotter::testing::SynthesizeMusic;

constexpr int kRate = kFingerprintSampleRate;

// Fraction of differing bits between two item sequences over their common length.
double BitErrorRate(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return 1.0;
  size_t bits = 0;
  for (size_t i = 0; i < n; ++i) bits += static_cast<size_t>(__builtin_popcount(a[i] ^ b[i]));
  return static_cast<double>(bits) / (32.0 * static_cast<double>(n));
}

TEST(FingerprintAudioSourceTest, MatchesFingerprintPcmAndReadsInAnyChunks) {
  const std::vector<int16_t> pcm = SynthesizeMusic(25, kRate, 1, 11);
  auto expected = FingerprintPcm(pcm, kRate, 1);
  ASSERT_TRUE(expected.ok());
  for (size_t chunk : {1u, 333u, 4096u, 100000u}) {
    FakeAudioSource source(pcm, kRate, chunk);
    FingerprintOptions options;
    options.max_seconds = 0;
    auto result = FingerprintAudioSource(source, "fake", options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->fingerprint.items, *expected) << "chunk " << chunk;
    EXPECT_NEAR(result->fingerprinted_seconds, 25.0, 1e-9);
    EXPECT_TRUE(result->warnings.empty());
  }
}

TEST(FingerprintAudioSourceTest, MaxSecondsTruncatesLikeFpcalc) {
  const std::vector<int16_t> pcm = SynthesizeMusic(30, kRate, 1, 12);
  FakeAudioSource source(pcm, kRate, 1000);
  FingerprintOptions options;
  options.max_seconds = 10.5;
  auto result = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(result.ok()) << result.status();
  // fpcalc feeds exactly floor(max_seconds * rate) samples.
  const size_t limit = static_cast<size_t>(10.5 * kRate);
  auto expected = FingerprintPcm(absl::MakeConstSpan(pcm.data(), limit), kRate, 1);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(result->fingerprint.items, *expected);
  EXPECT_DOUBLE_EQ(result->fingerprinted_seconds, static_cast<double>(limit) / kRate);
  // It stops reading once it has what it needs.
  EXPECT_LE(source.decoded_seconds(), 10.5 + 0.1);
}

TEST(FingerprintAudioSourceTest, DurationIsDeclaredElseDecodedAtTheEnd) {
  const std::vector<int16_t> pcm = SynthesizeMusic(12, kRate, 1, 13);
  {
    FakeAudioSource source(pcm, kRate);
    source.set_declared_duration_ms(187356);
    auto result = FingerprintAudioSource(source, "fake", FingerprintOptions());
    ASSERT_TRUE(result.ok());
    EXPECT_DOUBLE_EQ(result->fingerprint.duration_seconds, 187.356);
  }
  {
    FakeAudioSource source(pcm, kRate);  // declares nothing, read to the end
    auto result = FingerprintAudioSource(source, "fake", FingerprintOptions());
    ASSERT_TRUE(result.ok());
    EXPECT_NEAR(result->fingerprint.duration_seconds, 12.0, 1e-9);
  }
  {
    FakeAudioSource source(pcm, kRate);  // declares nothing, not read to the end
    FingerprintOptions options;
    options.max_seconds = 5;
    auto result = FingerprintAudioSource(source, "fake", options);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->fingerprint.duration_seconds, 0.0);
  }
}

TEST(FingerprintAudioSourceTest, SpeedVariantIsTheAudioPlayedFaster) {
  // The same music synthesised at 11025/f samples per second of music, played back at 11025 Hz,
  // is the music sped up by f. Its plain fingerprint must resemble the original's variant for f,
  // not the original's plain fingerprint nor its variant for 1/f.
  constexpr double kFactor = 1.06;
  const std::vector<int16_t> original = SynthesizeMusic(40, kRate, 1, 14);
  const std::vector<int16_t> faster =
      SynthesizeMusic(40 / kFactor, static_cast<int>(std::lround(kRate / kFactor)), 1, 14);

  FakeAudioSource source(original, kRate);
  FingerprintOptions options;
  options.max_seconds = 0;
  options.speed_factors = {kFactor, 1 / kFactor};
  auto result = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->speed_variants.size(), 2u);
  auto query = FingerprintPcm(faster, kRate, 1);
  ASSERT_TRUE(query.ok());

  const double ber_variant = BitErrorRate(result->speed_variants[0], *query);
  const double ber_plain = BitErrorRate(result->fingerprint.items, *query);
  const double ber_inverse = BitErrorRate(result->speed_variants[1], *query);
  EXPECT_LT(ber_variant, 0.2);
  EXPECT_LT(ber_variant + 0.1, ber_plain);
  EXPECT_LT(ber_variant + 0.1, ber_inverse);
  // A variant covers the same audio, played f times as fast: fewer items.
  EXPECT_NEAR(static_cast<double>(result->speed_variants[0].size()),
              static_cast<double>(result->fingerprint.items.size()) / kFactor, 4);
  EXPECT_NEAR(static_cast<double>(result->speed_variants[1].size()),
              static_cast<double>(result->fingerprint.items.size()) * kFactor, 4);
}

TEST(FingerprintAudioSourceTest, PhaseVariantDropsTheFirstKSamples) {
  const std::vector<int16_t> pcm = SynthesizeMusic(20, kRate, 1, 18);
  FakeAudioSource source(pcm, kRate, 1000);
  FingerprintOptions options;
  options.max_seconds = 15;
  options.phase_offsets = {1, 682, 1364};
  auto result = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->phase_variants.size(), 3u);
  const size_t fed = 15 * kRate;
  for (size_t p = 0; p < 3; ++p) {
    const size_t k = static_cast<size_t>(options.phase_offsets[p]);
    auto expected = FingerprintPcm(absl::MakeConstSpan(pcm.data() + k, fed - k), kRate, 1);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(result->phase_variants[p], *expected) << "k = " << k;
  }
  for (int bad : {0, -1, kItemHopSamples}) {
    FakeAudioSource again(pcm, kRate);
    FingerprintOptions bad_options;
    bad_options.phase_offsets = {bad};
    EXPECT_EQ(FingerprintAudioSource(again, "fake", bad_options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(FingerprintAudioSourceTest, NoiseReducedVariantFingerprintsTheReducedAudio) {
  std::vector<int16_t> pcm = SynthesizeMusic(12, kRate, 1, 21);
  uint32_t state = 5;  // a little steady noise for the reduction to find
  for (int16_t& s : pcm) {
    state = state * 1664525u + 1013904223u;
    s = static_cast<int16_t>(std::clamp(s + static_cast<int>(state >> 22) - 512, -32768, 32767));
  }
  FakeAudioSource source(pcm, kRate, 1000);
  FingerprintOptions options;
  options.max_seconds = 10;
  options.noise_reduced_variant = true;
  options.phase_offsets = {341, 1024};
  auto result = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(result.ok()) << result.status();
  // The variant is the fingerprint of the reduced audio of what was fingerprinted ...
  auto reduced = ReduceStationaryNoise(absl::MakeConstSpan(pcm.data(), 10 * kRate));
  ASSERT_TRUE(reduced.ok());
  auto expected = FingerprintPcm(*reduced, kRate, 1);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(result->noise_reduced_items, *expected);
  // ... and its phases are that audio without its first k samples.
  ASSERT_EQ(result->noise_reduced_phase_variants.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    const size_t k = static_cast<size_t>(options.phase_offsets[p]);
    auto phase = FingerprintPcm(absl::MakeConstSpan(*reduced).subspan(k), kRate, 1);
    ASSERT_TRUE(phase.ok());
    EXPECT_EQ(result->noise_reduced_phase_variants[p], *phase) << "k = " << k;
  }
  // ... which differs from the plain fingerprint, on the same item grid.
  EXPECT_NE(result->noise_reduced_items, result->fingerprint.items);
  EXPECT_EQ(result->noise_reduced_items.size(), result->fingerprint.items.size());

  // Not asked for: none.
  FakeAudioSource again(pcm, kRate);
  auto plain = FingerprintAudioSource(again, "fake", FingerprintOptions());
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->noise_reduced_items.empty());
}

TEST(FingerprintAudioSourceTest, NoNoiseReducedVariantForVeryLongInput) {
  const size_t n = static_cast<size_t>((kMaxNoiseReducedSeconds + 5) * kRate);
  std::vector<int16_t> pcm = SynthesizeMusic(20, kRate, 1, 22);
  pcm.resize(n, 0);
  FakeAudioSource source(pcm, kRate, 1 << 16);
  FingerprintOptions options;
  options.max_seconds = 0;
  options.noise_reduced_variant = true;
  auto result = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->fingerprint.items.empty());
  EXPECT_TRUE(result->noise_reduced_items.empty());
  EXPECT_TRUE(result->noise_reduced_phase_variants.empty());
}

TEST(FingerprintAudioSourceTest, DeferredVariantsAreThoseComputedWhileStreaming) {
  std::vector<int16_t> pcm = SynthesizeMusic(12, kRate, 1, 23);
  uint32_t state = 9;
  for (int16_t& s : pcm) {
    state = state * 1664525u + 1013904223u;
    s = static_cast<int16_t>(std::clamp(s + static_cast<int>(state >> 22) - 512, -32768, 32767));
  }
  FingerprintOptions options;
  options.max_seconds = 10;
  options.speed_factors = {1.02, 0.98};
  options.phase_offsets = {341, 1024};
  options.noise_reduced_variant = true;
  FakeAudioSource source(pcm, kRate, 1000);
  auto eager = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(eager.ok()) << eager.status();
  EXPECT_FALSE(eager->variants_deferred());
  EXPECT_TRUE(eager->deferred_pcm.empty());
  ASSERT_EQ(eager->speed_variants.size(), 2u);
  ASSERT_EQ(eager->phase_variants.size(), 2u);
  ASSERT_FALSE(eager->noise_reduced_items.empty());

  options.defer_variants = true;
  FakeAudioSource again(pcm, kRate, 333);  // other chunks: the same items
  auto lazy = FingerprintAudioSource(again, "fake", options);
  ASSERT_TRUE(lazy.ok()) << lazy.status();
  EXPECT_EQ(lazy->fingerprint.items, eager->fingerprint.items);
  // Nothing computed yet; the audio fingerprinted is held instead.
  EXPECT_TRUE(lazy->variants_deferred());
  EXPECT_EQ(lazy->deferred_pcm, std::vector<int16_t>(pcm.begin(), pcm.begin() + 10 * kRate));
  EXPECT_TRUE(lazy->speed_variants.empty());
  EXPECT_TRUE(lazy->phase_variants.empty());
  EXPECT_TRUE(lazy->noise_reduced_items.empty());

  ASSERT_TRUE(ComputeDeferredVariants("fake", options, &*lazy).ok());
  EXPECT_FALSE(lazy->variants_deferred());
  EXPECT_TRUE(lazy->deferred_pcm.empty());
  EXPECT_EQ(lazy->speed_variants, eager->speed_variants);
  EXPECT_EQ(lazy->phase_variants, eager->phase_variants);
  EXPECT_EQ(lazy->noise_reduced_items, eager->noise_reduced_items);
  EXPECT_EQ(lazy->noise_reduced_phase_variants, eager->noise_reduced_phase_variants);
  // Once only: a second call finds nothing deferred and changes nothing.
  ASSERT_TRUE(ComputeDeferredVariants("fake", options, &*lazy).ok());
  EXPECT_EQ(lazy->speed_variants, eager->speed_variants);
}

// With bit_weights, every version computed from the held audio carries the weights of its own
// items (ComputeBitWeights of the audio it was computed from); the speed variants carry none.
// Deferred or not, they are the same.
TEST(FingerprintAudioSourceTest, BitWeightsComeWithEveryVersionOfHeldAudio) {
  const std::vector<int16_t> pcm = SynthesizeMusic(12, kRate, 1, 29);
  FingerprintOptions options;
  options.max_seconds = 10;
  options.speed_factors = {1.02};
  options.phase_offsets = {341, 1024};
  options.noise_reduced_variant = true;
  options.bit_weights = true;
  FakeAudioSource source(pcm, kRate, 1000);
  auto eager = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(eager.ok()) << eager.status();
  const absl::Span<const int16_t> held(pcm.data(), 10 * kRate);
  auto plain = ComputeBitWeights(held, eager->fingerprint.items);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(eager->weights, *plain);
  EXPECT_EQ(eager->weights.size(), 32 * eager->fingerprint.items.size());
  ASSERT_EQ(eager->phase_variant_weights.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    const size_t k = static_cast<size_t>(options.phase_offsets[p]);
    auto w = ComputeBitWeights(held.subspan(k), eager->phase_variants[p]);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(eager->phase_variant_weights[p], *w) << "k = " << k;
  }
  auto reduced = ReduceStationaryNoise(held);
  ASSERT_TRUE(reduced.ok());
  auto nr = ComputeBitWeights(*reduced, eager->noise_reduced_items);
  ASSERT_TRUE(nr.ok());
  EXPECT_EQ(eager->noise_reduced_weights, *nr);
  EXPECT_EQ(eager->noise_reduced_phase_weights.size(), 2u);

  options.defer_variants = true;
  FakeAudioSource again(pcm, kRate, 777);
  auto lazy = FingerprintAudioSource(again, "fake", options);
  ASSERT_TRUE(lazy.ok()) << lazy.status();
  EXPECT_EQ(lazy->weights, eager->weights);  // the plain fingerprint's come at once
  EXPECT_TRUE(lazy->phase_variant_weights.empty());
  ASSERT_TRUE(ComputeDeferredVariants("fake", options, &*lazy).ok());
  EXPECT_EQ(lazy->phase_variant_weights, eager->phase_variant_weights);
  EXPECT_EQ(lazy->noise_reduced_weights, eager->noise_reduced_weights);
  EXPECT_EQ(lazy->noise_reduced_phase_weights, eager->noise_reduced_phase_weights);

  // Not asked for: none.
  options.bit_weights = false;
  FakeAudioSource third(pcm, kRate, 1000);
  auto none = FingerprintAudioSource(third, "fake", options);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->weights.empty());
}

TEST(FingerprintAudioSourceTest, DeferredVariantsKeepTheDecodeLimits) {
  const std::vector<int16_t> pcm = SynthesizeMusic(10, kRate, 1, 24);
  FingerprintOptions options;
  options.max_seconds = 0;
  options.phase_offsets = {682};
  options.noise_reduced_variant = true;
  options.defer_variants = true;
  FakeAudioSource source(pcm, kRate);
  auto result = FingerprintAudioSource(source, "clip.wav", options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->variants_deferred());
  FingerprintResult copy = *result;

  options.limits.deadline = absl::Now() - absl::Seconds(1);
  absl::Status late = ComputeDeferredVariants("clip.wav", options, &*result);
  EXPECT_EQ(late.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(late.message().find("clip.wav"), std::string::npos) << late;

  options.limits.deadline = absl::InfiniteFuture();
  options.limits.interrupt = [] { return true; };
  EXPECT_EQ(ComputeDeferredVariants("clip.wav", options, &copy).code(),
            absl::StatusCode::kCancelled);
}

TEST(FingerprintAudioSourceTest, VeryLongInputGetsItsVariantsWhileStreamingEvenWhenDeferred) {
  // Longer than can be held: the variants catch up on what was held and stream on, item for
  // item as if never deferred (and without the noise-reduced one, as always for such input).
  const size_t n = static_cast<size_t>((kMaxNoiseReducedSeconds + 5) * kRate);
  std::vector<int16_t> pcm = SynthesizeMusic(40, kRate, 1, 25);
  pcm.resize(n, 0);
  std::copy(pcm.begin(), pcm.begin() + 40 * kRate, pcm.end() - 40 * kRate);  // music at the end
  FingerprintOptions options;
  options.max_seconds = 0;
  options.speed_factors = {1.01};
  options.phase_offsets = {682};
  options.noise_reduced_variant = true;
  FakeAudioSource source(pcm, kRate, 1 << 16);
  auto eager = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(eager.ok()) << eager.status();
  options.defer_variants = true;
  FakeAudioSource again(pcm, kRate, 5000);
  auto lazy = FingerprintAudioSource(again, "fake", options);
  ASSERT_TRUE(lazy.ok()) << lazy.status();
  EXPECT_FALSE(lazy->variants_deferred());
  EXPECT_TRUE(lazy->deferred_pcm.empty());
  ASSERT_EQ(lazy->phase_variants.size(), 1u);
  EXPECT_EQ(lazy->phase_variants, eager->phase_variants);
  EXPECT_EQ(lazy->speed_variants, eager->speed_variants);
  EXPECT_TRUE(lazy->noise_reduced_items.empty());
}

TEST(FingerprintAudioSourceTest, RejectsBadOptions) {
  const std::vector<int16_t> pcm = SynthesizeMusic(5, kRate, 1, 15);
  for (double bad_length : {-1.0, std::nan("")}) {
    FakeAudioSource source(pcm, kRate);
    FingerprintOptions options;
    options.max_seconds = bad_length;
    EXPECT_EQ(FingerprintAudioSource(source, "fake", options).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  for (double bad_factor : {0.0, 0.1, 5.0, -1.0}) {
    FakeAudioSource source(pcm, kRate);
    FingerprintOptions options;
    options.speed_factors = {bad_factor};
    EXPECT_EQ(FingerprintAudioSource(source, "fake", options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad_factor;
  }
}

TEST(FingerprintAudioSourceTest, NoAudioAndTooShortAreErrorsNamingTheInput) {
  {
    FakeAudioSource source({}, kRate);
    auto result = FingerprintAudioSource(source, "silence.wav", FingerprintOptions());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find("silence.wav"), std::string::npos);
  }
  {
    FakeAudioSource source(SynthesizeMusic(0.8, kRate, 1, 16), kRate);
    auto result = FingerprintAudioSource(source, "blip.wav", FingerprintOptions());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find("too short"), std::string::npos);
  }
}

TEST(FingerprintAudioSourceTest, SourceErrorsPropagateAndWarningsPassThrough) {
  const std::vector<int16_t> pcm = SynthesizeMusic(20, kRate, 1, 17);
  {
    FakeAudioSource source(pcm, kRate);
    source.FailAfter(5 * kRate, absl::DeadlineExceededError("x.mp3: deadline exceeded"));
    EXPECT_EQ(FingerprintAudioSource(source, "x.mp3", FingerprintOptions()).status().code(),
              absl::StatusCode::kDeadlineExceeded);
  }
  {
    FakeAudioSource source(pcm, kRate);
    source.add_warning("damaged audio skipped at 3.0 s");
    auto result = FingerprintAudioSource(source, "x.mp3", FingerprintOptions());
    ASSERT_TRUE(result.ok());
    ASSERT_EQ(result->warnings.size(), 1u);
    EXPECT_EQ(result->warnings[0], "damaged audio skipped at 3.0 s");
  }
}

}  // namespace
}  // namespace trainspotter
