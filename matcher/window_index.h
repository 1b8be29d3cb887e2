// A searchable set of fingerprint windows: kWindowItems consecutive Chromaprint items packed
// into one 512-bit binary code, compared by Hamming distance.
//
// Thread-safety: const methods may run concurrently; Add/Clear need exclusive access (the
// Matcher's lock provides it).
#ifndef TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_
#define TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trainspotter {

inline constexpr int kWindowItems = 16;
inline constexpr int kWindowBits = kWindowItems * 32;
inline constexpr int kWindowBytes = kWindowBits / 8;

class WindowIndex {
 public:
  virtual ~WindowIndex() = default;

  // Appends `n` codes of kWindowBytes each; they get rows size() .. size()+n-1.
  virtual absl::Status Add(const uint8_t* codes, int64_t n) = 0;
  // Removes every code.
  virtual void Clear() = 0;
  // For each of `nq` query codes: the `k` nearest rows with distance <= max_distance, nearest
  // first, into distances[q*k + j] / rows[q*k + j] (row -1 where fewer were found). Query code q
  // starts at queries + q * query_stride_bytes (codes may overlap: a query's windows are slices
  // of one item array).
  virtual absl::Status Search(const uint8_t* queries, int64_t nq, int k, int max_distance,
                              int32_t* distances, int64_t* rows,
                              size_t query_stride_bytes = kWindowBytes) const = 0;
  virtual int64_t size() const = 0;
  // Bytes of RAM the codes take.
  virtual int64_t memory_bytes() const = 0;

  // Persistence (atomic write: temp file, fsync, rename). DATA_LOSS if the file is unreadable.
  virtual absl::Status Save(const std::string& path) const = 0;
};

// Exhaustive index: FAISS IndexBinaryFlat holds the codes; the scan runs in our own kernel
// (matcher/hamming.h) so that it uses hardware popcount, which Debian's libfaiss does not.
std::unique_ptr<WindowIndex> NewFlatWindowIndex();
absl::StatusOr<std::unique_ptr<WindowIndex>> LoadFlatWindowIndex(const std::string& path);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_
