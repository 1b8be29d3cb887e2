// Prometheus metrics of the service (prometheus-cpp), and the HTTP endpoint that exposes them.
//
//   trainspotter_requests_total{method,code}            calls finished, by gRPC status code
//   trainspotter_request_duration_seconds{method}       call latency histogram
//   trainspotter_requests_in_flight{method}             calls being served now
//   trainspotter_stream_queries_total{code}             queries answered on MatchStream
//   trainspotter_stream_query_duration_seconds          per-query latency on MatchStream
//   trainspotter_upload_bytes_total                     audio bytes received (MatchAudio, ingest)
//   trainspotter_catalog_tracks / _hours / _datasets    catalogue size
//
// Thread-safety: all methods may be called concurrently.
#ifndef TRAINSPOTTER_SERVICE_METRICS_H_
#define TRAINSPOTTER_SERVICE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace trainspotter {

class ServiceMetrics {
 public:
  ServiceMetrics();
  ~ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  void CallStarted(const std::string& method);
  void CallFinished(const std::string& method, absl::StatusCode code, absl::Duration latency);
  void StreamQueryFinished(absl::StatusCode code, absl::Duration latency);
  void UploadBytes(int64_t bytes);
  void SetCatalogSize(int64_t datasets, int64_t tracks, double hours);

  // Calls in flight across all methods.
  int64_t calls_in_flight() const;

  // The Prometheus text exposition of every metric (what /metrics serves).
  std::string Scrape() const;

  std::shared_ptr<prometheus::Registry> registry() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Serves `metrics` at http://ADDR/metrics (Prometheus text format 0.0.4) until destroyed.
// `address` is "host:port" (port 0 picks a free one). UNAVAILABLE if it cannot be bound.
//
// A deliberately small HTTP/1.0 responder on one thread rather than prometheus-cpp's Exposer:
// Debian's civetweb (under the Exposer) runs its workers on fixed 100 KiB stacks, and in this
// process OpenBLAS's 60 KiB of static TLS lives on every thread's stack, so the Exposer's first
// scrape overflows the stack and crashes the server.
class MetricsEndpoint {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& address,
                                                                const ServiceMetrics& metrics);
  ~MetricsEndpoint();
  // The bound port.
  int port() const { return port_; }

 private:
  MetricsEndpoint(int listen_fd, int port, const ServiceMetrics* metrics);
  void Serve();

  const int listen_fd_;
  const int port_;
  const ServiceMetrics* metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_METRICS_H_
