// Helpers shared by the service tests: a server on a free loopback port with fakes behind it,
// and client contexts carrying API keys.
#ifndef TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_
#define TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/auth.h"
#include "service/server.h"
#include "tests/testing/test_env.h"
#include "trainspotter/v1/catalog.grpc.pb.h"
#include "trainspotter/v1/membership.grpc.pb.h"

namespace trainspotter {

inline constexpr char kAdminKey[] = "test-admin-key-0123456789";
inline constexpr char kQueryKey[] = "test-query-key-0123456789";

// Deterministic pseudo-random fingerprint items.
inline std::vector<uint32_t> RandomItems(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> items(n);
  for (uint32_t& v : items) v = rng();
  return items;
}

inline std::unique_ptr<grpc::ClientContext> Context(const std::string& key,
                                                    absl::Duration timeout = absl::Seconds(20)) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!key.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", key));
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// Captures request-log lines.
class LogCapture {
 public:
  std::function<void(absl::string_view)> Sink() {
    return [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  std::vector<std::string> lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// Writes a keys file with one admin and one query key into `dir`.
inline std::string WriteKeysFile(const testing::ScopedTempDir& dir) {
  std::string path = dir.File("keys.txt");
  std::string contents = absl::StrCat(*FormatKeyLine("ops", "admin", kAdminKey), "\n",
                                      *FormatKeyLine("label-a", "query", kQueryKey), "\n");
  FILE* f = std::fopen(path.c_str(), "w");
  std::fwrite(contents.data(), 1, contents.size(), f);
  std::fclose(f);
  return path;
}

// A plain HTTP/1.0 GET to 127.0.0.1:port (the metrics endpoint); "" if it cannot connect.
inline std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return response;
}

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_
