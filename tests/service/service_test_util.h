// Helpers shared by the service tests: a server on a free loopback port with fakes behind it,
// and client contexts carrying API keys.
#ifndef TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_
#define TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

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

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TESTS_SERVICE_SERVICE_TEST_UTIL_H_
