// State shared by the gRPC handlers of one server: the catalogue, the fingerprinter, access
// control, limits, metrics and logs. Owned by Server; handlers hold a pointer.
//
// Thread-safety: every member is safe for concurrent use.
#ifndef TRAINSPOTTER_SERVICE_SERVICE_CORE_H_
#define TRAINSPOTTER_SERVICE_SERVICE_CORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "matcher/catalog.h"
#include "service/audio_fingerprinter.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/query_engine.h"
#include "service/rate_limiter.h"
#include "service/request_log.h"
#include "service/thread_pool.h"

namespace trainspotter {

// Bytes of uploads held in memory at once across all calls.
class ByteBudget {
 public:
  explicit ByteBudget(int64_t capacity) : capacity_(capacity) {}
  bool TryReserve(int64_t bytes) {
    absl::MutexLock lock(&mu_);
    if (used_ + bytes > capacity_) return false;
    used_ += bytes;
    return true;
  }
  void Release(int64_t bytes) {
    absl::MutexLock lock(&mu_);
    used_ -= bytes;
  }
  int64_t capacity() const { return capacity_; }

 private:
  const int64_t capacity_;
  absl::Mutex mu_;
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
};

// Holds part of a ByteBudget; returns it when destroyed.
class BudgetReservation {
 public:
  explicit BudgetReservation(ByteBudget* budget) : budget_(budget) {}
  ~BudgetReservation() { budget_->Release(bytes_); }
  BudgetReservation(const BudgetReservation&) = delete;
  BudgetReservation& operator=(const BudgetReservation&) = delete;
  bool Grow(int64_t bytes) {
    if (!budget_->TryReserve(bytes)) return false;
    bytes_ += bytes;
    return true;
  }

 private:
  ByteBudget* budget_;
  int64_t bytes_ = 0;
};

struct ServiceConfig {
  int64_t max_upload_bytes = int64_t{256} << 20;
  int64_t upload_memory_bytes = int64_t{1} << 30;
  std::vector<std::string> canonical_ingest_roots;
  // Queries of one MatchStream worked on at once.
  int stream_window = 8;
  int worker_threads = 2;
  std::string version;
};

struct ServiceCore {
  ServiceCore(const ServiceConfig& config, Catalog* catalog, AudioFingerprinter* fingerprinter,
              std::unique_ptr<Authenticator> auth, std::unique_ptr<RateLimiter> limiter,
              std::unique_ptr<RequestLog> log)
      : config(config),
        catalog(catalog),
        fingerprinter(fingerprinter),
        auth(std::move(auth)),
        limiter(std::move(limiter)),
        log(std::move(log)),
        engine(catalog, fingerprinter),
        upload_budget(config.upload_memory_bytes),
        pool(config.worker_threads) {}

  // Refreshes the catalogue-size gauges (after writes, and at start).
  void UpdateCatalogGauges() {
    absl::StatusOr<std::vector<DatasetInfo>> datasets = catalog->ListDatasets();
    metrics.SetCatalogSize(datasets.ok() ? static_cast<int64_t>(datasets->size()) : 0,
                           catalog->num_tracks(), catalog->hours());
  }

  const ServiceConfig config;
  Catalog* const catalog;
  AudioFingerprinter* const fingerprinter;
  const std::unique_ptr<Authenticator> auth;
  const std::unique_ptr<RateLimiter> limiter;
  const std::unique_ptr<RequestLog> log;
  ServiceMetrics metrics;
  QueryEngine engine;
  ByteBudget upload_budget;
  // Set when shutdown begins: streams stop reading new queries.
  std::atomic<bool> draining{false};
  const absl::Time started = absl::Now();
  // Declared last: destroyed first, so queued work never sees the members above destroyed.
  ThreadPool pool;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_SERVICE_CORE_H_
