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

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_RANDOM_ITEMS_H_
