#include "fingerprint/query_variants.h"

#include <cstdint>
#include <vector>

#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "tests/testing/audio_synth.h"
#include "tests/testing/fake_audio_source.h"

namespace trainspotter {
namespace {

// The variants `trainspotter query`, `scan` and the server's MatchAudio use: in the cascade's
// order, phase offsets in seconds at the Chromaprint rate, then the noise-reduced fingerprint,
// empty ones dropped.
TEST(QueryVariantsTest, TakeKeepsOrderConvertsOffsetsAndDropsEmpty) {
  FingerprintOptions options;
  RequestQueryVariants(&options);
  ASSERT_EQ(options.phase_offsets.size(), kQueryPhaseOffsets.size());
  ASSERT_EQ(options.speed_factors.size(), kQuerySpeedFactors.size());
  FingerprintResult result;
  result.phase_variants = {{1}, {}, {3}};
  result.noise_reduced_items = {9, 9};
  result.noise_reduced_phase_variants = {{}, {10}, {11}};
  result.speed_variants = {{4}, {5}, {}, {7}};
  QueryVersions phase = TakePhaseVariants(options, &result);
  // The noise-reduced fingerprint comes next, on the plain query's timing, then its phases.
  ASSERT_EQ(phase.size(), 5u);
  EXPECT_DOUBLE_EQ(phase[0].first, 341.0 / 11025);
  EXPECT_EQ(phase[0].second.items, std::vector<uint32_t>{1});
  EXPECT_DOUBLE_EQ(phase[1].first, 1024.0 / 11025);
  EXPECT_EQ(phase[1].second.items, std::vector<uint32_t>{3});
  EXPECT_DOUBLE_EQ(phase[2].first, 0.0);
  EXPECT_EQ(phase[2].second.items, (std::vector<uint32_t>{9, 9}));
  EXPECT_DOUBLE_EQ(phase[3].first, 682.0 / 11025);
  EXPECT_EQ(phase[3].second.items, std::vector<uint32_t>{10});
  EXPECT_DOUBLE_EQ(phase[4].first, 1024.0 / 11025);
  EXPECT_EQ(phase[4].second.items, std::vector<uint32_t>{11});
  EXPECT_TRUE(result.noise_reduced_items.empty());
  EXPECT_TRUE(result.noise_reduced_phase_variants.empty());
  QueryVersions speed = TakeSpeedVariants(options, &result);
  ASSERT_EQ(speed.size(), 3u);
  EXPECT_DOUBLE_EQ(speed[0].first, kQuerySpeedFactors[0]);
  EXPECT_DOUBLE_EQ(speed[2].first, kQuerySpeedFactors[3]);
  EXPECT_EQ(speed[2].second.items, std::vector<uint32_t>{7});
  // Phases only (the server's MatchAudio): the client's speeds stay untouched.
  FingerprintOptions server;
  server.speed_factors = {1.05};
  RequestPhaseVariants(&server);
  EXPECT_EQ(server.speed_factors, std::vector<double>{1.05});
  EXPECT_EQ(server.phase_offsets.size(), kQueryPhaseOffsets.size());
  EXPECT_TRUE(server.noise_reduced_variant);
  EXPECT_TRUE(options.noise_reduced_variant);
  EXPECT_TRUE(server.bit_weights);
  EXPECT_TRUE(options.bit_weights);
}

// Each phase and noise-reduced version carries its own bit weights, dropped with it when empty;
// weights that do not match the variants one for one are not handed out.
TEST(QueryVariantsTest, EachVersionCarriesItsOwnWeights) {
  FingerprintOptions options;
  RequestPhaseVariants(&options);
  FingerprintResult result;
  result.phase_variants = {{1}, {}, {3}};
  result.phase_variant_weights = {std::vector<uint8_t>(32, 1), {}, std::vector<uint8_t>(32, 3)};
  result.noise_reduced_items = {9};
  result.noise_reduced_weights = std::vector<uint8_t>(32, 9);
  result.noise_reduced_phase_variants = {{10}, {11}, {12}};
  result.noise_reduced_phase_weights = {std::vector<uint8_t>(32, 10)};  // not one per variant
  QueryVersions phase = TakePhaseVariants(options, &result);
  ASSERT_EQ(phase.size(), 6u);
  EXPECT_EQ(phase[0].second.weights, std::vector<uint8_t>(32, 1));
  EXPECT_EQ(phase[1].second.weights, std::vector<uint8_t>(32, 3));
  EXPECT_EQ(phase[2].second.weights, std::vector<uint8_t>(32, 9));
  for (size_t i = 3; i < phase.size(); ++i) EXPECT_TRUE(phase[i].second.weights.empty()) << i;
  EXPECT_TRUE(result.phase_variant_weights.empty());
  EXPECT_TRUE(result.noise_reduced_weights.empty());
  EXPECT_TRUE(result.noise_reduced_phase_weights.empty());
}

// The refiner DeferVariants hands out with the deferred variants fingerprints the same held
// audio: at a cascade speed and phase it gives what the cascade's variant is, at 1 and phase 0
// the plain query, in between versions of its own; it still works after the variants were
// computed (which release the result's copy of the audio), and refuses nonsense.
TEST(QueryVariantsTest, TheRefinerFingerprintsTheHeldAudioAtAnySpeedAndPhase) {
  constexpr int kRate = kFingerprintSampleRate;
  const std::vector<int16_t> pcm = ::trainspotter::testing::SynthesizeMusic(12, kRate, 1, 31);
  FingerprintOptions options;
  options.max_seconds = 0;
  RequestQueryVariants(&options);
  options.defer_variants = true;
  ::trainspotter::testing::FakeAudioSource source(pcm, kRate, 4096);
  auto fp = FingerprintAudioSource(source, "fake", options);
  ASSERT_TRUE(fp.ok()) << fp.status();
  ASSERT_TRUE(fp->variants_deferred());
  const std::vector<uint32_t> plain = fp->fingerprint.items;
  auto compute = DeferVariants("fake", options, &*fp);
  EXPECT_FALSE(fp->variants_deferred());
  auto variants = compute();
  ASSERT_TRUE(variants.ok()) << variants.status();
  ASSERT_TRUE(variants->refine);
  ASSERT_FALSE(variants->speed_variants.empty());
  ASSERT_FALSE(variants->phase_variants.empty());

  auto at = [&](double speed, int skip) {
    auto items = variants->refine(speed, skip);
    EXPECT_TRUE(items.ok()) << items.status();
    return items.ok() ? *items : std::vector<uint32_t>();
  };
  EXPECT_EQ(at(1.0, 0), plain);
  EXPECT_EQ(at(variants->speed_variants[0].first, 0), variants->speed_variants[0].second.items);
  EXPECT_DOUBLE_EQ(variants->phase_variants[0].first, PhaseOffsetSeconds(kQueryPhaseOffsets[0]));
  EXPECT_EQ(at(1.0, kQueryPhaseOffsets[0]), variants->phase_variants[0].second.items);
  const std::vector<uint32_t> between = at(1.005, 0);
  EXPECT_FALSE(between.empty());
  EXPECT_NE(between, plain);
  EXPECT_NE(between, at(1.01, 0));
  EXPECT_TRUE(at(1.0, static_cast<int>(pcm.size())).empty());  // nothing left to fingerprint
  EXPECT_EQ(variants->refine(0.0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(variants->refine(1.0, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace trainspotter
