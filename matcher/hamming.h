// Bit-error counting between Chromaprint items, with a hardware-popcount fast path chosen at
// run time (GCC target_clones): never crashes on a CPU without POPCNT.
#ifndef TRAINSPOTTER_MATCHER_HAMMING_H_
#define TRAINSPOTTER_MATCHER_HAMMING_H_

#include <cstddef>
#include <cstdint>

namespace trainspotter {

// out[i] = popcount(a[i] ^ b[i]) for i in [0, n).
void ItemBitErrors(const uint32_t* a, const uint32_t* b, size_t n, uint8_t* out);
// Sum of popcount(a[i] ^ b[i]).
int64_t TotalBitErrors(const uint32_t* a, const uint32_t* b, size_t n);

// Exhaustive k-nearest search of `nq` 512-bit query codes (query q at queries + q * query_stride
// bytes) against `nb` database codes (code r at database + r * db_stride bytes). Codes may
// overlap and need no alignment.
// For each query, writes the k smallest distances (ascending) and their row numbers to
// distances[q*k..] and rows[q*k..]; unused slots get distance INT32_MAX and row -1.
// Rows whose distance exceeds `max_distance` are never reported. Equal distances keep the lower
// row. With db_stride 4 (the matcher's item array) and a CPU with AVX-512 VPOPCNTDQ, a
// vectorised scan does the same work ~4x faster.
void HammingKnn512(const uint8_t* queries, size_t query_stride, size_t nq, const uint8_t* database,
                   size_t db_stride, size_t nb,
                   int k, int max_distance, int32_t* distances, int64_t* rows);

// out[i] = Hamming distance between the 8 items at `block` and centroid i of `centroids`
// (k centroids of 8 items each, back to back).
void BlockDistances256(const uint32_t* block, const uint32_t* centroids, size_t k, uint16_t* out);
// The index of the centroid nearest to `block` (the first of equals), as BlockDistances256.
int NearestCentroid256(const uint32_t* block, const uint32_t* centroids, size_t k);
// out[i] = Hamming distance between the 16 items at `query` and the 16 at items + positions[i].
// Prefetches ahead: the positions are scattered over the item array.
void GatherDistances512(const uint32_t* query, const uint32_t* items, const uint32_t* positions,
                        size_t n, uint16_t* out);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_HAMMING_H_
