#include "service/query_engine.h"

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

TEST(QueryEngineTest, ValidatePhaseVariants) {
  EXPECT_TRUE(ValidatePhaseVariants({}).ok());
  EXPECT_TRUE(ValidatePhaseVariants({{0.0, {1}}, {0.999, {2}}}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({{-0.001, {1}}})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({{1.0, {1}}})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({{0.03, {}}})));
  ItemVariants many(kMaxPhaseVariants + 1, {0.03, {1}});
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants(many)));
  many.pop_back();
  EXPECT_TRUE(ValidatePhaseVariants(many).ok());
}

TEST(QueryEngineTest, ValidateSpeedFactors) {
  EXPECT_TRUE(ValidateSpeedFactors({0.98, 1.02}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateSpeedFactors({0.5})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateSpeedFactors({2.0})));
}

}  // namespace
}  // namespace trainspotter
