#include "service/metrics.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace trainspotter {
namespace {

// From 0.5 ms (a fingerprint query on a small catalogue) to 2 minutes (decoding a long upload).
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,    1,     2.5,    5,     10,   30,    60,   120};
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
  prometheus::Family<prometheus::Gauge>& in_flight = prometheus::BuildGauge()
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

MetricsEndpoint::MetricsEndpoint(int listen_fd, int port, const ServiceMetrics* metrics)
    : listen_fd_(listen_fd), port_(port), metrics_(metrics) {
  thread_ = std::thread([this] { Serve(); });
}

MetricsEndpoint::~MetricsEndpoint() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, const ServiceMetrics& metrics) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "' needs a port, e.g. 127.0.0.1:9464"));
  }
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "': ", ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("metrics socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", std::strerror(err)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  int bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(fd, bound_port, &metrics));
}

void MetricsEndpoint::Serve() {
  while (!stop_) {
    pollfd listening{listen_fd_, POLLIN, 0};
    if (::poll(&listening, 1, 200) <= 0) continue;  // wake up to notice stop_
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One short request at a time: read the request head (2 s at most), answer, close.
    std::string request;
    char buf[2048];
    absl::Time deadline = absl::Now() + absl::Seconds(2);
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192 &&
           absl::Now() < deadline) {
      pollfd conn{fd, POLLIN, 0};
      if (::poll(&conn, 1, 100) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    std::string status = "200 OK", body;
    if (request.rfind("GET /metrics", 0) == 0 || request.rfind("GET / ", 0) == 0) {
      body = metrics_->Scrape();
    } else {
      status = "404 Not Found";
      body = "metrics are at /metrics\n";
    }
    std::string response = absl::StrCat("HTTP/1.0 ", status,
                                        "\r\nContent-Type: text/plain; version=0.0.4; "
                                        "charset=utf-8\r\nContent-Length: ",
                                        body.size(), "\r\nConnection: close\r\n\r\n", body);
    const char* p = response.data();
    size_t left = response.size();
    while (left > 0) {
      ssize_t n = ::send(fd, p, left, MSG_NOSIGNAL);
      if (n <= 0) break;
      p += n;
      left -= static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

}  // namespace trainspotter
