// A fixed set of worker threads running queued closures: bounds the CPU work of MatchStream
// queries whatever the number of streams.
//
// Thread-safety: Schedule() may be called from any thread. The destructor runs every queued
// closure, then joins the workers.
#ifndef TRAINSPOTTER_SERVICE_THREAD_POOL_H_
#define TRAINSPOTTER_SERVICE_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace trainspotter {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> work);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_THREAD_POOL_H_
