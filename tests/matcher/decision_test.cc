#include "matcher/decision.h"

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

SegmentEvidence Music(int64_t items, double ber, double flip_rate, double common_fraction) {
  SegmentEvidence e;
  e.items = items;
  e.bit_errors = static_cast<int64_t>(ber * 32 * items);
  e.expected_bit_errors = 0.45 * 32 * items;
  e.query_flips = static_cast<int64_t>(flip_rate * 32 * items);
  e.reference_flips = e.query_flips;
  e.common_flips = static_cast<int64_t>(common_fraction * e.query_flips);
  return e;
}

TEST(DecisionTest, NoTransitionsIsNoEvidence) {
  // Silence against silence: perfect agreement, nothing changes, nothing expected to differ.
  SegmentEvidence e;
  e.items = 200;
  e.bit_errors = 0;
  e.expected_bit_errors = 0;
  EXPECT_EQ(LogChanceAgreement(e), 0.0);
  EXPECT_EQ(FalseMatchProbability(e, 1e6), 1.0);
}

TEST(DecisionTest, ChanceLevelAgreementIsNoEvidence) {
  SegmentEvidence e = Music(100, 0.45, 0.15, 0.15);
  EXPECT_GT(LogChanceAgreement(e), -2.0);
}

TEST(DecisionTest, EvidenceGrowsWithLengthAndAgreement) {
  const double short_clip = LogChanceAgreement(Music(20, 0.1, 0.15, 0.7));
  const double long_clip = LogChanceAgreement(Music(200, 0.1, 0.15, 0.7));
  const double noisy = LogChanceAgreement(Music(200, 0.3, 0.15, 0.35));
  EXPECT_LT(long_clip, short_clip);
  EXPECT_LT(long_clip, noisy);
  EXPECT_LT(short_clip, 0.0);
}

TEST(DecisionTest, MoreAlignmentsMeanLessConfidence) {
  SegmentEvidence e = Music(60, 0.15, 0.15, 0.6);
  const double small = FalseMatchProbability(e, 1e4);
  const double large = FalseMatchProbability(e, 1e8);
  EXPECT_LT(small, large);
  EXPECT_GE(small, 0.0);
  EXPECT_LE(large, 1.0);
}

}  // namespace
}  // namespace trainspotter
