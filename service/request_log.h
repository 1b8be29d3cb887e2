// One structured JSON line per served call, on stderr by default:
//   {"ts":"2026-01-02T03:04:05.678Z","method":"MatchFingerprint","peer":"ipv4:127.0.0.1:5012",
//    "key":"alice","code":"OK","latency_ms":1.23,...}
// Extra fields depend on the method (e.g. "bytes", "queries", "member"). The API key itself is
// never logged, only its name from the keys file.
//
// Thread-safety: Write() may be called concurrently; each line is written whole.
#ifndef TRAINSPOTTER_SERVICE_REQUEST_LOG_H_
#define TRAINSPOTTER_SERVICE_REQUEST_LOG_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace trainspotter {

struct RequestLogEntry {
  absl::Time start;
  std::string method;
  std::string peer;
  std::string key_name;
  absl::Status status;
  absl::Duration latency;
  // Method-specific fields, appended after the standard ones.
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
};

class RequestLog {
 public:
  // `sink` receives each line without its newline; empty = write to stderr.
  explicit RequestLog(std::function<void(absl::string_view)> sink = nullptr);

  void Write(const RequestLogEntry& entry);

  // The line for `entry` (without newline).
  static std::string Format(const RequestLogEntry& entry);

 private:
  std::function<void(absl::string_view)> sink_;
  absl::Mutex mu_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_REQUEST_LOG_H_
