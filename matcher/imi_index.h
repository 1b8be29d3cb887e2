// Sub-linear candidate search over the reference items: an inverted multi-index (Babenko and
// Lempitsky, "The Inverted Multi-Index", CVPR 2012) over 16-item windows.
//
// Every reference contributes the window starting at each multiple of the stride (8 items by
// default: an eighth of its positions; 4 doubles the postings and the aligned windows a query
// has). A window is two 8-item blocks (256 bits each). One codebook of K block centroids
// (binary k-means: per-bit majority; two levels, so that encoding a reference block costs
// 4*sqrt(K) distances -- the first level, then the leaves of its 3 nearest first-level
// centroids -- instead of K) quantises each block, and the window's cell is the pair of its
// blocks' codes: K^2 cells from one codebook. A cell's posting list holds the windows' item
// positions (4 bytes each: ~15 KB per indexed hour of audio beside the 116 KB of items).
//
// A query looks up every one of its windows (all positions: the reference's stride means only
// one window in eight aligns with an indexed one, and a 10 s clip still has ~8 such windows),
// visiting cells in increasing sum of block distances (the multi-sequence algorithm) until
// `budget` postings were read, and keeps the windows within `max_distance` bits.
//
// Thread-safety: const methods may run concurrently; Add needs exclusive access.
#ifndef TRAINSPOTTER_MATCHER_IMI_INDEX_H_
#define TRAINSPOTTER_MATCHER_IMI_INDEX_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/file_util.h"

namespace trainspotter {

inline constexpr int kImiBlockItems = 8;
inline constexpr int kImiDefaultStride = 8;

// A reference's items: positions [start, start + length) of the item array.
struct ItemRange {
  int64_t start = 0;
  int64_t length = 0;
};

// A reference window near a query window.
struct WindowHit {
  int32_t query_window;  // query items [query_window, query_window + 16)
  int32_t distance;      // bits of 512
  int64_t position;      // reference window's first item in the item array
};

class ImiIndex {
 public:
  // Trains the codebook on a deterministic sample of `ranges` and indexes every window of
  // them. `threads` encode in parallel. INVALID_ARGUMENT if positions do not fit 32 bits.
  // `stride` is 4 or 8 (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<std::unique_ptr<ImiIndex>> Build(const uint32_t* items,
                                                         absl::Span<const ItemRange> ranges,
                                                         int threads,
                                                         int stride = kImiDefaultStride);

  // Indexes one more reference (kept in per-cell side lists until the next Build).
  absl::Status Add(const uint32_t* items, ItemRange range);

  // The reference windows near each window of `query` (n items), reading at most `budget`
  // postings per query window, nearest cells first. `items` is the item array the index
  // was built over (it may have grown since).
  std::vector<WindowHit> Search(const uint32_t* items, const uint32_t* query, int64_t n, int budget,
                                int max_distance) const;

  // Writes the index (which must have no references added since Build) after `out`'s
  // current position; Read reads it back, checking it against an item array of `num_items`.
  absl::Status Write(AtomicFileWriter* out) const;
  static absl::StatusOr<std::unique_ptr<ImiIndex>> Read(FileReader* in, int64_t num_items);

  int codebook_size() const { return k_; }
  int stride() const { return stride_; }
  int64_t num_postings() const;
  int64_t num_built() const { return static_cast<int64_t>(postings_.size()); }
  int64_t num_added() const { return num_added_; }
  // Bytes of the codebook, cell offsets and posting lists.
  int64_t memory_bytes() const;

  // Centroids per block codebook for an index of `windows` windows: about sqrt(windows / 8)
  // (a few postings per cell on average), a power of two in [64, 1024].
  static int CodebookSizeFor(int64_t windows);

 private:
  ImiIndex() = default;
  // Nearest centroid of the 8-item block (two-level descent).
  uint16_t Encode(const uint32_t* block) const;
  // The cell of the window starting at `w` (its two blocks' codes).
  uint32_t Cell(const uint32_t* w) const {
    return static_cast<uint32_t>(Encode(w)) * static_cast<uint32_t>(k_) +
           Encode(w + kImiBlockItems);
  }

  // Indexed windows of a reference of `length` items.
  int64_t WindowsOf(int64_t length) const {
    return length < 2 * kImiBlockItems ? 0 : (length - 2 * kImiBlockItems) / stride_ + 1;
  }

  int stride_ = kImiDefaultStride;
  int k_ = 0;    // leaf centroids
  int top_ = 0;  // first-level centroids; leaves of top t are [t * sub_, (t + 1) * sub_)
  int sub_ = 0;  // leaves per first-level centroid
  std::vector<uint32_t> top_centroids_;   // top_ x 8 items
  std::vector<uint32_t> leaf_centroids_;  // k_ x 8 items
  std::vector<uint32_t> offsets_;   // k_^2 + 1: cell c's postings are [offsets_[c], offsets_[c+1])
  std::vector<uint32_t> postings_;  // item positions, grouped by cell
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> added_;  // cell -> positions since Build
  int64_t num_added_ = 0;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_IMI_INDEX_H_
