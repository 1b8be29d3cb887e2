#include "service/rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trainspotter {

RateLimiter::RateLimiter(double qps, double burst, std::function<absl::Time()> now)
    : qps_(qps), burst_(burst > 0 ? burst : std::max(1.0, qps)), now_(std::move(now)) {}

RateLimiter::Bucket& RateLimiter::Refill(absl::string_view key) {
  absl::Time now = now_();
  auto [it, inserted] = buckets_.try_emplace(key);
  Bucket& bucket = it->second;
  if (inserted) {
    bucket.tokens = burst_;
  } else {
    double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - bucket.updated));
    bucket.tokens = std::min(burst_, bucket.tokens + elapsed * qps_);
  }
  bucket.updated = now;
  return bucket;
}

bool RateLimiter::TryAcquire(absl::string_view key) {
  if (!enabled()) return true;
  absl::MutexLock lock(&mu_);
  Bucket& bucket = Refill(key);
  if (bucket.tokens < 1.0) return false;
  bucket.tokens -= 1.0;
  return true;
}

absl::Duration RateLimiter::TimeToNextToken(absl::string_view key) {
  if (!enabled()) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  Bucket& bucket = Refill(key);
  if (bucket.tokens >= 1.0) return absl::ZeroDuration();
  return absl::Seconds((1.0 - bucket.tokens) / qps_);
}

absl::Status RateLimiter::Acquire(absl::string_view key, absl::Time deadline,
                                  const std::function<bool()>& cancelled) {
  if (!enabled()) return absl::OkStatus();
  while (!TryAcquire(key)) {
    if (cancelled && cancelled()) return absl::CancelledError("call cancelled");
    absl::Duration wait = TimeToNextToken(key);
    if (now_() + wait > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("rate limit (", qps_,
                       " requests/s for this key) leaves no room before "
                       "the deadline"));
    }
    // Short naps so cancellation is noticed promptly.
    absl::SleepFor(std::min(wait, absl::Milliseconds(50)) + absl::Microseconds(100));
  }
  return absl::OkStatus();
}

}  // namespace trainspotter
