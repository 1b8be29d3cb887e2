// FakeCatalog: an in-memory Catalog (matcher/catalog.h) for tests of code built on the
// catalogue contract (the service, the CLI). Matching is exact and brute force: a track matches
// where, at one offset, at least `min_match_items` consecutive query items equal the track's
// items or its narrowband twin's. Like the real Matcher it tries the query's items, then its
// phase variants, then its speed variants, and stops at the first that finds a track.
// Knobs make failures and slowness reproducible: match_delay, fail_next_match; last_query() and
// narrowband_items() show what the code under test passed in.
//
// Thread-safety: as the contract says, every method may be called concurrently.
#ifndef TRAINSPOTTER_TESTS_TESTING_FAKE_CATALOG_H_
#define TRAINSPOTTER_TESTS_TESTING_FAKE_CATALOG_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/fingerprint_types.h"
#include "matcher/catalog.h"

namespace trainspotter {

class FakeCatalog : public Catalog {
 public:
  explicit FakeCatalog(int min_match_items = 8) : min_match_items_(min_match_items) {}

  // Each Match() sleeps this long first (deadline tests); it still honours query.deadline.
  void set_match_delay(absl::Duration delay) {
    absl::MutexLock l(&mu_);
    match_delay_ = delay;
  }
  // The next Match() fails with `status`.
  void FailNextMatch(absl::Status status) {
    absl::MutexLock l(&mu_);
    next_match_error_ = std::move(status);
  }
  int64_t match_calls() const { return match_calls_.load(); }
  // The query of the latest Match() call (default-constructed before the first).
  CatalogQuery last_query() const {
    absl::MutexLock l(&mu_);
    return last_query_;
  }
  // The stored narrowband twin of a track; empty if it has none or is unknown.
  std::vector<uint32_t> narrowband_items(const std::string& dataset,
                                         const std::string& track_id) const {
    absl::MutexLock l(&mu_);
    auto it = tracks_.find({dataset, track_id});
    return it == tracks_.end() ? std::vector<uint32_t>() : it->second.narrowband_items;
  }

  absl::Status EnsureDataset(const std::string& name, const std::string& version,
                             const std::string& description) override {
    absl::MutexLock l(&mu_);
    DatasetInfo& d = datasets_[name];
    d.name = name;
    d.version = version;
    if (!description.empty()) d.description = description;
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasTrack(const std::string& dataset, const std::string& track_id,
                                const std::string& content_hash) const override {
    absl::MutexLock l(&mu_);
    auto it = tracks_.find({dataset, track_id});
    return it != tracks_.end() && it->second.info.content_hash == content_hash;
  }

  absl::Status AddTracks(const std::string& dataset, absl::Span<const TrackInput> tracks) override {
    absl::MutexLock l(&mu_);
    auto d = datasets_.find(dataset);
    if (d == datasets_.end()) return absl::NotFoundError(absl::StrCat("no dataset ", dataset));
    for (const TrackInput& t : tracks) {
      if (t.track_id.empty() || t.items.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("track '", t.track_id, "' is empty"));
      }
      if (static_cast<int>(t.items.size()) < min_match_items_) {
        return absl::InvalidArgumentError(
            absl::StrCat("track '", t.track_id, "' is too short to index"));
      }
    }
    for (const TrackInput& t : tracks) {
      Track& track = tracks_[{dataset, t.track_id}];
      track.info.dataset = dataset;
      track.info.version = d->second.version;
      track.info.track_id = t.track_id;
      track.info.metadata = t.metadata;
      track.info.num_items = static_cast<int64_t>(t.items.size());
      track.info.content_hash = t.content_hash;
      track.items = t.items;
      track.narrowband_items = t.narrowband_items;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Delete(const std::string& dataset, const std::string& track_id) override {
    absl::MutexLock l(&mu_);
    if (datasets_.count(dataset) == 0) {
      return absl::NotFoundError(absl::StrCat("no dataset ", dataset));
    }
    if (!track_id.empty()) {
      if (tracks_.erase({dataset, track_id}) == 0) {
        return absl::NotFoundError(absl::StrCat("no track ", dataset, "/", track_id));
      }
      return 1;
    }
    int64_t n = 0;
    for (auto it = tracks_.begin(); it != tracks_.end();) {
      if (it->first.first == dataset) {
        it = tracks_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    datasets_.erase(dataset);
    return n;
  }

  absl::StatusOr<std::vector<DatasetInfo>> ListDatasets() const override {
    absl::MutexLock l(&mu_);
    std::vector<DatasetInfo> out;
    for (const auto& [name, info] : datasets_) {
      DatasetInfo d = info;
      for (const auto& [key, track] : tracks_) {
        if (key.first != name) continue;
        ++d.tracks;
        d.hours += track.info.metadata.duration_seconds / 3600.0;
      }
      out.push_back(d);
    }
    return out;
  }

  absl::StatusOr<TrackInfo> GetTrack(const std::string& dataset,
                                     const std::string& track_id) const override {
    absl::MutexLock l(&mu_);
    auto it = tracks_.find({dataset, track_id});
    if (it == tracks_.end()) {
      return absl::NotFoundError(absl::StrCat("no track ", dataset, "/", track_id));
    }
    return it->second.info;
  }

  absl::StatusOr<CatalogMatchResult> Match(const CatalogQuery& query) const override {
    ++match_calls_;
    absl::Duration delay;
    {
      absl::MutexLock l(&mu_);
      last_query_ = query;
      delay = match_delay_;
      if (!next_match_error_.ok()) {
        absl::Status error = std::move(next_match_error_);
        next_match_error_ = absl::OkStatus();
        return error;
      }
      for (const std::string& name : query.datasets) {
        if (datasets_.count(name) == 0) {
          return absl::InvalidArgumentError(absl::StrCat("unknown dataset '", name, "'"));
        }
      }
    }
    absl::Time until = absl::Now() + delay;
    while (absl::Now() < until) {
      if (absl::Now() >= query.deadline) return absl::DeadlineExceededError("fake match deadline");
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (absl::Now() >= query.deadline) return absl::DeadlineExceededError("fake match deadline");

    absl::MutexLock l(&mu_);
    CatalogMatchResult result;
    // The cascade: (items, speed, start of the variant in the query).
    struct Pass {
      const std::vector<uint32_t>* items;
      double speed, start;
    };
    std::vector<Pass> passes = {{&query.items, 1.0, 0.0}};
    for (const auto& [start, v] : query.phase_variants) passes.push_back({&v.items, 1.0, start});
    for (const auto& [speed, v] : query.speed_variants) passes.push_back({&v.items, speed, 0.0});
    for (const Pass& pass : passes) {
      for (const auto& [key, track] : tracks_) {
        if (!query.datasets.empty() && std::find(query.datasets.begin(), query.datasets.end(),
                                                 key.first) == query.datasets.end()) {
          continue;
        }
        Run best = BestRun(*pass.items, track.items);
        Run twin = BestRun(*pass.items, track.narrowband_items);
        if (twin.length > best.length) best = twin;
        if (best.length < min_match_items_) continue;
        CatalogMatch m;
        m.track = track.info;
        m.segment.member = true;
        m.segment.false_match_probability = 1e-9;
        m.segment.confidence = 1 - 1e-9;
        m.segment.query_start = pass.start + ItemToSeconds(best.query_start) * pass.speed;
        m.segment.query_end =
            pass.start + ItemToSeconds(best.query_start + best.length) * pass.speed;
        m.segment.ref_start = ItemToSeconds(best.ref_start);
        m.segment.ref_end = ItemToSeconds(best.ref_start + best.length);
        m.segment.bit_error_rate = 0;
        m.segment.speed = pass.speed;
        result.matches.push_back(std::move(m));
      }
      if (!result.matches.empty()) break;
    }
    std::sort(result.matches.begin(), result.matches.end(), [](const auto& a, const auto& b) {
      return a.segment.query_end - a.segment.query_start >
             b.segment.query_end - b.segment.query_start;
    });
    if (static_cast<int>(result.matches.size()) > query.max_matches) {
      result.matches.resize(std::max(0, query.max_matches));
    }
    result.member = !result.matches.empty();
    return result;
  }

  int64_t num_tracks() const override {
    absl::MutexLock l(&mu_);
    return static_cast<int64_t>(tracks_.size());
  }
  double hours() const override {
    absl::MutexLock l(&mu_);
    double h = 0;
    for (const auto& [key, track] : tracks_) h += track.info.metadata.duration_seconds / 3600.0;
    return h;
  }
  int64_t num_unindexed() const override { return 0; }
  absl::Status CheckIntegrity() const override { return absl::OkStatus(); }
  absl::Status Compact() override { return absl::OkStatus(); }

 private:
  struct Track {
    TrackInfo info;
    std::vector<uint32_t> items;
    std::vector<uint32_t> narrowband_items;
  };
  struct Run {
    int query_start = 0, ref_start = 0, length = 0;
  };
  // Longest run of equal items over all alignments.
  static Run BestRun(const std::vector<uint32_t>& q, const std::vector<uint32_t>& r) {
    Run best;
    const int nq = static_cast<int>(q.size()), nr = static_cast<int>(r.size());
    for (int offset = -(nq - 1); offset < nr; ++offset) {
      int run = 0;
      for (int i = std::max(0, -offset); i < nq && i + offset < nr; ++i) {
        run = q[i] == r[i + offset] ? run + 1 : 0;
        if (run > best.length) best = {i - run + 1, i - run + 1 + offset, run};
      }
    }
    return best;
  }

  const int min_match_items_;
  mutable absl::Mutex mu_;
  std::map<std::string, DatasetInfo> datasets_;
  std::map<std::pair<std::string, std::string>, Track> tracks_;
  absl::Duration match_delay_;
  mutable absl::Status next_match_error_;
  mutable std::atomic<int64_t> match_calls_{0};
  mutable CatalogQuery last_query_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TESTS_TESTING_FAKE_CATALOG_H_
