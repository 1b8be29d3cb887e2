// Reference items, stored once, searchable by window: every run of kWindowItems consecutive
// Chromaprint items (512 bits) starting at any position is a searchable code, compared by
// Hamming distance. Windows are slices of the one item array, so the index costs 4 bytes per
// item (~116 KB per hour of audio) instead of 64 bytes per window.
//
// Thread-safety: const methods may run concurrently; Append/Clear need exclusive access (the
// Matcher's lock provides it).
#ifndef TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_
#define TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trainspotter {

inline constexpr int kWindowItems = 16;
inline constexpr int kWindowBits = kWindowItems * 32;
inline constexpr int kWindowBytes = kWindowBits / 8;

class WindowIndex {
 public:
  virtual ~WindowIndex() = default;

  // Appends `n` items; they get positions size() .. size()+n-1.
  virtual absl::Status Append(const uint32_t* items, int64_t n) = 0;
  // Appends `n` items for the caller to fill in place (e.g. read from a file straight into the
  // index); returns where they go. Valid until the next Append/Extend/Clear.
  virtual absl::StatusOr<uint32_t*> Extend(int64_t n) = 0;
  // Makes room for `n` items in all (a hint before a bulk load: no reallocation, and the room
  // is backed by huge pages where the kernel allows).
  virtual absl::Status Reserve(int64_t n) = 0;
  // Removes every item.
  virtual void Clear() = 0;
  // The items, positions 0 .. size()-1. Valid until the next Append/Clear.
  virtual const uint32_t* items() const = 0;
  virtual int64_t size() const = 0;
  // For each of the `nq` query windows (window q = query_items[q .. q+kWindowItems)), the `k`
  // nearest window start positions in [0, size() - kWindowItems] with distance <= max_distance,
  // nearest first, into distances[q*k + j] / positions[q*k + j] (-1 where fewer were found).
  // Windows that straddle two references are the caller's to discard.
  virtual absl::Status Search(const uint32_t* query_items, int64_t nq, int k, int max_distance,
                              int32_t* distances, int64_t* positions) const = 0;
};

// FAISS IndexBinaryFlat (32-bit codes: one per item) holds the items; the scan
// runs in our own kernel (matcher/hamming.h) over overlapping 512-bit windows, with hardware
// popcount where the CPU has it (Debian's libfaiss is built without).
std::unique_ptr<WindowIndex> NewFlatWindowIndex();

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_WINDOW_INDEX_H_
