#include "service/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trainspotter {
namespace {

// From 0.5 ms (a fingerprint query on a small catalogue) to 2 minutes (decoding a long upload).
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,      2.5,   5,      10,    30,   60,    120};
}

std::string CodeName(absl::StatusCode code) {
  // Prometheus convention for gRPC (as go-grpc-prometheus): the code's upper-case name.
  return absl::StatusCodeToString(code);
}

}  // namespace

struct ServiceMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("trainspotter_requests_total")
          .Help("gRPC calls finished, by method and status code")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("trainspotter_request_duration_seconds")
          .Help("gRPC call latency in seconds, by method")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& in_flight =
      prometheus::BuildGauge()
          .Name("trainspotter_requests_in_flight")
          .Help("gRPC calls being served, by method")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& stream_queries =
      prometheus::BuildCounter()
          .Name("trainspotter_stream_queries_total")
          .Help("Queries answered on MatchStream, by status code")
          .Register(*registry);
  prometheus::Histogram& stream_latency =
      prometheus::BuildHistogram()
          .Name("trainspotter_stream_query_duration_seconds")
          .Help("Latency of single queries on MatchStream, in seconds")
          .Register(*registry)
          .Add({}, LatencyBuckets());
  prometheus::Counter& upload_bytes = prometheus::BuildCounter()
                                          .Name("trainspotter_upload_bytes_total")
                                          .Help("Audio bytes received (MatchAudio and ingest)")
                                          .Register(*registry)
                                          .Add({});
  prometheus::Gauge& catalog_tracks = prometheus::BuildGauge()
                                          .Name("trainspotter_catalog_tracks")
                                          .Help("Reference tracks in the catalogue")
                                          .Register(*registry)
                                          .Add({});
  prometheus::Gauge& catalog_hours = prometheus::BuildGauge()
                                         .Name("trainspotter_catalog_hours")
                                         .Help("Hours of reference audio in the catalogue")
                                         .Register(*registry)
                                         .Add({});
  prometheus::Gauge& catalog_datasets = prometheus::BuildGauge()
                                            .Name("trainspotter_catalog_datasets")
                                            .Help("Datasets in the catalogue")
                                            .Register(*registry)
                                            .Add({});
  std::atomic<int64_t> total_in_flight{0};
};

ServiceMetrics::ServiceMetrics() : impl_(std::make_unique<Impl>()) {}
ServiceMetrics::~ServiceMetrics() = default;

void ServiceMetrics::CallStarted(const std::string& method) {
  impl_->in_flight.Add({{"method", method}}).Increment();
  impl_->total_in_flight.fetch_add(1, std::memory_order_relaxed);
}

void ServiceMetrics::CallFinished(const std::string& method, absl::StatusCode code,
                                  absl::Duration latency) {
  impl_->in_flight.Add({{"method", method}}).Decrement();
  impl_->total_in_flight.fetch_sub(1, std::memory_order_relaxed);
  impl_->requests.Add({{"method", method}, {"code", CodeName(code)}}).Increment();
  impl_->latency.Add({{"method", method}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void ServiceMetrics::StreamQueryFinished(absl::StatusCode code, absl::Duration latency) {
  impl_->stream_queries.Add({{"code", CodeName(code)}}).Increment();
  impl_->stream_latency.Observe(absl::ToDoubleSeconds(latency));
}

void ServiceMetrics::UploadBytes(int64_t bytes) {
  impl_->upload_bytes.Increment(static_cast<double>(bytes));
}

void ServiceMetrics::SetCatalogSize(int64_t datasets, int64_t tracks, double hours) {
  impl_->catalog_datasets.Set(static_cast<double>(datasets));
  impl_->catalog_tracks.Set(static_cast<double>(tracks));
  impl_->catalog_hours.Set(hours);
}

int64_t ServiceMetrics::calls_in_flight() const {
  return impl_->total_in_flight.load(std::memory_order_relaxed);
}

std::string ServiceMetrics::Scrape() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

std::shared_ptr<prometheus::Registry> ServiceMetrics::registry() const { return impl_->registry; }

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer, int port)
    : exposer_(std::move(exposer)), port_(port) {}
MetricsEndpoint::~MetricsEndpoint() = default;

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, const ServiceMetrics& metrics) {
  // civetweb (inside prometheus-cpp) throws when it cannot listen; stop that here.
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
    exposer->RegisterCollectable(metrics.registry());
    std::vector<int> ports = exposer->GetListeningPorts();
    int port = ports.empty() ? 0 : ports.front();
    return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(exposer), port));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
}

}  // namespace trainspotter
