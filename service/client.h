// Client side of the trainspotter API, in domain types, for `trainspotter scan`, the benchmark
// and tests. No grpcpp in this header (tools/ include it).
//
//   ClientOptions options;
//   options.address = "127.0.0.1:50051";
//   options.api_key = "ts_...";
//   auto client = TrainspotterClient::Connect(options);
//   auto outcome = (*client)->MatchFingerprint(query);
//
// Thread-safety: TrainspotterClient may be used from many threads at once. BulkMatcher::Submit
// may be called from many threads; its callback runs on one thread at a time.
#ifndef TRAINSPOTTER_SERVICE_CLIENT_H_
#define TRAINSPOTTER_SERVICE_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "service/query_engine.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace trainspotter {

struct ClientOptions {
  // host:port of the server.
  std::string address;
  // Sent as `authorization: Bearer <key>`; empty = none.
  std::string api_key;
  // TLS: trust these PEM roots (empty with `tls` = the system's roots).
  std::string tls_ca_file;
  bool tls = false;
  // Expected server name in its certificate, when it differs from the address host (tests).
  std::string tls_server_name;
  // Unary calls and reconnecting streams retry UNAVAILABLE (and other transient errors) with
  // exponential backoff for up to this long without progress; 0 = no retries.
  absl::Duration retry_for = absl::Minutes(5);
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  // Called before each retry wait (e.g. to tell the user); may be empty.
  std::function<void(const absl::Status& error, absl::Duration wait)> on_retry;
};

// One fingerprint query.
struct RemoteQuery {
  std::string file_name;
  Fingerprint fingerprint;
  // Phase and speed variants of the same audio (fingerprint/query_variants.h says which ones
  // `trainspotter query` uses); empty = the plain fingerprint only.
  QueryVariants variants;
  std::vector<std::string> datasets;              // empty = all
  int max_matches = 0;                            // 0 = server default
  absl::Duration timeout = absl::ZeroDuration();  // 0 = none
};

// True for stream statuses worth a fresh stream (server restarting or overloaded, connection
// dropped): UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, CANCELLED, INTERNAL. Unary calls retry
// RESOURCE_EXHAUSTED only when the server sent a retry pushback (rate limit), not for limits
// that a retry cannot pass (upload too large).
bool IsRetryable(const absl::Status& status);

class TrainspotterClient {
 public:
  // Creates the channel (connection is lazy). INVALID_ARGUMENT / NOT_FOUND for options and files.
  static absl::StatusOr<std::unique_ptr<TrainspotterClient>> Connect(const ClientOptions& options);
  ~TrainspotterClient();

  absl::StatusOr<QueryOutcome> MatchFingerprint(const RemoteQuery& query);

  // Uploads the file (MatchAudio) in 256 KiB chunks. The server also tries the audio at
  // `speed_factors` (MatchAudioOptions.speed_factors; e.g. kQuerySpeedFactors).
  absl::StatusOr<QueryOutcome> MatchAudioFile(const std::string& path,
                                              const std::vector<std::string>& datasets,
                                              int max_matches, absl::Duration timeout,
                                              const std::vector<double>& speed_factors = {});
  absl::StatusOr<QueryOutcome> MatchAudioBytes(absl::string_view bytes,
                                               const std::string& file_name,
                                               const std::vector<std::string>& datasets,
                                               int max_matches, absl::Duration timeout,
                                               const std::vector<double>& speed_factors = {});

  // grpc.health.v1 status of `service` ("" = the server as a whole): true = SERVING.
  absl::StatusOr<bool> Serving(const std::string& service = "",
                               absl::Duration timeout = absl::Seconds(5));

  // Waits until the channel is connected: UNAVAILABLE after `timeout`.
  absl::Status WaitForConnected(absl::Duration timeout);

  const ClientOptions& options() const { return options_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  // Adds authorization metadata and, if positive, the deadline.
  void PrepareContext(grpc::ClientContext* context, absl::Duration timeout) const;

 private:
  friend class BulkMatcher;
  TrainspotterClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel);
  // Calls `attempt` until it succeeds, fails for good, or retries run out.
  absl::StatusOr<QueryOutcome> WithRetries(
      const std::function<absl::StatusOr<QueryOutcome>()>& attempt);

  struct Stubs;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stubs> stubs_;
};

// Many fingerprint queries over MatchStream with a bounded window, surviving server restarts:
// when the stream breaks with a retryable status, it reconnects with backoff and resends every
// unanswered query. Each submitted query is answered exactly once through the callback (answers
// the server sends twice after a reconnect are dropped).
class BulkMatcher {
 public:
  // Called once per query with the caller's tag and the answer: an outcome, or the per-query
  // error the server reported (e.g. INVALID_ARGUMENT, DEADLINE_EXCEEDED).
  using Callback = std::function<void(uint64_t tag, absl::StatusOr<QueryOutcome> outcome)>;

  // `client` must outlive this. `window` = queries sent and not yet answered at most.
  BulkMatcher(TrainspotterClient* client, int window, Callback callback);
  ~BulkMatcher();  // Cancel() unless Finish() returned.

  // Queues a query; blocks while 2 x window queries are unanswered. Returns the session's
  // error if it has failed for good (then no more queries are accepted).
  absl::Status Submit(uint64_t tag, RemoteQuery query);

  // Waits until every submitted query is answered. Errors: a non-retryable stream status
  // (UNAUTHENTICATED, PERMISSION_DENIED, ...) or retries exhausted; queries without an answer
  // then got no callback.
  absl::Status Finish();

  // Stops: unanswered queries get no callback.
  void Cancel();

  // Reconnections so far.
  int reconnects() const;

 private:
  struct Pending {
    uint64_t tag;
    RemoteQuery query;
  };
  void Run();
  absl::Status RunConnection();

  TrainspotterClient* client_;
  const int window_;
  Callback callback_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, Pending> unanswered_ ABSL_GUARDED_BY(mu_);  // by sequence number
  std::deque<uint64_t> to_send_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool connection_done_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool progressed_ ABSL_GUARDED_BY(mu_) = false;
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_CLIENT_H_
