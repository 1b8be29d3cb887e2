// The trainspotter gRPC server: Membership and Catalog services, the standard health service
// (grpc.health.v1.Health) and server reflection, over plain TCP or TLS.
//
//   ServerOptions options;
//   options.listen_address = "127.0.0.1:0";
//   auto server = Server::Start(options, catalog.get());
//   ... server->port() ...
//   server->Shutdown(absl::Seconds(10));  // NOT_SERVING, drain, stop
//
// Thread-safety: all methods may be called from any thread; Shutdown() more than once is fine.
#ifndef TRAINSPOTTER_SERVICE_SERVER_H_
#define TRAINSPOTTER_SERVICE_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "matcher/catalog.h"
#include "service/audio_fingerprinter.h"

namespace grpc {
class Channel;
class Server;
}  // namespace grpc

namespace trainspotter {

class ServiceMetrics;
struct ServiceCore;
class MembershipServiceImpl;
class CatalogServiceImpl;

struct ServerOptions {
  // host:port; port 0 picks a free port (see Server::port()). "[::1]:50051" for IPv6.
  std::string listen_address = "127.0.0.1:50051";
  // API keys file (see service/auth.h). Empty: no authentication, allowed only when
  // listen_address is a loopback address.
  std::string keys_file;
  // PEM certificate chain and private key: serve TLS. Both or neither.
  std::string tls_cert_file, tls_key_file;
  int64_t max_upload_bytes = int64_t{256} << 20;
  // Upload bytes held in memory across all calls; 0 = 4 x max_upload_bytes.
  int64_t upload_memory_bytes = 0;
  // Per-key requests per second (token bucket); 0 = unlimited. Burst 0 = max(1, qps).
  double rate_limit_qps = 0;
  double rate_limit_burst = 0;
  // Folders IngestTracks may read server_path files from.
  std::vector<std::string> ingest_roots;
  // Threads answering MatchStream queries; 0 = hardware threads.
  int worker_threads = 0;
  // Queries of one MatchStream in progress at once; 0 = 2 x worker threads.
  int stream_window = 0;
  // Most concurrent calls (gRPC sync-server threads); more get RESOURCE_EXHAUSTED.
  int max_concurrent_calls = 256;
  // Reported by GetStats.
  std::string version = "dev";
  // Receives the JSON request-log lines; empty = stderr.
  std::function<void(absl::string_view)> log_sink;
};

// True for 127.0.0.0/8, ::1, "localhost" and unix: addresses.
bool IsLoopbackAddress(const std::string& listen_address);

class Server {
 public:
  // Builds and starts the server. `catalog` (not owned) must outlive it; `fingerprinter` null =
  // the default (FFmpeg + Chromaprint). INVALID_ARGUMENT / FAILED_PRECONDITION for bad options
  // (keys missing on a non-loopback address, half a TLS pair, unreadable files, bad ingest
  // roots), UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, Catalog* catalog,
      std::unique_ptr<AudioFingerprinter> fingerprinter = nullptr);
  ~Server();  // Shutdown(0) if still running.

  // The bound port, and "host:port" with it.
  int port() const { return port_; }
  const std::string& address() const { return address_; }
  bool authentication_enabled() const;
  bool tls() const { return tls_; }

  ServiceMetrics& metrics();
  // A channel to this server that bypasses the network (tests, benchmarks).
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Re-reads the keys file (SIGHUP). Old keys stay on error.
  absl::Status ReloadKeys();

  // Graceful stop: health turns NOT_SERVING for every service, `drain_delay` passes (so load
  // balancers notice) during which calls are still served, then new calls are refused, streams
  // stop taking queries (ending with UNAVAILABLE), and in-flight calls get until `grace` to
  // finish before they are cancelled. Returns when all handlers have returned.
  void Shutdown(absl::Duration grace, absl::Duration drain_delay = absl::ZeroDuration());

  // Blocks until Shutdown() completes.
  void Wait();

 private:
  Server() = default;

  std::unique_ptr<AudioFingerprinter> fingerprinter_;
  std::unique_ptr<ServiceCore> core_;
  std::unique_ptr<MembershipServiceImpl> membership_;
  std::unique_ptr<CatalogServiceImpl> catalog_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  bool tls_ = false;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_SERVER_H_
