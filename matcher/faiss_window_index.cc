// The only file that includes FAISS. FAISS throws faiss::FaissException (and std::bad_alloc);
// every call is wrapped and translated to absl::Status here.
#include <faiss/IndexBinaryFlat.h>
#include <faiss/impl/FaissException.h>

#include <exception>
#include <memory>

#include "absl/strings/str_cat.h"
#include "matcher/hamming.h"
#include "matcher/huge_pages.h"
#include "matcher/window_index.h"

namespace trainspotter {
namespace {

class FaissFlatWindowIndex : public WindowIndex {
 public:
  explicit FaissFlatWindowIndex(std::unique_ptr<faiss::IndexBinaryFlat> index)
      : index_(std::move(index)) {}

  absl::Status Append(const uint32_t* items, int64_t n) override {
    const uint8_t* before = index_->xb.data();
    try {
      index_->add(n, reinterpret_cast<const uint8_t*>(items));
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("adding ", n, " items to the index: ", e.what()));
    }
    // Moved to a bigger buffer: its untouched tail can still get huge pages.
    if (index_->xb.data() != before) AdviseHugePages(index_->xb.data(), index_->xb.capacity());
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t*> Extend(int64_t n) override {
    const uint8_t* before = index_->xb.data();
    const size_t old_bytes = index_->xb.size();
    try {
      // IndexBinaryFlat keeps its codes in xb; growing it and ntotal together is what add()
      // does, without the copy.
      index_->xb.resize(old_bytes + static_cast<size_t>(n) * sizeof(uint32_t));
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("adding ", n, " items to the index: ", e.what()));
    }
    index_->ntotal += n;
    if (index_->xb.data() != before) AdviseHugePages(index_->xb.data(), index_->xb.capacity());
    return reinterpret_cast<uint32_t*>(index_->xb.data() + old_bytes);
  }

  absl::Status Reserve(int64_t n) override {
    if (n <= index_->ntotal) return absl::OkStatus();
    try {
      index_->xb.reserve(static_cast<size_t>(n) * sizeof(uint32_t));
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("reserving memory for ", n, " items: ", e.what()));
    }
    AdviseHugePages(index_->xb.data(), index_->xb.capacity());
    return absl::OkStatus();
  }

  void Clear() override {
    index_->reset();
    index_->xb.shrink_to_fit();
  }

  const uint32_t* items() const override {
    return reinterpret_cast<const uint32_t*>(index_->xb.data());
  }
  int64_t size() const override { return index_->ntotal; }

  absl::Status Search(const uint32_t* query_items, int64_t nq, int k, int max_distance,
                      int32_t* distances, int64_t* positions) const override {
    if (k <= 0) return absl::InvalidArgumentError("k must be positive");
    const int64_t windows = index_->ntotal - kWindowItems + 1;
    HammingKnn512(reinterpret_cast<const uint8_t*>(query_items), sizeof(uint32_t),
                  static_cast<size_t>(nq), index_->xb.data(), sizeof(uint32_t),
                  static_cast<size_t>(windows > 0 ? windows : 0), k, max_distance, distances,
                  positions);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<faiss::IndexBinaryFlat> index_;
};

}  // namespace

std::unique_ptr<WindowIndex> NewFlatWindowIndex() {
  return std::make_unique<FaissFlatWindowIndex>(std::make_unique<faiss::IndexBinaryFlat>(32));
}

}  // namespace trainspotter
