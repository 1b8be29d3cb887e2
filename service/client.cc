#include "service/client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "service/convert.h"
#include "service/grpc_status.h"
#include "trainspotter/v1/membership.grpc.pb.h"

namespace trainspotter {
namespace {

constexpr size_t kUploadChunkBytes = 256 << 10;

absl::Duration Jitter(absl::Duration d) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return d * factor(rng);
}

constexpr char kPushbackPayload[] = "trainspotter/retry-pushback";

// A unary call's status; a rate-limit refusal (pushback trailer) is marked retryable.
absl::Status CallStatus(const grpc::ClientContext& context, const grpc::Status& status) {
  absl::Status out = FromGrpcStatus(status);
  if (absl::IsResourceExhausted(out)) {
    const auto& trailers = context.GetServerTrailingMetadata();
    auto it = trailers.find("grpc-retry-pushback-ms");
    if (it != trailers.end()) {
      out.SetPayload(kPushbackPayload,
                     absl::Cord(std::string(it->second.data(), it->second.size())));
    }
  }
  return out;
}

bool UnaryRetryable(const absl::Status& status) {
  if (absl::IsResourceExhausted(status)) return status.GetPayload(kPushbackPayload).has_value();
  return IsRetryable(status) && !absl::IsCancelled(status);
}

absl::StatusOr<QueryOutcome> OutcomeFromResponse(const v1::MatchResponse& response) {
  if (response.has_error() && response.error().code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(response.error().code()),
                        response.error().message());
  }
  return QueryOutcomeFromProto(response);
}

void QueryToProto(const RemoteQuery& query, v1::MatchFingerprintRequest* request) {
  request->set_file_name(query.file_name);
  FingerprintToProto(query.fingerprint, request->mutable_raw());
  QueryVariantsToProto(query.variants, request);
  for (const std::string& dataset : query.datasets) request->mutable_match()->add_datasets(dataset);
  request->mutable_match()->set_max_matches(query.max_matches);
  if (query.timeout > absl::ZeroDuration()) {
    request->set_timeout_seconds(absl::ToDoubleSeconds(query.timeout));
  }
}

}  // namespace

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

struct TrainspotterClient::Stubs {
  std::unique_ptr<v1::Membership::Stub> membership;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

TrainspotterClient::TrainspotterClient(ClientOptions options,
                                       std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), channel_(std::move(channel)), stubs_(new Stubs) {
  stubs_->membership = v1::Membership::NewStub(channel_);
  stubs_->health = grpc::health::v1::Health::NewStub(channel_);
}

TrainspotterClient::~TrainspotterClient() = default;

absl::StatusOr<std::unique_ptr<TrainspotterClient>> TrainspotterClient::Connect(
    const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("no server address");
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  // Reconnect quickly when a restarted server comes back.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  if (options.tls || !options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> roots = ReadFile(options.tls_ca_file, 4 << 20);
      if (!roots.ok()) {
        return absl::Status(roots.status().code(),
                            absl::StrCat("--tls-ca: ", roots.status().message()));
      }
      ssl.pem_root_certs = *std::move(roots);
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  auto channel = grpc::CreateCustomChannel(options.address, credentials, args);
  return std::unique_ptr<TrainspotterClient>(new TrainspotterClient(options, std::move(channel)));
}

void TrainspotterClient::PrepareContext(grpc::ClientContext* context,
                                        absl::Duration timeout) const {
  if (!options_.api_key.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.api_key));
  }
  if (timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

absl::StatusOr<QueryOutcome> TrainspotterClient::WithRetries(
    const std::function<absl::StatusOr<QueryOutcome>()>& attempt) {
  absl::Time give_up = absl::Now() + options_.retry_for;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    absl::StatusOr<QueryOutcome> result = attempt();
    if (result.ok() || !UnaryRetryable(result.status())) return result;
    absl::Duration wait = Jitter(backoff);
    if (absl::Now() + wait > give_up) return result;
    if (options_.on_retry) options_.on_retry(result.status(), wait);
    absl::SleepFor(wait);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::StatusOr<QueryOutcome> TrainspotterClient::MatchFingerprint(const RemoteQuery& query) {
  v1::MatchFingerprintRequest request;
  QueryToProto(query, &request);
  request.clear_timeout_seconds();  // unary calls use the call deadline
  return WithRetries([&]() -> absl::StatusOr<QueryOutcome> {
    grpc::ClientContext context;
    PrepareContext(&context, query.timeout);
    v1::MatchResponse response;
    grpc::Status status = stubs_->membership->MatchFingerprint(&context, request, &response);
    if (!status.ok()) return CallStatus(context, status);
    return OutcomeFromResponse(response);
  });
}

absl::StatusOr<QueryOutcome> TrainspotterClient::MatchAudioBytes(
    absl::string_view bytes, const std::string& file_name, const std::vector<std::string>& datasets,
    int max_matches, absl::Duration timeout, const std::vector<double>& speed_factors) {
  return WithRetries([&]() -> absl::StatusOr<QueryOutcome> {
    grpc::ClientContext context;
    PrepareContext(&context, timeout);
    v1::MatchResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::MatchAudioRequest>> writer =
        stubs_->membership->MatchAudio(&context, &response);
    v1::MatchAudioRequest message;
    v1::MatchAudioOptions* options = message.mutable_options();
    options->set_file_name(file_name);
    for (const std::string& dataset : datasets) options->mutable_match()->add_datasets(dataset);
    options->mutable_match()->set_max_matches(max_matches);
    options->set_expected_size(static_cast<int64_t>(bytes.size()));
    options->mutable_speed_factors()->Assign(speed_factors.begin(), speed_factors.end());
    bool open = writer->Write(message);
    for (size_t offset = 0; open && offset < bytes.size(); offset += kUploadChunkBytes) {
      message.set_chunk(std::string(bytes.substr(offset, kUploadChunkBytes)));
      open = writer->Write(message);
    }
    if (open) writer->WritesDone();
    // When the server refused early (too large, bad key), Write() failed and Finish() says why.
    grpc::Status status = writer->Finish();
    if (!status.ok()) return CallStatus(context, status);
    return OutcomeFromResponse(response);
  });
}

absl::StatusOr<QueryOutcome> TrainspotterClient::MatchAudioFile(
    const std::string& path, const std::vector<std::string>& datasets, int max_matches,
    absl::Duration timeout, const std::vector<double>& speed_factors) {
  // ReadFile caps what is read, so an enormous file fails here rather than exhausting memory;
  // the server applies its own limit (by default 256 MiB) and says so.
  absl::StatusOr<std::string> bytes = ReadFile(path, size_t{4} << 30);
  if (!bytes.ok()) return bytes.status();
  if (bytes->empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  return MatchAudioBytes(*bytes, path, datasets, max_matches, timeout, speed_factors);
}

absl::StatusOr<bool> TrainspotterClient::Serving(const std::string& service,
                                                 absl::Duration timeout) {
  grpc::ClientContext context;
  PrepareContext(&context, timeout);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stubs_->health->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

absl::Status TrainspotterClient::WaitForConnected(absl::Duration timeout) {
  if (channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat("cannot connect to ", options_.address, " within ",
                                             absl::FormatDuration(timeout)));
}

// ---- BulkMatcher ---------------------------------------------------------------------------

BulkMatcher::BulkMatcher(TrainspotterClient* client, int window, Callback callback)
    : client_(client), window_(std::max(1, window)), callback_(std::move(callback)) {
  thread_ = std::thread([this] { Run(); });
}

BulkMatcher::~BulkMatcher() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

int BulkMatcher::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

absl::Status BulkMatcher::Submit(uint64_t tag, RemoteQuery query) {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_ || cancelled_ || unanswered_.size() < static_cast<size_t>(2 * window_);
  };
  mu_.Await(absl::Condition(&room));
  if (!failure_.ok()) return failure_;
  if (done_ || cancelled_) return absl::CancelledError("bulk matching was stopped");
  uint64_t seq = next_seq_++;
  unanswered_.emplace(seq, Pending{tag, std::move(query)});
  to_send_.push_back(seq);
  return absl::OkStatus();
}

absl::Status BulkMatcher::Finish() {
  {
    absl::MutexLock lock(&mu_);
    finishing_ = true;
    mu_.Await(absl::Condition(&done_));
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return failure_;
}

void BulkMatcher::Cancel() {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void BulkMatcher::Run() {
  const ClientOptions& options = client_->options();
  absl::Duration backoff = options.initial_backoff;
  absl::Time last_progress = absl::Now();
  absl::Status failure;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return cancelled_ || finishing_ || !unanswered_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (cancelled_) {
        failure = absl::CancelledError("bulk matching cancelled");
        break;
      }
      if (finishing_ && unanswered_.empty()) break;
    }
    absl::Status status = RunConnection();
    bool progressed;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        failure = absl::CancelledError("bulk matching cancelled");
        break;
      }
      if (finishing_ && unanswered_.empty()) break;
      progressed = progressed_;
      progressed_ = false;
    }
    if (status.ok()) continue;  // the server ended the stream early: resend on a new one
    if (!IsRetryable(status)) {
      failure = status;
      break;
    }
    if (progressed) {
      last_progress = absl::Now();
      backoff = options.initial_backoff;
    }
    absl::Duration wait = Jitter(backoff);
    if (absl::Now() + wait - last_progress > options.retry_for) {
      failure = absl::Status(
          status.code(), absl::StrCat("giving up after ", absl::FormatDuration(options.retry_for),
                                      " without progress: ", status.message()));
      break;
    }
    if (options.on_retry) options.on_retry(status, wait);
    {
      absl::MutexLock lock(&mu_);
      ++reconnects_;
      // Sleep, but wake up for Cancel().
      mu_.AwaitWithTimeout(absl::Condition(&cancelled_), wait);
    }
    backoff = std::min(backoff * 2, options.max_backoff);
  }
  absl::MutexLock lock(&mu_);
  failure_ = failure;
  done_ = true;
}

absl::Status BulkMatcher::RunConnection() {
  grpc::ClientContext context;
  client_->PrepareContext(&context, absl::ZeroDuration());
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return absl::CancelledError("cancelled");
    context_ = &context;
    connection_done_ = false;
    in_flight_ = 0;
    to_send_.clear();
    for (const auto& [seq, pending] : unanswered_) to_send_.push_back(seq);
  }
  auto stream = client_->stubs_->membership->MatchStream(&context);

  std::thread reader([&] {
    v1::MatchResponse response;
    while (stream->Read(&response)) {
      uint64_t seq = 0;
      if (!absl::SimpleAtoi(response.request_id(), &seq)) continue;
      Pending pending;
      {
        absl::MutexLock lock(&mu_);
        auto it = unanswered_.find(seq);
        if (it == unanswered_.end()) continue;  // answered before a reconnect: drop the repeat
        --in_flight_;
        if (response.has_error() &&
            response.error().code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
          to_send_.push_back(seq);  // the server could not take it now: send it again
          continue;
        }
        pending = std::move(it->second);
        unanswered_.erase(it);
        progressed_ = true;
      }
      // One reader thread at a time, so callbacks never overlap.
      callback_(pending.tag, OutcomeFromResponse(response));
    }
    absl::MutexLock lock(&mu_);
    connection_done_ = true;
  });

  bool writes_done = false;
  while (true) {
    v1::MatchFingerprintRequest request;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return connection_done_ || cancelled_ || (!to_send_.empty() && in_flight_ < window_) ||
               (finishing_ && to_send_.empty() && !writes_done);
      };
      mu_.Await(absl::Condition(&ready));
      if (connection_done_ || cancelled_) break;
      if (to_send_.empty() || in_flight_ >= window_) {
        // finishing, nothing left to send: half-close and wait for the answers
        mu_.Unlock();
        stream->WritesDone();
        mu_.Lock();
        writes_done = true;
        continue;
      }
      uint64_t seq = to_send_.front();
      to_send_.pop_front();
      auto it = unanswered_.find(seq);
      if (it == unanswered_.end()) continue;
      QueryToProto(it->second.query, &request);
      request.set_request_id(absl::StrCat(seq));
      ++in_flight_;
    }
    if (!stream->Write(request)) break;  // the stream broke; Finish() below says why
  }
  if (!writes_done) {
    // Nothing more will be written on this stream; a broken stream ignores this.
    absl::MutexLock lock(&mu_);
    if (cancelled_) context.TryCancel();
  }
  reader.join();
  grpc::Status status = stream->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return FromGrpcStatus(status);
}

}  // namespace trainspotter
