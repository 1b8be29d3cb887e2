#include "matcher/imi_index.h"

#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "matcher/hamming.h"
#include "tests/testing/random_items.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::RandomWalk;
using ::trainspotter::testing::WithBitErrors;

constexpr int kWindow = 16;

// Several music-like references laid end to end in one item array, as the Matcher stores them.
class ImiIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(5);
    for (int r = 0; r < 40; ++r) {
      std::vector<uint32_t> ref = RandomWalk(rng, 900 + 13 * r);
      ranges_.push_back({static_cast<int64_t>(items_.size()), static_cast<int64_t>(ref.size())});
      items_.insert(items_.end(), ref.begin(), ref.end());
    }
  }

  std::vector<uint32_t> Clip(int r, int64_t offset, int64_t n) const {
    const uint32_t* p = items_.data() + ranges_[r].start + offset;
    return std::vector<uint32_t>(p, p + n);
  }

  // True if a hit places query item 0 at reference item `offset` of reference r.
  bool Aligned(const std::vector<WindowHit>& hits, int r, int64_t offset) const {
    for (const WindowHit& h : hits) {
      if (h.position - h.query_window == ranges_[r].start + offset) return true;
    }
    return false;
  }

  std::vector<uint32_t> items_;
  std::vector<ItemRange> ranges_;
};

TEST_F(ImiIndexTest, FindsAnExactClipAtAnyOffset) {
  auto index = ImiIndex::Build(items_.data(), ranges_, 2);
  ASSERT_TRUE(index.ok()) << index.status();
  std::mt19937 rng(1);
  for (int trial = 0; trial < 30; ++trial) {
    const int r = static_cast<int>(rng() % ranges_.size());
    const int64_t offset = static_cast<int64_t>(rng() % (ranges_[r].length - 40));
    std::vector<uint32_t> q = Clip(r, offset, 40);  // ~5 s, any phase of the stride
    std::vector<WindowHit> hits = (*index)->Search(items_.data(), q.data(), 40, 256, 0);
    EXPECT_TRUE(Aligned(hits, r, offset)) << "reference " << r << " offset " << offset;
  }
}

TEST_F(ImiIndexTest, FindsNoisyClipsAndReportsTrueDistances) {
  auto index = ImiIndex::Build(items_.data(), ranges_, 1);
  ASSERT_TRUE(index.ok()) << index.status();
  std::mt19937 rng(2);
  int found = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int r = static_cast<int>(rng() % ranges_.size());
    const int64_t offset = static_cast<int64_t>(rng() % (ranges_[r].length - 78));
    std::vector<uint32_t> q = WithBitErrors(Clip(r, offset, 78), 0.15, rng);
    std::vector<WindowHit> hits = (*index)->Search(items_.data(), q.data(), 78, 512, 200);
    found += Aligned(hits, r, offset);
    for (const WindowHit& h : hits) {
      ASSERT_LE(h.distance, 200);
      ASSERT_GE(h.query_window, 0);
      ASSERT_LE(h.query_window, 78 - kWindow);
      ASSERT_EQ(h.distance,
                TotalBitErrors(q.data() + h.query_window, items_.data() + h.position, kWindow));
    }
  }
  // 15% of bits flipped: 512-bit windows stay ~77 bits from their reference, far nearer than
  // unrelated audio (~256); the index must reach nearly every clip.
  EXPECT_GE(found, 38);
}

TEST_F(ImiIndexTest, IndexesOnlyStridedWindowsInsideEachReference) {
  for (int stride : {4, 8}) {
    auto index = ImiIndex::Build(items_.data(), ranges_, 2, stride);
    ASSERT_TRUE(index.ok()) << index.status();
    EXPECT_EQ((*index)->stride(), stride);
    int64_t expected = 0;
    for (const ItemRange& r : ranges_) expected += (r.length - kWindow) / stride + 1;
    EXPECT_EQ((*index)->num_postings(), expected);
    // A query that is an entire reference finds its windows only at stride positions inside it.
    const int r = 3;
    std::vector<uint32_t> q = Clip(r, 0, ranges_[r].length);
    std::vector<WindowHit> hits =
        (*index)->Search(items_.data(), q.data(), static_cast<int64_t>(q.size()), 4096, 0);
    std::set<int64_t> positions;
    for (const WindowHit& h : hits) positions.insert(h.position);
    EXPECT_EQ(static_cast<int64_t>(positions.size()), (ranges_[r].length - kWindow) / stride + 1);
    for (int64_t p : positions) {
      EXPECT_EQ((p - ranges_[r].start) % stride, 0);
      EXPECT_LE(p + kWindow, ranges_[r].start + ranges_[r].length);
    }
    // Exact clips are found at any offset with either stride.
    std::mt19937 rng(stride);
    for (int trial = 0; trial < 20; ++trial) {
      const int ref = static_cast<int>(rng() % ranges_.size());
      const int64_t offset = static_cast<int64_t>(rng() % (ranges_[ref].length - 40));
      std::vector<uint32_t> clip = Clip(ref, offset, 40);
      EXPECT_TRUE(Aligned((*index)->Search(items_.data(), clip.data(), 40, 256, 0), ref, offset))
          << "stride " << stride;
    }
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ImiIndex::Build(items_.data(), ranges_, 2, 5).status()));
}

TEST_F(ImiIndexTest, FindsReferencesAddedAfterTheBuild) {
  std::vector<ItemRange> first(ranges_.begin(), ranges_.end() - 1);
  auto index = ImiIndex::Build(items_.data(), first, 2);
  ASSERT_TRUE(index.ok()) << index.status();
  const int last = static_cast<int>(ranges_.size()) - 1;
  std::vector<uint32_t> q = Clip(last, 100, 40);
  EXPECT_FALSE(Aligned((*index)->Search(items_.data(), q.data(), 40, 4096, 0), last, 100));
  ASSERT_TRUE((*index)->Add(items_.data(), ranges_[last]).ok());
  EXPECT_TRUE(Aligned((*index)->Search(items_.data(), q.data(), 40, 256, 0), last, 100));
}

TEST_F(ImiIndexTest, SameReferencesGiveTheSameIndex) {
  auto a = ImiIndex::Build(items_.data(), ranges_, 1);
  auto b = ImiIndex::Build(items_.data(), ranges_, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  std::mt19937 rng(3);
  std::vector<uint32_t> q = WithBitErrors(Clip(7, 55, 78), 0.2, rng);
  std::vector<WindowHit> ha = (*a)->Search(items_.data(), q.data(), 78, 300, 220);
  std::vector<WindowHit> hb = (*b)->Search(items_.data(), q.data(), 78, 300, 220);
  ASSERT_EQ(ha.size(), hb.size());
  for (size_t i = 0; i < ha.size(); ++i) {
    EXPECT_EQ(ha[i].position, hb[i].position);
    EXPECT_EQ(ha[i].query_window, hb[i].query_window);
  }
}

TEST_F(ImiIndexTest, ShortQueriesAndEmptyIndexesFindNothing) {
  auto index = ImiIndex::Build(items_.data(), ranges_, 2);
  ASSERT_TRUE(index.ok());
  std::vector<uint32_t> q = Clip(0, 0, kWindow - 1);
  EXPECT_TRUE((*index)->Search(items_.data(), q.data(), kWindow - 1, 1000, 512).empty());
  auto empty = ImiIndex::Build(items_.data(), {}, 2);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->num_postings(), 0);
  std::vector<uint32_t> q2 = Clip(0, 0, 40);
  EXPECT_TRUE((*empty)->Search(items_.data(), q2.data(), 40, 1000, 512).empty());
}

TEST(ImiCodebookSize, GrowsWithTheIndexAsPowersOfTwo) {
  int prev = 0;
  for (int64_t windows : {int64_t{0}, int64_t{1000}, int64_t{100000}, int64_t{3000000},
                          int64_t{30000000}, int64_t{300000000}}) {
    const int k = ImiIndex::CodebookSizeFor(windows);
    EXPECT_GE(k, 64);
    EXPECT_LE(k, 1024);
    EXPECT_EQ(k & (k - 1), 0) << k;
    EXPECT_GE(k, prev);
    prev = k;
  }
  // Large indexes: a few postings per cell on average, not thousands.
  EXPECT_LE(300000000 / (int64_t{1024} * 1024), 300);
  EXPECT_EQ(ImiIndex::CodebookSizeFor(300000000), 1024);
}

}  // namespace
}  // namespace trainspotter
