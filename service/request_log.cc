#include "service/request_log.h"

#include <cmath>
#include <cstdio>
#include <utility>

namespace trainspotter {

RequestLog::RequestLog(std::function<void(absl::string_view)> sink) : sink_(std::move(sink)) {}

std::string RequestLog::Format(const RequestLogEntry& entry) {
  nlohmann::ordered_json line;
  line["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", entry.start, absl::UTCTimeZone());
  line["method"] = entry.method;
  line["peer"] = entry.peer;
  line["key"] = entry.key_name;
  line["code"] = absl::StatusCodeToString(entry.status.code());
  line["latency_ms"] = std::round(absl::ToDoubleMilliseconds(entry.latency) * 1000.0) / 1000.0;
  if (!entry.status.ok()) line["error"] = std::string(entry.status.message());
  for (const auto& [key, value] : entry.fields.items()) line[key] = value;
  // Replace invalid UTF-8 (e.g. from a client-supplied file name) instead of throwing.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void RequestLog::Write(const RequestLogEntry& entry) {
  std::string line = Format(entry);
  absl::MutexLock lock(&mu_);
  if (sink_) {
    sink_(line);
    return;
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace trainspotter
