#include "service/query_engine.h"

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

// A phase variant: its start and items, with `weights` bit weights per item (0: none).
std::pair<double, WeightedItems> Phase(double start, std::vector<uint32_t> items,
                                       size_t weights_per_item = 0) {
  const size_t n = items.size();
  return {start, WeightedItems{std::move(items), std::vector<uint8_t>(weights_per_item * n, 7)}};
}

TEST(QueryEngineTest, ValidatePhaseVariants) {
  EXPECT_TRUE(ValidatePhaseVariants({}).ok());
  EXPECT_TRUE(ValidatePhaseVariants({Phase(0.0, {1}), Phase(0.999, {2})}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({Phase(-0.001, {1})})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({Phase(1.0, {1})})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants({Phase(0.03, {})})));
  QueryVersions many(kMaxPhaseVariants + 1, Phase(0.03, {1}));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidatePhaseVariants(many)));
  many.pop_back();
  EXPECT_TRUE(ValidatePhaseVariants(many).ok());
  // Bit weights, if sent, cover the items exactly: 32 per item.
  EXPECT_TRUE(ValidatePhaseVariants({Phase(0.03, {1, 2}, 32)}).ok());
  const absl::Status short_weights = ValidatePhaseVariants({Phase(0.03, {1, 2}, 16)});
  EXPECT_TRUE(absl::IsInvalidArgument(short_weights));
  EXPECT_NE(short_weights.message().find("bit_weights"), absl::string_view::npos) << short_weights;
}

TEST(QueryEngineTest, ValidateSpeedFactors) {
  EXPECT_TRUE(ValidateSpeedFactors({0.98, 1.02}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateSpeedFactors({0.5})));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateSpeedFactors({2.0})));
}

}  // namespace
}  // namespace trainspotter
