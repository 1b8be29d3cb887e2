#include "service/server_call.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/grpc_status.h"

namespace trainspotter {

absl::Time DeadlineFromContext(const grpc::ServerContext& context) {
  std::chrono::system_clock::time_point deadline = context.deadline();
  // gRPC reports "no deadline" as a far-future time point; anything beyond a year is that.
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

ServerCall::ServerCall(ServiceCore* core, grpc::ServerContext* context, std::string method)
    : core_(core),
      context_(context),
      method_(std::move(method)),
      start_(absl::Now()),
      deadline_(DeadlineFromContext(*context)) {
  caller_.key_name = "-";
  core_->metrics.CallStarted(method_);
}

ServerCall::~ServerCall() {
  // Every path calls Finish(); this only guards the metrics' in-flight gauge.
  if (!finished_) Finish(absl::InternalError("handler ended without a status"));
}

absl::Status ServerCall::Admit(Role required) {
  std::string authorization;
  const auto& metadata = context_->client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) authorization.assign(it->second.data(), it->second.size());
  absl::StatusOr<Caller> caller = core_->auth->Identify(authorization);
  if (!caller.ok()) return caller.status();
  caller_ = *std::move(caller);  // logged even when the role check below fails
  absl::Status allowed = Authenticator::CheckRole(caller_, required);
  if (!allowed.ok()) return allowed;
  if (!core_->limiter->TryAcquire(caller_.key_name)) {
    absl::Duration wait = core_->limiter->TimeToNextToken(caller_.key_name);
    // gRPC's standard pushback trailer: tells clients this RESOURCE_EXHAUSTED is worth a retry
    // (an oversized upload, also RESOURCE_EXHAUSTED, is not).
    context_->AddTrailingMetadata(kRetryPushbackKey,
                                  absl::StrCat(absl::ToInt64Milliseconds(wait) + 1));
    return absl::ResourceExhaustedError(
        absl::StrCat("rate limit exceeded for key '", caller_.key_name, "'; retry in ",
                     absl::FormatDuration(absl::Ceil(wait, absl::Milliseconds(1)))));
  }
  return absl::OkStatus();
}

std::function<bool()> ServerCall::cancelled() const {
  grpc::ServerContext* context = context_;
  return [context] { return context->IsCancelled(); };
}

grpc::Status ServerCall::Finish(const absl::Status& result) {
  finished_ = true;
  absl::Status status = result;
  // gRPC cancels a call whose deadline passed; the client should hear why.
  if (absl::IsCancelled(status) && absl::Now() >= deadline_) {
    status =
        absl::DeadlineExceededError(absl::StrCat("deadline exceeded (", status.message(), ")"));
  }
  absl::Duration latency = absl::Now() - start_;
  core_->metrics.CallFinished(method_, status.code(), latency);
  RequestLogEntry entry;
  entry.start = start_;
  entry.method = method_;
  entry.peer = context_->peer();
  entry.key_name = caller_.key_name;
  entry.status = status;
  entry.latency = latency;
  entry.fields = std::move(fields_);
  core_->log->Write(entry);
  return ToGrpcStatus(status);
}

}  // namespace trainspotter
