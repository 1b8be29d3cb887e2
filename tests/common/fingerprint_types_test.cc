#include "common/fingerprint_types.h"

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

TEST(FingerprintTypesTest, ItemRateFollowsChromaprintHop) {
  // 11025 Hz / 1365-sample hop: about 8.077 items per second.
  EXPECT_NEAR(kItemsPerSecond, 8.077, 0.001);
  EXPECT_NEAR(ItemToSeconds(SecondsToItem(61.3)), 61.3, kSecondsPerItem / 2);
}

TEST(FingerprintTypesTest, SecondsToItemNeverNegative) {
  EXPECT_EQ(SecondsToItem(-3.0), 0);
  EXPECT_EQ(SecondsToItem(0.0), 0);
}

}  // namespace
}  // namespace trainspotter
