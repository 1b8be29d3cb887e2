// trainspotter serve: serve a catalogue over gRPC (Membership and Catalog services, health,
// reflection, Prometheus metrics). Composition only: the server lives in service/.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "matcher/catalog.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/server.h"
#include "tools/commands.h"

namespace trainspotter::cli {
namespace {

constexpr const char* kServeHelpFooter = R"(
Serves the catalogue in --catalog over gRPC: trainspotter.v1.Membership (MatchAudio,
MatchFingerprint, MatchStream), trainspotter.v1.Catalog (ListDatasets, GetTrack, IngestTracks,
DeleteTracks, GetStats), grpc.health.v1.Health and server reflection (grpcurl works without
.proto files). Ingests and deletes through the API are visible to queries at once, without a
restart. The API is documented field by field in proto/trainspotter/v1/*.proto.

On start it prints "listening on HOST:PORT" on stdout (with --listen 127.0.0.1:0 the port is
chosen by the system). Every call is logged as one JSON line on stderr.

API keys. Clients send "authorization: Bearer <key>". The --keys file has one key per line,
"name role sha256hex", with role "query" (Membership calls, catalogue reads) or "admin"
(also IngestTracks and DeleteTracks). Only hashes are stored. To add a key:
  trainspotter serve --new-key alice --key-role admin >> keys.txt   # prints the key on stderr
  trainspotter serve --hash-key - --key-name bob < bob.key >> keys.txt   # an existing key
kill -HUP <pid> re-reads the keys file without a restart. Without --keys the server refuses
any address but a loopback one (127.0.0.1, [::1], localhost) and warns that it is open.

Limits. --max-upload-mb caps one uploaded file (RESOURCE_EXHAUSTED above it); --rate-limit
gives every key a token bucket (unary calls over it fail with RESOURCE_EXHAUSTED, MatchStream
queries are paced). Client deadlines are honoured while decoding and matching.

Stopping. SIGTERM or SIGINT: health turns NOT_SERVING, after --drain-delay new calls are
refused, calls in flight get --grace seconds to finish, then the process exits 0. A second
signal exits at once (status 1).

Examples:
  trainspotter serve --catalog cat                          # loopback, no keys, port 50051
  trainspotter serve --catalog cat --listen 0.0.0.0:50051 --keys keys.txt \
      --tls-cert server.pem --tls-key server.key --metrics 127.0.0.1:9464 \
      --ingest-root /srv/datasets --rate-limit 200
  grpcurl -plaintext 127.0.0.1:50051 list
)";

// Signals arrive through a self-pipe: the handler only write()s the signal number, and the main
// thread reads it. (Blocking the signals and sigwait()ing is not enough here: libraries such as
// OpenBLAS start threads before main() runs, and those would take the default action.)
int g_signal_pipe[2] = {-1, -1};

extern "C" void OnSignal(int signal_number) {
  unsigned char byte = static_cast<unsigned char>(signal_number);
  ssize_t ignored = ::write(g_signal_pipe[1], &byte, 1);
  (void)ignored;
}

absl::Status InstallSignalHandlers() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
    if (::sigaction(signal_number, &action, nullptr) != 0) {
      return absl::InternalError("sigaction failed");
    }
  }
  return absl::OkStatus();
}

// The next signal number from the pipe (0 = the stopper thread's wake-up).
int NextSignal() {
  unsigned char byte = 0;
  while (true) {
    ssize_t n = ::read(g_signal_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe broke: behave as if asked to stop
  }
}

int HashKeyCommand(const std::string& key_arg, const std::string& name, const std::string& role) {
  std::string key = key_arg;
  if (key == "-") {
    if (!std::getline(std::cin, key)) {
      std::fprintf(stderr, "trainspotter serve: --hash-key -: no key on standard input\n");
      return 2;
    }
  }
  key = std::string(absl::StripAsciiWhitespace(key));
  absl::StatusOr<std::string> line = FormatKeyLine(name, role, key);
  if (!line.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n", std::string(line.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", line->c_str());
  return 0;
}

int NewKeyCommand(const std::string& name, const std::string& role) {
  absl::StatusOr<std::string> key = GenerateApiKey();
  if (!key.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::string> line = FormatKeyLine(name, role, *key);
  if (!line.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n", std::string(line.status().message()).c_str());
    return 2;
  }
  // The key goes to stderr (for the person), the keys-file line to stdout (for `>> keys.txt`).
  std::fprintf(stderr, "API key for '%s' (%s); give it to the client, it is not stored:\n%s\n",
               name.c_str(), role.c_str(), key->c_str());
  std::printf("%s\n", line->c_str());
  return 0;
}

}  // namespace

int RunServe(int argc, char** argv) {
  CLI::App app{"Serve a catalogue over gRPC.", "trainspotter serve"};
  app.footer(kServeHelpFooter);
  app.get_formatter()->column_width(34);

  std::string catalog_dir, listen = "127.0.0.1:50051", keys_file, tls_cert, tls_key, metrics;
  std::vector<std::string> ingest_roots;
  int64_t max_upload_mb = 256;
  double rate_limit = 0, rate_burst = 0, grace_seconds = 10, drain_delay = 0;
  int workers = 0;
  std::string hash_key, new_key, key_name = "client", key_role = "query";

  app.add_option("--catalog", catalog_dir,
                 "Catalogue folder (opened read-write; created if missing)");
  app.add_option("--listen", listen, "Address to listen on, host:port (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--keys", keys_file, "API keys file: lines 'name role sha256hex' (see below)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve TLS (with --tls-key)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--metrics", metrics, "Serve Prometheus metrics at http://ADDR/metrics");
  app.add_option("--max-upload-mb", max_upload_mb, "Largest audio upload accepted, MiB")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{16384}));
  app.add_option("--ingest-root", ingest_roots,
                 "Folder IngestTracks may read server-side files from (repeatable); none = "
                 "server paths refused")
      ->check(CLI::ExistingDirectory);
  app.add_option("--rate-limit", rate_limit, "Requests per second per API key (0 = unlimited)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rate-burst", rate_burst, "Token bucket size (0 = max(1, rate limit))")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--workers", workers, "Threads matching MatchStream queries (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--grace", grace_seconds, "Seconds in-flight calls get to finish on SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drain-delay", drain_delay,
                 "Seconds between NOT_SERVING and refusing new calls on SIGTERM (for load "
                 "balancers)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--hash-key", hash_key,
                 "Print the keys-file line for KEY ('-' = read it from stdin) and exit");
  app.add_option("--new-key", new_key,
                 "Generate a key for client NAME: key on stderr, keys-file line on stdout; exit");
  app.add_option("--key-name", key_name, "Client name for --hash-key")->capture_default_str();
  app.add_option("--key-role", key_role, "Role for --hash-key / --new-key: query or admin")
      ->capture_default_str()
      ->check(CLI::IsMember({"query", "admin"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!hash_key.empty()) return HashKeyCommand(hash_key, key_name, key_role);
  if (!new_key.empty()) return NewKeyCommand(new_key, key_role);
  if (catalog_dir.empty()) {
    std::fprintf(stderr, "trainspotter serve: --catalog DIR is required (see --help)\n");
    return 2;
  }
  if (tls_cert.empty() != tls_key.empty()) {
    std::fprintf(stderr, "trainspotter serve: TLS needs both --tls-cert and --tls-key\n");
    return 2;
  }

  if (absl::Status installed = InstallSignalHandlers(); !installed.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n", installed.ToString().c_str());
    return 1;
  }

  absl::StatusOr<std::unique_ptr<Catalog>> catalog =
      Catalog::Open(catalog_dir, Catalog::Mode::kReadWrite);
  if (!catalog.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n", catalog.status().ToString().c_str());
    return 1;
  }

  ServerOptions options;
  options.listen_address = listen;
  options.keys_file = keys_file;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
  options.max_upload_bytes = max_upload_mb << 20;
  options.rate_limit_qps = rate_limit;
  options.rate_limit_burst = rate_burst;
  options.ingest_roots = ingest_roots;
  options.worker_threads = workers;
  options.version = TRAINSPOTTER_VERSION;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, catalog->get());
  if (!server.ok()) {
    std::fprintf(stderr, "trainspotter serve: %s\n",
                 std::string(server.status().message()).c_str());
    return absl::IsInvalidArgument(server.status()) ? 2 : 1;
  }
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;
  if (!metrics.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(metrics, (*server)->metrics());
    if (!endpoint.ok()) {
      std::fprintf(stderr, "trainspotter serve: %s\n",
                   std::string(endpoint.status().message()).c_str());
      return 1;
    }
    metrics_endpoint = *std::move(endpoint);
  }

  if (!(*server)->authentication_enabled()) {
    std::fprintf(stderr,
                 "trainspotter serve: WARNING: no --keys: every local process can query AND "
                 "modify this catalogue (allowed on loopback only)\n");
  }
  std::fprintf(
      stderr, "trainspotter serve: catalogue %s: %lld tracks, %.1f h%s%s\n", catalog_dir.c_str(),
      static_cast<long long>((*catalog)->num_tracks()), (*catalog)->hours(),
      (*server)->tls() ? "; TLS" : "; plaintext",
      metrics_endpoint ? absl::StrCat("; metrics on port ", metrics_endpoint->port()).c_str() : "");
  std::printf("listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  while (true) {
    int signal_number = NextSignal();
    if (signal_number == SIGHUP) {
      absl::Status reloaded = (*server)->ReloadKeys();
      std::fprintf(stderr, "trainspotter serve: SIGHUP: %s\n",
                   reloaded.ok() ? "keys reloaded" : reloaded.ToString().c_str());
      continue;
    }
    break;
  }
  std::fprintf(stderr, "trainspotter serve: shutting down (NOT_SERVING; %.0f s grace)\n",
               grace_seconds);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    (*server)->Shutdown(absl::Seconds(grace_seconds), absl::Seconds(drain_delay));
    stopped = true;
    OnSignal(0);  // wakes the loop below
  });
  while (true) {
    int signal_number = NextSignal();
    if (stopped) break;
    if (signal_number == SIGINT || signal_number == SIGTERM) {
      std::fprintf(stderr, "trainspotter serve: second signal: exiting now\n");
      std::_Exit(1);
    }
  }
  stopper.join();
  metrics_endpoint.reset();
  server->reset();
  std::fprintf(stderr, "trainspotter serve: stopped\n");
  return 0;
}

}  // namespace trainspotter::cli
