#include "fingerprint/query_variants.h"

#include "gtest/gtest.h"

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
  ItemVariants phase = TakePhaseVariants(options, &result);
  // The noise-reduced fingerprint comes next, on the plain query's timing, then its phases.
  ASSERT_EQ(phase.size(), 5u);
  EXPECT_DOUBLE_EQ(phase[0].first, 341.0 / 11025);
  EXPECT_EQ(phase[0].second, std::vector<uint32_t>{1});
  EXPECT_DOUBLE_EQ(phase[1].first, 1024.0 / 11025);
  EXPECT_EQ(phase[1].second, std::vector<uint32_t>{3});
  EXPECT_DOUBLE_EQ(phase[2].first, 0.0);
  EXPECT_EQ(phase[2].second, (std::vector<uint32_t>{9, 9}));
  EXPECT_DOUBLE_EQ(phase[3].first, 682.0 / 11025);
  EXPECT_EQ(phase[3].second, std::vector<uint32_t>{10});
  EXPECT_DOUBLE_EQ(phase[4].first, 1024.0 / 11025);
  EXPECT_EQ(phase[4].second, std::vector<uint32_t>{11});
  EXPECT_TRUE(result.noise_reduced_items.empty());
  EXPECT_TRUE(result.noise_reduced_phase_variants.empty());
  ItemVariants speed = TakeSpeedVariants(options, &result);
  ASSERT_EQ(speed.size(), 3u);
  EXPECT_DOUBLE_EQ(speed[0].first, kQuerySpeedFactors[0]);
  EXPECT_DOUBLE_EQ(speed[2].first, kQuerySpeedFactors[3]);
  EXPECT_EQ(speed[2].second, std::vector<uint32_t>{7});
  // Phases only (the server's MatchAudio): the client's speeds stay untouched.
  FingerprintOptions server;
  server.speed_factors = {1.05};
  RequestPhaseVariants(&server);
  EXPECT_EQ(server.speed_factors, std::vector<double>{1.05});
  EXPECT_EQ(server.phase_offsets.size(), kQueryPhaseOffsets.size());
  EXPECT_TRUE(server.noise_reduced_variant);
  EXPECT_TRUE(options.noise_reduced_variant);
}

}  // namespace
}  // namespace trainspotter
