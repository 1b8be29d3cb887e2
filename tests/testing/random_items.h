// Seeded random Chromaprint items for tests that need distinct, uncorrelated fingerprints.
#ifndef TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_
#define TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "common/fingerprint_types.h"

namespace trainspotter::testing {

inline std::vector<uint32_t> RandomItems(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> items(n);
  for (uint32_t& x : items) x = static_cast<uint32_t>(rng());
  return items;
}

// Music-like synthetic fingerprint: each item flips a few bits of the previous one, so items
// are correlated in time as Chromaprint's are.
inline std::vector<uint32_t> RandomWalk(std::mt19937& rng, size_t n, int flips_per_item = 5) {
  std::vector<uint32_t> v(n);
  uint32_t cur = static_cast<uint32_t>(rng());
  for (size_t i = 0; i < n; ++i) {
    for (int f = 0; f < flips_per_item; ++f) cur ^= 1u << (rng() % 32);
    v[i] = cur;
  }
  return v;
}

// Flips each bit with probability `ber`.
inline std::vector<uint32_t> WithBitErrors(std::vector<uint32_t> v, double ber, std::mt19937& rng) {
  std::bernoulli_distribution flip(ber);
  for (uint32_t& x : v) {
    for (int b = 0; b < 32; ++b) {
      if (flip(rng)) x ^= 1u << b;
    }
  }
  return v;
}

// A noisy copy of `v` as noise damages real audio: each bit is fragile with chance 1/2 (weight 1)
// or strong (kMaxBitWeight), and flips with chance `fragile_ber` or `strong_ber` accordingly.
// `weights` receives the bit weights that say which is which (32 per item).
inline std::vector<uint32_t> WithFragileBitErrors(std::vector<uint32_t> v, double fragile_ber,
                                                  double strong_ber, std::mt19937& rng,
                                                  std::vector<uint8_t>* weights) {
  weights->assign(32 * v.size(), 0);
  std::bernoulli_distribution fragile(0.5), flip_fragile(fragile_ber), flip_strong(strong_ber);
  for (size_t i = 0; i < v.size(); ++i) {
    for (int b = 0; b < 32; ++b) {
      const bool weak = fragile(rng);
      (*weights)[32 * i + static_cast<size_t>(b)] = weak ? 1 : kMaxBitWeight;
      if (weak ? flip_fragile(rng) : flip_strong(rng)) v[i] ^= 1u << b;
    }
  }
  return v;
}

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_
