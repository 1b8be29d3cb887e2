// The frame around every handler: admission (API key, role, rate limit), deadline and
// cancellation, and on finish the one absl -> gRPC status conversion, the metrics and the
// request log line. Handlers stay thin:
//
//   grpc::Status Impl::GetStats(grpc::ServerContext* ctx, const Req* req, Resp* resp) {
//     ServerCall call(core_, ctx, "GetStats");
//     return call.Run(Role::kQuery, [&] { return DoGetStats(*req, resp); });
//   }
#ifndef TRAINSPOTTER_SERVICE_SERVER_CALL_H_
#define TRAINSPOTTER_SERVICE_SERVER_CALL_H_

#include <grpcpp/server_context.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "service/auth.h"
#include "service/service_core.h"

namespace trainspotter {

// Trailing metadata on a rate-limited call: milliseconds until a retry can succeed.
inline constexpr char kRetryPushbackKey[] = "grpc-retry-pushback-ms";

class ServerCall {
 public:
  ServerCall(ServiceCore* core, grpc::ServerContext* context, std::string method);
  ~ServerCall();
  ServerCall(const ServerCall&) = delete;
  ServerCall& operator=(const ServerCall&) = delete;

  // UNAUTHENTICATED / PERMISSION_DENIED / RESOURCE_EXHAUSTED (rate limit), or OK.
  absl::Status Admit(Role required);

  // Admit(required), then `body` if admitted; then Finish().
  template <typename Body>
  grpc::Status Run(Role required, Body&& body) {
    absl::Status status = Admit(required);
    if (status.ok()) status = body();
    return Finish(status);
  }

  // Records the outcome (metrics, log line) and converts it for gRPC. Call once. CANCELLED
  // after the deadline is reported as DEADLINE_EXCEEDED.
  grpc::Status Finish(const absl::Status& result);

  const Caller& caller() const { return caller_; }
  // The client's deadline (InfiniteFuture if none).
  absl::Time deadline() const { return deadline_; }
  // True once the call is cancelled (client went away, or its deadline passed).
  std::function<bool()> cancelled() const;
  // Method-specific fields for the log line.
  nlohmann::ordered_json& log_fields() { return fields_; }
  ServiceCore* core() const { return core_; }
  grpc::ServerContext* context() const { return context_; }

 private:
  ServiceCore* core_;
  grpc::ServerContext* context_;
  std::string method_;
  absl::Time start_;
  absl::Time deadline_;
  Caller caller_;
  nlohmann::ordered_json fields_ = nlohmann::ordered_json::object();
  bool finished_ = false;
};

// grpc deadline -> absl::Time (InfiniteFuture for "no deadline").
absl::Time DeadlineFromContext(const grpc::ServerContext& context);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_SERVER_CALL_H_
