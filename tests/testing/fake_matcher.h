// FakeMatcher: an in-memory, brute-force Matcher for tests of code built on the Matcher contract
// (the catalogue, the CLI, the service). A query matches a reference where, at one offset,
// at least `min_match_items` items are exactly equal; no index, no statistics.
#ifndef TRAINSPOTTER_TESTS_TESTING_FAKE_MATCHER_H_
#define TRAINSPOTTER_TESTS_TESTING_FAKE_MATCHER_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/fingerprint_types.h"
#include "matcher/matcher.h"

namespace trainspotter {

class FakeMatcher : public Matcher {
 public:
  // References shorter than `min_items` are refused (INVALID_ARGUMENT), as the real index
  // refuses audio too short to form a window.
  explicit FakeMatcher(int min_items = 16, int min_match_items = 8)
      : min_items_(min_items), min_match_items_(min_match_items) {}

  static absl::StatusOr<std::unique_ptr<Matcher>> Create(const MatcherOptions&) {
    return std::unique_ptr<Matcher>(new FakeMatcher());
  }

  absl::Status Add(int64_t key, absl::Span<const uint32_t> items) override {
    if (static_cast<int>(items.size()) < min_items_) {
      return absl::InvalidArgumentError(absl::StrCat("too short to index: ", items.size(),
                                                     " items, need ", min_items_));
    }
    absl::MutexLock l(&mu_);
    refs_[key].assign(items.begin(), items.end());
    ++adds_;
    return absl::OkStatus();
  }

  absl::Status Remove(int64_t key) override {
    absl::MutexLock l(&mu_);
    refs_.erase(key);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SegmentMatch>> Match(const MatchQuery& query) const override {
    absl::ReaderMutexLock l(&mu_);
    std::vector<SegmentMatch> out;
    const auto& q = query.items;
    const int64_t nq = static_cast<int64_t>(q.size());
    for (const auto& [key, ref] : refs_) {
      if (absl::Now() > query.deadline) return absl::DeadlineExceededError("fake match deadline");
      if (query.filter && !query.filter(key)) continue;
      const int64_t nr = static_cast<int64_t>(ref.size());
      int64_t best = 0, best_offset = 0, best_first = 0, best_last = 0;
      // offset = reference index - query index
      for (int64_t offset = -(nq - 1); offset < nr; ++offset) {
        int64_t count = 0, first = -1, last = -1;
        for (int64_t i = std::max<int64_t>(0, -offset); i < nq && i + offset < nr; ++i) {
          if (q[i] == ref[i + offset]) {
            ++count;
            if (first < 0) first = i;
            last = i;
          }
        }
        if (count > best) {
          best = count;
          best_offset = offset;
          best_first = first;
          best_last = last;
        }
      }
      if (best < min_match_items_) continue;
      SegmentMatch m;
      m.key = key;
      m.member = true;
      m.false_match_probability = 0;
      m.confidence = 1;
      m.query_start = ItemToSeconds(static_cast<double>(best_first));
      m.query_end = ItemToSeconds(static_cast<double>(best_last + 1));
      m.ref_start = ItemToSeconds(static_cast<double>(best_first + best_offset));
      m.ref_end = ItemToSeconds(static_cast<double>(best_last + 1 + best_offset));
      m.bit_error_rate = 0;
      out.push_back(m);
    }
    std::stable_sort(out.begin(), out.end(), [](const SegmentMatch& a, const SegmentMatch& b) {
      return a.query_end - a.query_start > b.query_end - b.query_start;
    });
    if (static_cast<int>(out.size()) > query.max_matches) out.resize(query.max_matches);
    return out;
  }

  int64_t num_tracks() const override {
    absl::ReaderMutexLock l(&mu_);
    return static_cast<int64_t>(refs_.size());
  }
  int64_t num_items() const override {
    absl::ReaderMutexLock l(&mu_);
    int64_t n = 0;
    for (const auto& [key, ref] : refs_) n += static_cast<int64_t>(ref.size());
    return n;
  }

  // Test hooks.
  bool Has(int64_t key) const {
    absl::ReaderMutexLock l(&mu_);
    return refs_.count(key) > 0;
  }
  int64_t adds() const {
    absl::ReaderMutexLock l(&mu_);
    return adds_;
  }

 private:
  const int min_items_;
  const int min_match_items_;
  mutable absl::Mutex mu_;
  std::map<int64_t, std::vector<uint32_t>> refs_;
  int64_t adds_ = 0;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TESTS_TESTING_FAKE_MATCHER_H_
