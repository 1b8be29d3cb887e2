#include "service/membership_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "service/convert.h"
#include "service/server_call.h"

namespace trainspotter {
namespace {

std::string MiB(int64_t bytes) { return absl::StrCat(bytes / (1 << 20), " MiB"); }

// Receives an upload (options first, then chunks) within the per-call size cap and the
// server-wide memory budget.
absl::Status ReceiveUpload(ServiceCore* core, grpc::ServerReader<v1::MatchAudioRequest>* reader,
                           BudgetReservation* reservation, v1::MatchAudioOptions* options,
                           std::string* bytes) {
  v1::MatchAudioRequest message;
  if (!reader->Read(&message)) return absl::InvalidArgumentError("no request message received");
  if (message.payload_case() != v1::MatchAudioRequest::kOptions) {
    return absl::InvalidArgumentError("the first MatchAudioRequest must carry `options`");
  }
  *options = std::move(*message.mutable_options());
  const int64_t cap = core->config.max_upload_bytes;
  if (options->expected_size() > cap) {
    return absl::ResourceExhaustedError(absl::StrCat("upload of ", options->expected_size(),
                                                     " bytes exceeds the server's limit of ",
                                                     MiB(cap), " (--max-upload-mb)"));
  }
  if (options->expected_size() > 0) {
    if (!reservation->Grow(options->expected_size())) {
      return absl::ResourceExhaustedError("server is busy with other uploads; retry later");
    }
    bytes->reserve(static_cast<size_t>(options->expected_size()));
  }
  int64_t reserved = std::max<int64_t>(0, options->expected_size());
  while (reader->Read(&message)) {
    if (message.payload_case() != v1::MatchAudioRequest::kChunk) {
      return absl::InvalidArgumentError("only the first MatchAudioRequest may carry `options`");
    }
    const std::string& chunk = message.chunk();
    int64_t size = static_cast<int64_t>(bytes->size() + chunk.size());
    if (size > cap) {
      return absl::ResourceExhaustedError(
          absl::StrCat("upload exceeds the server's limit of ", MiB(cap), " (--max-upload-mb)"));
    }
    if (size > reserved) {
      if (!reservation->Grow(size - reserved)) {
        return absl::ResourceExhaustedError("server is busy with other uploads; retry later");
      }
      reserved = size;
    }
    bytes->append(chunk);
  }
  core->metrics.UploadBytes(static_cast<int64_t>(bytes->size()));
  return absl::OkStatus();
}

// Answers one MatchFingerprintRequest (unary or one of a stream).
absl::Status AnswerFingerprint(ServiceCore* core, const v1::MatchFingerprintRequest& request,
                               absl::Time deadline, std::function<bool()> cancelled,
                               v1::MatchResponse* response) {
  TS_ASSIGN_OR_RETURN(Fingerprint fingerprint, QueryFingerprintFromProto(request));
  QuerySpec spec = QuerySpecFromProto(request.match());
  spec.deadline = deadline;
  spec.cancelled = std::move(cancelled);
  TS_ASSIGN_OR_RETURN(
      QueryOutcome outcome,
      core->engine.MatchFingerprint(fingerprint, QueryVariantsFromProto(request), spec));
  QueryOutcomeToProto(outcome, response);
  return absl::OkStatus();
}

}  // namespace

grpc::Status MembershipServiceImpl::MatchAudio(grpc::ServerContext* context,
                                               grpc::ServerReader<v1::MatchAudioRequest>* reader,
                                               v1::MatchResponse* response) {
  ServerCall call(core_, context, "MatchAudio");
  return call.Run(Role::kQuery, [&]() -> absl::Status {
    BudgetReservation reservation(&core_->upload_budget);
    v1::MatchAudioOptions options;
    std::string bytes;
    absl::Status received = ReceiveUpload(core_, reader, &reservation, &options, &bytes);
    call.log_fields()["file"] = options.file_name();
    call.log_fields()["bytes"] = bytes.size();
    TS_RETURN_IF_ERROR(received);
    QuerySpec spec = QuerySpecFromProto(options.match());
    spec.deadline = call.deadline();
    spec.cancelled = call.cancelled();
    std::vector<double> factors(options.speed_factors().begin(), options.speed_factors().end());
    std::string name = options.file_name().empty() ? "upload" : options.file_name();
    TS_ASSIGN_OR_RETURN(
        QueryOutcome outcome,
        core_->engine.MatchAudio(bytes, name, options.max_seconds(), factors, spec));
    QueryOutcomeToProto(outcome, response);
    response->set_file_name(options.file_name());
    call.log_fields()["member"] = outcome.result.member;
    return absl::OkStatus();
  });
}

grpc::Status MembershipServiceImpl::MatchFingerprint(grpc::ServerContext* context,
                                                     const v1::MatchFingerprintRequest* request,
                                                     v1::MatchResponse* response) {
  ServerCall call(core_, context, "MatchFingerprint");
  return call.Run(Role::kQuery, [&]() -> absl::Status {
    TS_RETURN_IF_ERROR(
        AnswerFingerprint(core_, *request, call.deadline(), call.cancelled(), response));
    response->set_request_id(request->request_id());
    response->set_file_name(request->file_name());
    call.log_fields()["member"] = response->member();
    return absl::OkStatus();
  });
}

// Reads queries while fewer than `stream_window` are being worked on, runs each on the shared
// pool, and writes answers as they complete (one writer at a time). Stopping reading when the
// window is full is the flow control: gRPC then stops granting the client HTTP/2 window.
grpc::Status MembershipServiceImpl::MatchStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::MatchResponse, v1::MatchFingerprintRequest>* stream) {
  ServerCall call(core_, context, "MatchStream");
  return call.Run(Role::kQuery, [&]() -> absl::Status {
    absl::Mutex mu;
    int busy = 0;                                 // guarded by mu
    absl::flat_hash_set<std::string> unanswered;  // guarded by mu
    absl::Mutex write_mu;
    bool write_failed = false;                       // guarded by write_mu
    int64_t queries = 0, members = 0, failures = 0;  // guarded by mu
    const int window = std::max(1, core_->config.stream_window);
    std::function<bool()> cancelled = call.cancelled();
    absl::Status end = absl::OkStatus();

    auto answer = [&](v1::MatchResponse response, absl::Time started) {
      {
        absl::MutexLock lock(&write_mu);
        if (!write_failed && !stream->Write(response)) write_failed = true;
      }
      absl::StatusCode code = response.has_error()
                                  ? static_cast<absl::StatusCode>(response.error().code())
                                  : absl::StatusCode::kOk;
      core_->metrics.StreamQueryFinished(code, absl::Now() - started);
      absl::MutexLock lock(&mu);
      ++queries;
      if (code != absl::StatusCode::kOk) ++failures;
      if (response.member()) ++members;
      unanswered.erase(response.request_id());
      --busy;
    };
    auto fail = [](v1::MatchResponse* response, const absl::Status& status) {
      response->clear_matches();
      response->set_member(false);
      response->mutable_error()->set_code(static_cast<int>(status.code()));
      response->mutable_error()->set_message(std::string(status.message()));
    };

    std::pair<int*, int> window_state(&busy, window);
    while (true) {
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(
            +[](std::pair<int*, int>* state) { return *state->first < state->second; },
            &window_state));
      }
      if (core_->draining.load()) {
        end = absl::UnavailableError("server is shutting down; resend unanswered queries");
        break;
      }
      v1::MatchFingerprintRequest request;
      if (!stream->Read(&request)) break;
      absl::Time started = absl::Now();
      if (core_->draining.load()) {
        // Read but not started: the client resends it (it has no answer for it).
        end = absl::UnavailableError("server is shutting down; resend unanswered queries");
        break;
      }
      v1::MatchResponse response;
      response.set_request_id(request.request_id());
      response.set_file_name(request.file_name());
      {
        absl::MutexLock lock(&mu);
        ++busy;
        if (request.request_id().empty()) {
          fail(&response, absl::InvalidArgumentError("MatchStream requests need a request_id"));
        } else if (!unanswered.insert(request.request_id()).second) {
          fail(&response, absl::InvalidArgumentError(absl::StrCat(
                              "request_id '", request.request_id(), "' is already in flight")));
          response.set_request_id("");  // do not complete the first one's bookkeeping
        }
      }
      if (response.has_error()) {
        answer(std::move(response), started);
        continue;
      }
      absl::Time deadline = call.deadline();
      if (request.timeout_seconds() > 0) {
        deadline = std::min(deadline, started + absl::Seconds(request.timeout_seconds()));
      }
      // Per-query pacing: a stream waits for its key's tokens instead of failing.
      if (absl::Status paced = core_->limiter->Acquire(call.caller().key_name, deadline, cancelled);
          !paced.ok()) {
        fail(&response, paced);
        answer(std::move(response), started);
        continue;
      }
      core_->pool.Schedule([&, request = std::move(request), response = std::move(response),
                            deadline, started]() mutable {
        absl::Status status = AnswerFingerprint(core_, request, deadline, cancelled, &response);
        if (!status.ok()) fail(&response, status);
        answer(std::move(response), started);
      });
    }
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](int* n) { return *n == 0; }, &busy));
      call.log_fields()["queries"] = queries;
      call.log_fields()["members"] = members;
      call.log_fields()["failed_queries"] = failures;
    }
    if (context->IsCancelled()) return absl::CancelledError("stream cancelled");
    return end;
  });
}

}  // namespace trainspotter
