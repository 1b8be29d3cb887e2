#include "service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "service/catalog_service.h"
#include "service/ingest_paths.h"
#include "service/membership_service.h"
#include "service/service_core.h"

namespace trainspotter {
namespace {

constexpr const char* kServiceNames[] = {"trainspotter.v1.Membership", "trainspotter.v1.Catalog"};

// Splits "host:port" / "[v6]:port"; false if there is no port.
bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return true;
}

// gRPC's process-wide plugin and health switches, set before the first ServerBuilder.
void InitGrpcGlobals() {
  static const bool done = [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    return true;
  }();
  (void)done;
}

}  // namespace

bool IsLoopbackAddress(const std::string& listen_address) {
  if (absl::StartsWith(listen_address, "unix:") ||
      absl::StartsWith(listen_address, "unix-abstract:")) {
    return true;
  }
  absl::string_view address = listen_address;
  absl::ConsumePrefix(&address, "dns:");
  absl::ConsumePrefix(&address, "ipv4:");
  absl::ConsumePrefix(&address, "ipv6:");
  std::string host, port;
  if (!SplitHostPort(std::string(address), &host, &port)) return false;
  host = absl::AsciiStrToLower(host);
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8, written as a dotted quad.
  std::vector<std::string> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (const std::string& octet : octets) {
    int value;
    if (!absl::SimpleAtoi(octet, &value) || value < 0 || value > 255) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, Catalog* catalog,
    std::unique_ptr<AudioFingerprinter> fingerprinter) {
  if (catalog == nullptr) return absl::InvalidArgumentError("no catalogue");
  std::string host, port;
  if (!SplitHostPort(options.listen_address, &host, &port) &&
      !absl::StartsWith(options.listen_address, "unix:")) {
    return absl::InvalidArgumentError(absl::StrCat("listen address '", options.listen_address,
                                                   "' needs a port, e.g. 127.0.0.1:50051"));
  }
  if (options.max_upload_bytes <= 0) {
    return absl::InvalidArgumentError("the upload limit must be positive");
  }

  // Access control.
  std::unique_ptr<KeyStore> keys;
  if (!options.keys_file.empty()) {
    TS_ASSIGN_OR_RETURN(keys, KeyStore::Load(options.keys_file));
  } else if (!IsLoopbackAddress(options.listen_address)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", options.listen_address,
        " without API keys: anyone who can reach it could query and change the catalogue. "
        "Pass --keys FILE (create lines with 'trainspotter serve --hash-key KEY'), or listen on "
        "a loopback address such as 127.0.0.1:50051"));
  }

  // Transport security.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  bool tls = false;
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  }
  if (!options.tls_cert_file.empty()) {
    TS_ASSIGN_OR_RETURN(std::string cert, ReadFile(options.tls_cert_file, 1 << 20));
    TS_ASSIGN_OR_RETURN(std::string key, ReadFile(options.tls_key_file, 1 << 20));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(ssl);
    tls = true;
  } else {
    credentials = grpc::InsecureServerCredentials();
  }

  ServiceConfig config;
  config.max_upload_bytes = options.max_upload_bytes;
  config.upload_memory_bytes =
      options.upload_memory_bytes > 0 ? options.upload_memory_bytes : 4 * options.max_upload_bytes;
  TS_ASSIGN_OR_RETURN(config.canonical_ingest_roots, CanonicalizeIngestRoots(options.ingest_roots));
  int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  config.worker_threads = options.worker_threads > 0 ? options.worker_threads : hardware;
  config.stream_window =
      options.stream_window > 0 ? options.stream_window : 2 * config.worker_threads;
  config.version = options.version;

  std::unique_ptr<Server> server(new Server());
  server->fingerprinter_ =
      fingerprinter != nullptr ? std::move(fingerprinter) : NewDefaultAudioFingerprinter();
  server->core_ = std::make_unique<ServiceCore>(
      config, catalog, server->fingerprinter_.get(),
      std::make_unique<Authenticator>(std::move(keys), options.keys_file),
      std::make_unique<RateLimiter>(options.rate_limit_qps, options.rate_limit_burst),
      std::make_unique<RequestLog>(options.log_sink));
  server->core_->UpdateCatalogGauges();
  server->membership_ = std::make_unique<MembershipServiceImpl>(server->core_.get());
  server->catalog_service_ = std::make_unique<CatalogServiceImpl>(server->core_.get());
  server->tls_ = tls;

  InitGrpcGlobals();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(options.listen_address, credentials, &selected_port);
  builder.RegisterService(server->membership_.get());
  builder.RegisterService(server->catalog_service_.get());
  // Chunks are at most 4 MiB; a raw fingerprint of a 10-hour master is ~1.2 MB.
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  grpc::ResourceQuota quota("trainspotter");
  quota.SetMaxThreads(std::max(8, options.max_concurrent_calls));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr ||
      (selected_port == 0 && !absl::StartsWith(options.listen_address, "unix:"))) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address,
                                               " (address in use, or not an address here?)"));
  }
  server->port_ = selected_port;
  if (absl::StartsWith(options.listen_address, "unix:")) {
    server->address_ = options.listen_address;
  } else {
    server->address_ =
        absl::StrCat(host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host, ":",
                     selected_port);
  }

  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    for (const char* name : kServiceNames) health->SetServingStatus(name, true);
  }
  return server;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

bool Server::authentication_enabled() const { return core_->auth->enabled(); }

ServiceMetrics& Server::metrics() { return core_->metrics; }

std::shared_ptr<grpc::Channel> Server::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

absl::Status Server::ReloadKeys() { return core_->auth->Reload(); }

void Server::Shutdown(absl::Duration grace, absl::Duration drain_delay) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || server_ == nullptr) return;
    shut_down_ = true;
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);
  if (drain_delay > absl::ZeroDuration()) absl::SleepFor(drain_delay);
  core_->draining.store(true);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
}

void Server::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace trainspotter
