// Per-key request rate limits: one token bucket per API key name.
//
// Thread-safety: all methods may be called concurrently.
#ifndef TRAINSPOTTER_SERVICE_RATE_LIMITER_H_
#define TRAINSPOTTER_SERVICE_RATE_LIMITER_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace trainspotter {

class RateLimiter {
 public:
  // `qps` tokens are added per second up to `burst` (burst <= 0: max(1, qps)). qps <= 0
  // disables limiting. `now` is the clock (tests pass a fake one).
  RateLimiter(double qps, double burst, std::function<absl::Time()> now = absl::Now);

  bool enabled() const { return qps_ > 0; }

  // Takes a token for `key` if one is available now: false means over the limit.
  bool TryAcquire(absl::string_view key);

  // Waits for a token (pacing a stream rather than failing it). DEADLINE_EXCEEDED if none
  // would be available before `deadline`; CANCELLED if `cancelled` returns true while waiting.
  absl::Status Acquire(absl::string_view key, absl::Time deadline,
                       const std::function<bool()>& cancelled);

  // Time until `key` has a token (zero if it has one now).
  absl::Duration TimeToNextToken(absl::string_view key);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  // Refills the bucket for `key` up to now and returns it.
  Bucket& Refill(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double qps_;
  const double burst_;
  const std::function<absl::Time()> now_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_RATE_LIMITER_H_
