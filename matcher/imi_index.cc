#include "matcher/imi_index.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>
#include <random>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "matcher/hamming.h"
#include "matcher/huge_pages.h"

namespace trainspotter {
namespace {

constexpr int kWindow = 2 * kImiBlockItems;
// Blocks drawn to train the codebook (both blocks of each sampled window).
constexpr int kSampleWindows = 1 << 15;
constexpr int kTopIterations = 8;
// First-level centroids whose leaves a reference block is compared with (Encode).
constexpr int kEncodeBeam = 3;
constexpr int kLeafIterations = 6;
// Ranked centroids per query block that the multi-sequence walk may pair.
constexpr int kMaxRanked = 64;
// Largest codebook: 1024^2 = 1M cells (4 MiB of offsets), two-level 32 x 32. 2048 measured
// slower (31 vs 15 ms per query at 100k tracks) for no clear gain in what it finds.
constexpr int kMaxCodebook = 1024;

int Log2(int k) {
  int l = 0;
  while ((1 << l) < k) ++l;
  return l;
}

// Binary k-means: centroids are the per-bit majority of their members. `blocks` are pointers
// to 8-item blocks; returns k centroids (8 items each). Empty clusters take a random block.
std::vector<uint32_t> KMeans(const std::vector<const uint32_t*>& blocks, int k, int iterations,
                             std::mt19937_64* rng) {
  std::vector<uint32_t> centroids(static_cast<size_t>(k) * kImiBlockItems, 0);
  if (blocks.empty()) return centroids;
  std::vector<size_t> order(blocks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), *rng);
  for (int c = 0; c < k; ++c) {
    std::memcpy(&centroids[static_cast<size_t>(c) * kImiBlockItems],
                blocks[order[static_cast<size_t>(c) % order.size()]],
                kImiBlockItems * sizeof(uint32_t));
  }
  std::vector<int> assign(blocks.size());
  for (int it = 0; it < iterations; ++it) {
    for (size_t i = 0; i < blocks.size(); ++i) {
      assign[i] = NearestCentroid256(blocks[i], centroids.data(), static_cast<size_t>(k));
    }
    std::vector<int32_t> ones(static_cast<size_t>(k) * kImiBlockItems * 32, 0);
    std::vector<int32_t> size(static_cast<size_t>(k), 0);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const size_t c = static_cast<size_t>(assign[i]);
      ++size[c];
      for (int j = 0; j < kImiBlockItems; ++j) {
        const uint32_t x = blocks[i][j];
        int32_t* o = &ones[(c * kImiBlockItems + static_cast<size_t>(j)) * 32];
        for (int b = 0; b < 32; ++b) o[b] += static_cast<int32_t>((x >> b) & 1u);
      }
    }
    for (size_t c = 0; c < static_cast<size_t>(k); ++c) {
      uint32_t* cent = &centroids[c * kImiBlockItems];
      if (size[c] == 0) {
        std::memcpy(cent, blocks[(*rng)() % blocks.size()], kImiBlockItems * sizeof(uint32_t));
        continue;
      }
      for (int j = 0; j < kImiBlockItems; ++j) {
        uint32_t x = 0;
        const int32_t* o = &ones[(c * kImiBlockItems + static_cast<size_t>(j)) * 32];
        for (int b = 0; b < 32; ++b) {
          if (2 * o[b] > size[c]) x |= uint32_t{1} << b;
        }
        cent[j] = x;
      }
    }
  }
  return centroids;
}

// Runs fn(i) for i in [0, n) on `threads` threads (contiguous chunks).
template <typename Fn>
void ParallelFor(int64_t n, int threads, Fn fn) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  if (threads == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([=, &fn] {
      for (int64_t i = n * t / threads; i < n * (t + 1) / threads; ++i) fn(i);
    });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace

int ImiIndex::CodebookSizeFor(int64_t windows) {
  int k = 64;
  while (k < kMaxCodebook && static_cast<int64_t>(k) * k * 8 < windows) k *= 2;
  return k;
}

absl::StatusOr<std::unique_ptr<ImiIndex>> ImiIndex::Build(const uint32_t* items,
                                                          absl::Span<const ItemRange> ranges,
                                                          int threads, int stride) {
  if (stride != 4 && stride != 8) {
    return absl::InvalidArgumentError(absl::StrCat("index stride ", stride, " is not 4 or 8"));
  }
  auto index = std::unique_ptr<ImiIndex>(new ImiIndex());
  index->stride_ = stride;
  std::vector<int64_t> first_window(ranges.size() + 1, 0);  // prefix sums of windows
  int64_t end = 0;
  for (size_t r = 0; r < ranges.size(); ++r) {
    first_window[r + 1] = first_window[r] + index->WindowsOf(ranges[r].length);
    end = std::max(end, ranges[r].start + ranges[r].length);
  }
  if (end > int64_t{UINT32_MAX}) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the approximate index addresses at most 2^32 items (~", (int64_t{1} << 32) / 29000,
        " hours of audio); this one has ", end, ": split the catalogue into shards"));
  }
  const int64_t windows = first_window.back();
  index->k_ = CodebookSizeFor(windows);
  const int levels = Log2(index->k_);
  index->top_ = 1 << ((levels + 1) / 2);
  index->sub_ = index->k_ / index->top_;

  // Train on a deterministic sample: same catalogue, same index.
  std::mt19937_64 rng(0x7a11u);
  std::vector<const uint32_t*> sample;
  if (windows > 0) {
    std::uniform_int_distribution<int64_t> pick(0, windows - 1);
    for (int i = 0; i < kSampleWindows && i < 2 * windows; ++i) {
      const int64_t w = pick(rng);
      const size_t r = static_cast<size_t>(
          std::upper_bound(first_window.begin(), first_window.end(), w) - first_window.begin() - 1);
      const uint32_t* win = items + ranges[r].start + (w - first_window[r]) * stride;
      sample.push_back(win);
      sample.push_back(win + kImiBlockItems);
    }
  }
  index->top_centroids_ = KMeans(sample, index->top_, kTopIterations, &rng);
  std::vector<std::vector<const uint32_t*>> members(static_cast<size_t>(index->top_));
  for (const uint32_t* b : sample) {
    members[static_cast<size_t>(NearestCentroid256(b, index->top_centroids_.data(),
                                                   static_cast<size_t>(index->top_)))]
        .push_back(b);
  }
  index->leaf_centroids_.resize(static_cast<size_t>(index->k_) * kImiBlockItems);
  for (int t = 0; t < index->top_; ++t) {
    std::vector<const uint32_t*>& m = members[static_cast<size_t>(t)];
    // A first-level centroid with no members keeps copies of itself as leaves.
    if (m.empty()) m.push_back(&index->top_centroids_[static_cast<size_t>(t) * kImiBlockItems]);
    std::vector<uint32_t> leaves = KMeans(m, index->sub_, kLeafIterations, &rng);
    std::copy(leaves.begin(), leaves.end(),
              index->leaf_centroids_.begin() +
                  static_cast<std::ptrdiff_t>(t) * index->sub_ * kImiBlockItems);
  }

  // Cells of every window, then counting sort into posting lists.
  std::vector<uint32_t> cells(static_cast<size_t>(windows));
  const ImiIndex& idx = *index;
  // Blocks at the stride are encoded once: window w is blocks w and w + 8 / stride.
  const int64_t step = kImiBlockItems / stride;
  ParallelFor(static_cast<int64_t>(ranges.size()), threads, [&](int64_t r) {
    const ItemRange& range = ranges[static_cast<size_t>(r)];
    const int64_t nw = idx.WindowsOf(range.length);
    uint32_t* out = &cells[static_cast<size_t>(first_window[static_cast<size_t>(r)])];
    thread_local std::vector<uint16_t> codes;
    codes.resize(static_cast<size_t>(nw + step));
    for (int64_t b = 0; b < nw + step && nw > 0; ++b) {
      codes[static_cast<size_t>(b)] = idx.Encode(items + range.start + b * stride);
    }
    for (int64_t w = 0; w < nw; ++w) {
      out[w] =
          static_cast<uint32_t>(codes[static_cast<size_t>(w)]) * static_cast<uint32_t>(idx.k_) +
          codes[static_cast<size_t>(w + step)];
    }
  });
  const size_t ncells = static_cast<size_t>(index->k_) * static_cast<size_t>(index->k_);
  index->offsets_.assign(ncells + 1, 0);
  for (uint32_t c : cells) ++index->offsets_[c + 1];
  for (size_t c = 0; c < ncells; ++c) index->offsets_[c + 1] += index->offsets_[c];
  index->postings_.reserve(static_cast<size_t>(windows));
  AdviseHugePages(index->postings_.data(), index->postings_.capacity() * sizeof(uint32_t));
  index->postings_.resize(static_cast<size_t>(windows));
  std::vector<uint32_t> fill(index->offsets_.begin(), index->offsets_.end() - 1);
  for (size_t r = 0; r < ranges.size(); ++r) {
    for (int64_t w = first_window[r]; w < first_window[r + 1]; ++w) {
      index->postings_[fill[cells[static_cast<size_t>(w)]]++] =
          static_cast<uint32_t>(ranges[r].start + (w - first_window[r]) * stride);
    }
  }
  return index;
}

uint16_t ImiIndex::Encode(const uint32_t* block) const {
  // Beam descent: the leaves under the kEncodeBeam nearest first-level centroids. The query
  // side ranks all leaves exactly, so a reference filed under a leaf that is not its nearest
  // is found later or not at all; one first-level centroid alone misfiles ~1 block in 5.
  uint16_t top_dist[64];
  BlockDistances256(block, top_centroids_.data(), static_cast<size_t>(top_), top_dist);
  int best_leaf = 0, best = INT_MAX;
  bool tried[64] = {};
  for (int beam = 0; beam < std::min(kEncodeBeam, top_); ++beam) {
    int t = -1;
    for (int c = 0; c < top_; ++c) {
      if (!tried[c] && (t < 0 || top_dist[c] < top_dist[t])) t = c;
    }
    tried[t] = true;
    uint16_t leaf_dist[64];
    BlockDistances256(block, &leaf_centroids_[static_cast<size_t>(t) * sub_ * kImiBlockItems],
                      static_cast<size_t>(sub_), leaf_dist);
    for (int l = 0; l < sub_; ++l) {
      if (leaf_dist[l] < best) {
        best = leaf_dist[l];
        best_leaf = t * sub_ + l;
      }
    }
  }
  return static_cast<uint16_t>(best_leaf);
}

absl::Status ImiIndex::Add(const uint32_t* items, ItemRange range) {
  if (range.start + range.length > int64_t{UINT32_MAX}) {
    return absl::ResourceExhaustedError(
        "the approximate index addresses at most 2^32 items: split the catalogue into shards");
  }
  const int64_t nw = WindowsOf(range.length);
  for (int64_t w = 0; w < nw; ++w) {
    const int64_t pos = range.start + w * stride_;
    added_[Cell(items + pos)].push_back(static_cast<uint32_t>(pos));
  }
  num_added_ += nw;
  return absl::OkStatus();
}

namespace {

template <typename T>
absl::Status WriteVector(AtomicFileWriter* out, const std::vector<T>& v) {
  const int64_t n = static_cast<int64_t>(v.size());
  absl::Status s = out->Append(&n, sizeof(n));
  if (!s.ok()) return s;
  return out->Append(v.data(), v.size() * sizeof(T));
}

template <typename T>
absl::Status ReadVector(FileReader* in, int64_t max_size, std::vector<T>* v) {
  int64_t n = 0;
  absl::Status s = in->Read(&n, sizeof(n));
  if (!s.ok()) return s;
  if (n < 0 || n > max_size) {
    return absl::DataLossError(absl::StrCat("index snapshot: a table of ", n, " entries"));
  }
  v->reserve(static_cast<size_t>(n));
  AdviseHugePages(v->data(), v->capacity() * sizeof(T));
  v->resize(static_cast<size_t>(n));
  return in->Read(v->data(), v->size() * sizeof(T));
}

}  // namespace

absl::Status ImiIndex::Write(AtomicFileWriter* out) const {
  if (num_added_ != 0) {
    return absl::FailedPreconditionError("index has references added since it was built");
  }
  const int32_t dims[4] = {k_, top_, sub_, stride_};
  absl::Status s = out->Append(dims, sizeof(dims));
  if (s.ok()) s = WriteVector(out, top_centroids_);
  if (s.ok()) s = WriteVector(out, leaf_centroids_);
  if (s.ok()) s = WriteVector(out, offsets_);
  if (s.ok()) s = WriteVector(out, postings_);
  return s;
}

absl::StatusOr<std::unique_ptr<ImiIndex>> ImiIndex::Read(FileReader* in, int64_t num_items) {
  auto index = std::unique_ptr<ImiIndex>(new ImiIndex());
  int32_t dims[4] = {};
  absl::Status s = in->Read(dims, sizeof(dims));
  if (!s.ok()) return s;
  index->k_ = dims[0];
  index->top_ = dims[1];
  index->sub_ = dims[2];
  index->stride_ = dims[3];
  if ((index->stride_ != 4 && index->stride_ != 8) || index->k_ < 1 || index->k_ > kMaxCodebook ||
      index->top_ < 1 || index->sub_ < 1 || index->top_ * index->sub_ != index->k_ ||
      index->top_ > 64 || index->sub_ > 64) {
    return absl::DataLossError("index snapshot: bad codebook dimensions");
  }
  const int64_t k = index->k_;
  if (!(s = ReadVector(in, index->top_ * kImiBlockItems, &index->top_centroids_)).ok()) return s;
  if (!(s = ReadVector(in, k * kImiBlockItems, &index->leaf_centroids_)).ok()) return s;
  if (!(s = ReadVector(in, k * k + 1, &index->offsets_)).ok()) return s;
  if (!(s = ReadVector(in, num_items / index->stride_ + 1, &index->postings_)).ok()) return s;
  if (static_cast<int64_t>(index->top_centroids_.size()) != index->top_ * kImiBlockItems ||
      static_cast<int64_t>(index->leaf_centroids_.size()) != k * kImiBlockItems ||
      static_cast<int64_t>(index->offsets_.size()) != k * k + 1 || index->offsets_[0] != 0 ||
      index->offsets_.back() != index->postings_.size() ||
      !std::is_sorted(index->offsets_.begin(), index->offsets_.end())) {
    return absl::DataLossError("index snapshot: inconsistent posting lists");
  }
  for (uint32_t p : index->postings_) {
    if (static_cast<int64_t>(p) + kWindow > num_items) {
      return absl::DataLossError("index snapshot: a posting past the end of the items");
    }
  }
  return index;
}

int64_t ImiIndex::num_postings() const {
  return static_cast<int64_t>(postings_.size()) + num_added_;
}

int64_t ImiIndex::memory_bytes() const {
  return static_cast<int64_t>(
             (top_centroids_.size() + leaf_centroids_.size() + offsets_.size() + postings_.size()) *
             sizeof(uint32_t)) +
         num_added_ * static_cast<int64_t>(sizeof(uint32_t)) +
         static_cast<int64_t>(added_.size() * (sizeof(uint32_t) + sizeof(std::vector<uint32_t>)));
}

std::vector<WindowHit> ImiIndex::Search(const uint32_t* items, const uint32_t* query, int64_t n,
                                        int budget, int max_distance) const {
  std::vector<WindowHit> hits;
  if (n < kWindow || k_ == 0) return hits;
  const int64_t nblocks = n - kImiBlockItems + 1;
  const int ranked = std::min(k_, kMaxRanked);
  // For every query block position: its `ranked` nearest centroids as (distance << 16 | code),
  // ascending.
  std::vector<uint32_t> order(static_cast<size_t>(nblocks) * static_cast<size_t>(ranked));
  {
    std::vector<uint16_t> dist(static_cast<size_t>(k_));
    std::vector<uint32_t> keyed(static_cast<size_t>(k_));
    for (int64_t b = 0; b < nblocks; ++b) {
      BlockDistances256(query + b, leaf_centroids_.data(), static_cast<size_t>(k_), dist.data());
      for (int c = 0; c < k_; ++c) {
        keyed[static_cast<size_t>(c)] =
            (static_cast<uint32_t>(dist[static_cast<size_t>(c)]) << 16) | static_cast<uint32_t>(c);
      }
      std::partial_sort(keyed.begin(), keyed.begin() + ranked, keyed.end());
      std::copy(keyed.begin(), keyed.begin() + ranked,
                order.begin() + static_cast<std::ptrdiff_t>(b * ranked));
    }
  }
  using Entry = std::tuple<uint32_t, int, int>;  // (distance sum, rank in A, rank in B)
  std::vector<uint16_t> dist;
  std::vector<Entry> heap_storage;
  for (int64_t q = 0; q + kWindow <= n; ++q) {
    const uint32_t* ra = &order[static_cast<size_t>(q * ranked)];
    const uint32_t* rb = &order[static_cast<size_t>((q + kImiBlockItems) * ranked)];
    heap_storage.clear();
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap(
        std::greater<Entry>(), std::move(heap_storage));
    heap.emplace((ra[0] >> 16) + (rb[0] >> 16), 0, 0);
    int64_t read = 0;
    while (!heap.empty() && read < budget) {
      const auto [sum, i, j] = heap.top();
      heap.pop();
      // Every pair is pushed exactly once: (i+1, j) from (i, j), and (0, j+1) from (0, j).
      if (i + 1 < ranked) heap.emplace((ra[i + 1] >> 16) + (rb[j] >> 16), i + 1, j);
      if (i == 0 && j + 1 < ranked) heap.emplace((ra[0] >> 16) + (rb[j + 1] >> 16), 0, j + 1);
      const uint32_t cell = (ra[i] & 0xffffu) * static_cast<uint32_t>(k_) + (rb[j] & 0xffffu);
      auto scan = [&](const uint32_t* pos, size_t cnt) {
        if (cnt == 0) return;
        dist.resize(cnt);
        GatherDistances512(query + q, items, pos, cnt, dist.data());
        for (size_t p = 0; p < cnt; ++p) {
          if (dist[p] <= max_distance) {
            hits.push_back({static_cast<int32_t>(q), dist[p], static_cast<int64_t>(pos[p])});
          }
        }
        read += static_cast<int64_t>(cnt);
      };
      scan(postings_.data() + offsets_[cell], offsets_[cell + 1] - offsets_[cell]);
      if (!added_.empty()) {
        auto it = added_.find(cell);
        if (it != added_.end()) scan(it->second.data(), it->second.size());
      }
    }
  }
  return hits;
}

}  // namespace trainspotter
