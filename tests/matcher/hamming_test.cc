#include "matcher/hamming.h"

#include <algorithm>
#include <climits>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

int NaiveDistance(const uint8_t* a, const uint8_t* b) {
  int d = 0;
  for (int i = 0; i < 64; ++i) d += __builtin_popcount(static_cast<unsigned>(a[i] ^ b[i]));
  return d;
}

TEST(HammingTest, BitErrorsMatchNaiveCount) {
  std::mt19937 rng(5);
  std::vector<uint32_t> a(1000), b(1000);
  for (auto& x : a) x = rng();
  for (auto& x : b) x = rng();
  std::vector<uint8_t> per(1000);
  ItemBitErrors(a.data(), b.data(), a.size(), per.data());
  int64_t sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int naive = 0;
    for (int bit = 0; bit < 32; ++bit) naive += ((a[i] ^ b[i]) >> bit) & 1;
    ASSERT_EQ(per[i], naive);
    sum += naive;
  }
  EXPECT_EQ(TotalBitErrors(a.data(), b.data(), a.size()), sum);
}

// Bit-by-bit count over n items.
int NaiveItems(const uint32_t* a, const uint32_t* b, int n) {
  int d = 0;
  for (int i = 0; i < n; ++i) {
    for (int bit = 0; bit < 32; ++bit) d += static_cast<int>(((a[i] ^ b[i]) >> bit) & 1u);
  }
  return d;
}

TEST(HammingTest, BlockKernelsMatchNaiveCounts) {
  std::mt19937 rng(6);
  std::vector<uint32_t> items(5000);
  for (auto& x : items) x = rng();
  std::vector<uint32_t> centroids(100 * 8);
  for (auto& x : centroids) x = rng();
  for (int trial = 0; trial < 50; ++trial) {
    const uint32_t* block = items.data() + rng() % (items.size() - 8);  // any alignment
    std::vector<uint16_t> dist(100);
    BlockDistances256(block, centroids.data(), 100, dist.data());
    int best = INT_MAX, best_i = -1;
    for (int c = 0; c < 100; ++c) {
      const int naive = NaiveItems(block, centroids.data() + c * 8, 8);
      ASSERT_EQ(dist[c], naive);
      if (naive < best) {
        best = naive;
        best_i = c;
      }
    }
    EXPECT_EQ(NearestCentroid256(block, centroids.data(), 100), best_i);
  }
  // Windows gathered from scattered positions.
  std::vector<uint32_t> positions;
  for (int i = 0; i < 300; ++i) positions.push_back(rng() % (items.size() - 16));
  const uint32_t* query = items.data() + 17;
  std::vector<uint16_t> out(positions.size());
  GatherDistances512(query, items.data(), positions.data(), positions.size(), out.data());
  for (size_t i = 0; i < positions.size(); ++i) {
    ASSERT_EQ(out[i], NaiveItems(query, items.data() + positions[i], 16)) << i;
  }
}

TEST(HammingTest, KnnAgreesWithBruteForceOnUnalignedQueries) {
  std::mt19937 rng(11);
  const size_t nb = 3000, nq = 37, k = 5;
  std::vector<uint8_t> db(nb * 64);
  for (auto& x : db) x = static_cast<uint8_t>(rng());
  // Queries: overlapping slices 4 bytes apart, starting at an odd address.
  std::vector<uint8_t> qbuf(1 + nq * 4 + 64);
  for (auto& x : qbuf) x = static_cast<uint8_t>(rng());
  // Make query 3 a near copy of row 1234 so that a small distance exists.
  std::copy(db.begin() + 1234 * 64, db.begin() + 1235 * 64, qbuf.begin() + 1 + 3 * 4);
  qbuf[1 + 3 * 4] ^= 1;
  const uint8_t* queries = qbuf.data() + 1;
  std::vector<int32_t> dist(nq * k);
  std::vector<int64_t> rows(nq * k);
  HammingKnn512(queries, 4, nq, db.data(), 64, nb, k, 512, dist.data(), rows.data());
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<int, int64_t>> all;
    for (size_t r = 0; r < nb; ++r) {
      all.emplace_back(NaiveDistance(queries + q * 4, db.data() + r * 64), r);
    }
    std::sort(all.begin(), all.end());
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(dist[q * k + j], all[j].first) << "query " << q << " rank " << j;
      EXPECT_EQ(NaiveDistance(queries + q * 4, db.data() + rows[q * k + j] * 64),
                dist[q * k + j]);
    }
  }
  EXPECT_EQ(rows[3 * k], 1234);
  EXPECT_EQ(dist[3 * k], 1);
}

// The matcher's layout: database windows 4 bytes apart (overlapping), every size of tail, with
// planted near copies and ties; whichever kernel the CPU selects must equal brute force.
TEST(HammingTest, KnnOverOverlappingItemWindowsAgreesWithBruteForce) {
  std::mt19937 rng(13);
  for (size_t nb : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{2047}, size_t{2048},
                    size_t{2049}, size_t{5000}}) {
    std::vector<uint32_t> items(nb + 15);
    for (auto& x : items) x = static_cast<uint32_t>(rng()) & 0x0f0f0f0fu;  // closer: more ties
    const size_t nq = 9, k = 6;
    std::vector<uint32_t> q((nq + 15));
    for (auto& x : q) x = static_cast<uint32_t>(rng()) & 0x0f0f0f0fu;
    // Query 2 is window nb/2 with one bit flipped.
    std::copy(items.begin() + static_cast<std::ptrdiff_t>(nb / 2),
              items.begin() + static_cast<std::ptrdiff_t>(nb / 2 + 16), q.begin() + 2);
    q[2] ^= 4;
    std::vector<int32_t> dist(nq * k);
    std::vector<int64_t> rows(nq * k);
    const int max_distance = 200;
    HammingKnn512(reinterpret_cast<const uint8_t*>(q.data()), 4, nq,
                  reinterpret_cast<const uint8_t*>(items.data()), 4, nb, k, max_distance,
                  dist.data(), rows.data());
    for (size_t qi = 0; qi < nq; ++qi) {
      std::vector<std::pair<int, int64_t>> all;
      for (size_t r = 0; r < nb; ++r) {
        const int d = NaiveItems(q.data() + qi, items.data() + r, 16);
        if (d <= max_distance) all.emplace_back(d, static_cast<int64_t>(r));
      }
      std::sort(all.begin(), all.end());
      for (size_t j = 0; j < k; ++j) {
        if (j < all.size()) {
          ASSERT_EQ(dist[qi * k + j], all[j].first) << "nb " << nb << " q " << qi << " j " << j;
          ASSERT_EQ(rows[qi * k + j], all[j].second) << "nb " << nb << " q " << qi << " j " << j;
        } else {
          ASSERT_EQ(rows[qi * k + j], -1);
        }
      }
    }
    if (nb >= 16) {
      EXPECT_EQ(rows[2 * k], static_cast<int64_t>(nb / 2));
      EXPECT_EQ(dist[2 * k], 1);
    }
  }
}

TEST(HammingTest, MaxDistanceLeavesSlotsEmpty) {
  std::vector<uint8_t> db(64 * 2, 0);
  std::vector<uint8_t> q(64, 0xff);  // distance 512 to both rows
  std::vector<int32_t> dist(3);
  std::vector<int64_t> rows(3);
  HammingKnn512(q.data(), 64, 1, db.data(), 64, 2, 3, 100, dist.data(), rows.data());
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(rows[j], -1);
    EXPECT_EQ(dist[j], INT32_MAX);
  }
}

}  // namespace
}  // namespace trainspotter
