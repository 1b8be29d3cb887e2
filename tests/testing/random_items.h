// Seeded random Chromaprint items for tests that need distinct, uncorrelated fingerprints.
#ifndef TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_
#define TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

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

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_
