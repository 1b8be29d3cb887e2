// In-process tests of every RPC: a real gRPC server on a free loopback port, FakeCatalog and
// FakeAudioFingerprinter behind it.
#include "service/server.h"

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "fingerprint/query_variants.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "service/client.h"
#include "service/metrics.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/fake_audio_fingerprinter.h"
#include "tests/testing/fake_catalog.h"

namespace trainspotter {
namespace {

using v1::MatchResponse;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = WriteKeysFile(tmp_);
    std::filesystem::create_directories(tmp_.File("ingest"));
    ASSERT_TRUE(catalog_.EnsureDataset("fma", "1", "Free Music Archive").ok());
    TrackInput track;
    track.track_id = "000123";
    track.metadata.title = "Song";
    track.metadata.artist = "Band";
    track.metadata.album = "LP";
    track.metadata.duration_seconds = 60;
    track.metadata.extra = {{"genre", "jazz"}};
    track.items = reference_;
    track.content_hash = "h1";
    ASSERT_TRUE(catalog_.AddTracks("fma", {track}).ok());
    options_.listen_address = "127.0.0.1:0";
    options_.keys_file = keys_;
    options_.max_upload_bytes = 64 << 10;
    options_.ingest_roots = {tmp_.File("ingest")};
    options_.worker_threads = 2;
    options_.log_sink = log_.Sink();
    StartServer();
  }

  void StartServer() {
    auto fingerprinter = std::make_unique<FakeAudioFingerprinter>();
    fingerprinter_ = fingerprinter.get();
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(options_, &catalog_, std::move(fingerprinter));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    membership_ = v1::Membership::NewStub(channel_);
    catalog_stub_ = v1::Catalog::NewStub(channel_);
  }

  v1::MatchFingerprintRequest FingerprintRequest(const std::vector<uint32_t>& items) {
    v1::MatchFingerprintRequest request;
    request.mutable_raw()->mutable_items()->Assign(items.begin(), items.end());
    request.mutable_raw()->set_duration(ItemToSeconds(static_cast<double>(items.size())));
    return request;
  }

  grpc::Status MatchAudio(const std::string& bytes, MatchResponse* response,
                          int64_t expected_size = -1, const std::string& key = kQueryKey,
                          absl::Duration timeout = absl::Seconds(20)) {
    auto context = Context(key, timeout);
    auto writer = membership_->MatchAudio(context.get(), response);
    v1::MatchAudioRequest message;
    message.mutable_options()->set_file_name("clip.mp3");
    message.mutable_options()->set_expected_size(expected_size < 0 ? bytes.size() : expected_size);
    bool open = writer->Write(message);
    for (size_t i = 0; open && i < bytes.size(); i += 1000) {
      message.set_chunk(bytes.substr(i, 1000));
      open = writer->Write(message);
    }
    if (open) writer->WritesDone();
    return writer->Finish();
  }

  testing::ScopedTempDir tmp_;
  std::string keys_;
  std::vector<uint32_t> reference_ = RandomItems(400, 1);
  FakeCatalog catalog_;
  FakeAudioFingerprinter* fingerprinter_ = nullptr;
  LogCapture log_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Membership::Stub> membership_;
  std::unique_ptr<v1::Catalog::Stub> catalog_stub_;
};

TEST_F(ServerTest, MatchFingerprintFindsMemberWithOffsets) {
  std::vector<uint32_t> clip(reference_.begin() + 100, reference_.begin() + 181);
  auto request = FingerprintRequest(clip);
  request.set_request_id("q1");
  request.set_file_name("clip.mp3");
  MatchResponse response;
  grpc::Status status = membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  EXPECT_EQ(response.request_id(), "q1");
  EXPECT_EQ(response.file_name(), "clip.mp3");
  EXPECT_NEAR(response.duration(), ItemToSeconds(81), 1e-9);
  ASSERT_EQ(response.matches_size(), 1);
  const v1::Match& m = response.matches(0);
  EXPECT_EQ(m.dataset(), "fma");
  EXPECT_EQ(m.version(), "1");
  EXPECT_EQ(m.track_id(), "000123");
  EXPECT_EQ(m.title(), "Song");
  EXPECT_EQ(m.metadata().at("album"), "LP");
  EXPECT_EQ(m.metadata().at("genre"), "jazz");
  EXPECT_NEAR(m.ref_start(), ItemToSeconds(100), 1e-6);
  EXPECT_NEAR(m.query_start(), 0, 1e-6);
  EXPECT_GT(m.confidence(), 0.99);
}

TEST_F(ServerTest, NonMemberIsOkWithMemberFalse) {
  MatchResponse response;
  grpc::Status status = membership_->MatchFingerprint(
      Context(kQueryKey).get(), FingerprintRequest(RandomItems(100, 99)), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.member());
  EXPECT_EQ(response.matches_size(), 0);
}

TEST_F(ServerTest, BadFingerprintsAreInvalidArgument) {
  MatchResponse response;
  v1::MatchFingerprintRequest none;
  EXPECT_EQ(membership_->MatchFingerprint(Context(kQueryKey).get(), none, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  auto empty = FingerprintRequest({});
  EXPECT_EQ(membership_->MatchFingerprint(Context(kQueryKey).get(), empty, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::MatchFingerprintRequest garbled;
  garbled.set_compressed("%%%not-a-fingerprint%%%");
  grpc::Status status = membership_->MatchFingerprint(Context(kQueryKey).get(), garbled, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());
  auto algo = FingerprintRequest(RandomItems(50, 3));
  algo.mutable_raw()->set_algorithm(4);
  status = membership_->MatchFingerprint(Context(kQueryKey).get(), algo, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("algorithm"), std::string::npos);
  auto unknown = FingerprintRequest(RandomItems(50, 3));
  unknown.mutable_match()->add_datasets("no-such-dataset");
  EXPECT_EQ(
      membership_->MatchFingerprint(Context(kQueryKey).get(), unknown, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, CompressedFingerprintFromEncodeFingerprint) {
  std::vector<uint32_t> clip(reference_.begin(), reference_.begin() + 120);
  absl::StatusOr<std::string> encoded = EncodeFingerprint(clip);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  v1::MatchFingerprintRequest request;
  request.set_compressed(*encoded);
  request.set_duration(15);
  MatchResponse response;
  grpc::Status status = membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  EXPECT_DOUBLE_EQ(response.duration(), 15);
}

TEST_F(ServerTest, AuthenticationAndRoles) {
  MatchResponse response;
  auto request = FingerprintRequest(RandomItems(50, 5));
  EXPECT_EQ(membership_->MatchFingerprint(Context("").get(), request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(membership_->MatchFingerprint(Context("wrong-key-0123456789").get(), request, &response)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(membership_->MatchFingerprint(Context(kAdminKey).get(), request, &response).ok());

  // A query key may read the catalogue but not change it.
  v1::GetStatsResponse stats;
  EXPECT_TRUE(catalog_stub_->GetStats(Context(kQueryKey).get(), {}, &stats).ok());
  v1::DeleteTracksRequest del;
  del.set_dataset("fma");
  del.set_entire_dataset(true);
  v1::DeleteTracksResponse deleted;
  grpc::Status status = catalog_stub_->DeleteTracks(Context(kQueryKey).get(), del, &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("admin"), std::string::npos);
  v1::IngestTracksResponse ingested;
  auto context = Context(kQueryKey);
  auto writer = catalog_stub_->IngestTracks(context.get(), &ingested);
  v1::IngestTracksRequest header;
  header.mutable_header()->set_dataset("x");
  header.mutable_header()->set_version("1");
  writer->Write(header);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(catalog_.num_tracks(), 1);

  // The log names the key, never the key itself.
  bool saw_denied = false;
  for (const std::string& line : log_.lines()) {
    EXPECT_EQ(line.find(kQueryKey), std::string::npos);
    EXPECT_EQ(line.find(kAdminKey), std::string::npos);
    nlohmann::json parsed = nlohmann::json::parse(line);
    if (parsed["method"] == "DeleteTracks") {
      saw_denied = true;
      EXPECT_EQ(parsed["code"], "PERMISSION_DENIED");
      EXPECT_EQ(parsed["key"], "label-a");
      EXPECT_TRUE(parsed.contains("latency_ms"));
      EXPECT_TRUE(parsed.contains("peer"));
    }
  }
  EXPECT_TRUE(saw_denied);
}

TEST_F(ServerTest, RateLimitPerKey) {
  server_.reset();
  options_.rate_limit_qps = 1;
  options_.rate_limit_burst = 2;
  StartServer();
  MatchResponse response;
  auto request = FingerprintRequest(RandomItems(50, 5));
  EXPECT_TRUE(membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response).ok());
  EXPECT_TRUE(membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response).ok());
  grpc::Status limited =
      membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response);
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(limited.error_message().find("rate limit"), std::string::npos);
  // Another key has its own bucket.
  EXPECT_TRUE(membership_->MatchFingerprint(Context(kAdminKey).get(), request, &response).ok());
}

TEST_F(ServerTest, MatchAudioUploads) {
  std::vector<uint32_t> clip(reference_.begin() + 10, reference_.begin() + 90);
  MatchResponse response;
  grpc::Status status = MatchAudio(MakeFakeAudio(clip), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  EXPECT_EQ(response.file_name(), "clip.mp3");
  ASSERT_GE(response.matches_size(), 1);
  EXPECT_NEAR(response.matches(0).ref_start(), ItemToSeconds(10), 1e-6);

  // Without expected_size too.
  status = MatchAudio(MakeFakeAudio(clip), &response, 0);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

// A clip cut off the reference's item grid: only one of its sub-item phases lines up with the
// reference (here the fake's 682-sample phase). MatchAudio must try the phases `trainspotter
// query` tries, in its order, and report the query times of the phase that matched.
TEST_F(ServerTest, MatchAudioTriesTheQueryPhaseVariants) {
  std::vector<uint32_t> on_grid(reference_.begin() + 40, reference_.begin() + 120);
  std::vector<uint32_t> off_grid = FakePhaseVariant(on_grid, 682);  // its 682 phase = on_grid
  MatchResponse response;
  grpc::Status status = MatchAudio(MakeFakeAudio(off_grid), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  ASSERT_GE(response.matches_size(), 1);
  EXPECT_NEAR(response.matches(0).ref_start(), ItemToSeconds(40), 1e-6);
  EXPECT_NEAR(response.matches(0).query_start(), PhaseOffsetSeconds(682), 1e-9);

  const CatalogQuery query = catalog_.last_query();
  EXPECT_EQ(query.items, off_grid);
  ASSERT_EQ(query.phase_variants.size(), kQueryPhaseOffsets.size());
  for (size_t i = 0; i < kQueryPhaseOffsets.size(); ++i) {
    EXPECT_DOUBLE_EQ(query.phase_variants[i].first,
                     kQueryPhaseOffsets[i] / static_cast<double>(kFingerprintSampleRate));
    EXPECT_EQ(query.phase_variants[i].second.items,
              FakePhaseVariant(off_grid, kQueryPhaseOffsets[i]));
  }
  EXPECT_TRUE(query.speed_variants.empty());  // none asked for
}

TEST_F(ServerTest, MatchFingerprintTriesPhaseVariants) {
  std::vector<uint32_t> clip(reference_.begin() + 200, reference_.begin() + 260);
  auto request = FingerprintRequest(RandomItems(60, 77));  // the plain items match nothing
  v1::PhaseVariant* miss = request.add_phase_variants();
  miss->set_start_seconds(0.031);
  std::vector<uint32_t> other = RandomItems(60, 78);
  miss->mutable_items()->Assign(other.begin(), other.end());
  v1::PhaseVariant* hit = request.add_phase_variants();
  hit->set_start_seconds(0.062);
  hit->mutable_items()->Assign(clip.begin(), clip.end());
  MatchResponse response;
  grpc::Status status = membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  ASSERT_GE(response.matches_size(), 1);
  EXPECT_NEAR(response.matches(0).ref_start(), ItemToSeconds(200), 1e-6);
  EXPECT_NEAR(response.matches(0).query_start(), 0.062, 1e-9);
  const CatalogQuery query = catalog_.last_query();
  ASSERT_EQ(query.phase_variants.size(), 2u);
  EXPECT_DOUBLE_EQ(query.phase_variants[0].first, 0.031);
  EXPECT_EQ(query.phase_variants[0].second.items, other);
  EXPECT_DOUBLE_EQ(query.phase_variants[1].first, 0.062);
  EXPECT_EQ(query.phase_variants[1].second.items, clip);
}

TEST_F(ServerTest, BadPhaseVariantsAreInvalidArgument) {
  std::vector<uint32_t> clip(reference_.begin(), reference_.begin() + 60);
  auto with_phase = [&](double start, const std::vector<uint32_t>& items) {
    auto request = FingerprintRequest(clip);
    v1::PhaseVariant* variant = request.add_phase_variants();
    variant->set_start_seconds(start);
    variant->mutable_items()->Assign(items.begin(), items.end());
    return request;
  };
  std::vector<v1::MatchFingerprintRequest> bad = {with_phase(-0.01, clip), with_phase(1.0, clip),
                                                  with_phase(std::nan(""), clip),
                                                  with_phase(0.03, {})};
  auto too_many = FingerprintRequest(clip);
  for (int i = 0; i <= kMaxPhaseVariants; ++i) {
    v1::PhaseVariant* variant = too_many.add_phase_variants();
    variant->set_start_seconds(0.01 * i);
    variant->mutable_items()->Assign(clip.begin(), clip.end());
  }
  bad.push_back(too_many);
  auto short_weights = with_phase(0.03, clip);
  short_weights.mutable_phase_variants(0)->set_bit_weights(std::string(15 * clip.size(), '\x77'));
  bad.push_back(short_weights);
  const int64_t calls = catalog_.match_calls();
  for (const v1::MatchFingerprintRequest& request : bad) {
    MatchResponse response;
    grpc::Status status =
        membership_->MatchFingerprint(Context(kQueryKey).get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << request.phase_variants(0).start_seconds();
    EXPECT_NE(status.error_message().find("phase variant"), std::string::npos)
        << status.error_message();
  }
  EXPECT_EQ(catalog_.match_calls(), calls);  // refused before matching
  // So are the plain fingerprint's bit weights, if they do not cover its items.
  auto bad_plain = FingerprintRequest(clip);
  bad_plain.set_bit_weights(std::string(3, '\x77'));
  MatchResponse refused;
  grpc::Status status =
      membership_->MatchFingerprint(Context(kQueryKey).get(), bad_plain, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("bit_weights"), std::string::npos)
      << status.error_message();
  bad_plain.set_bit_weights(std::string(16 * clip.size(), '\x77'));
  EXPECT_TRUE(membership_->MatchFingerprint(Context(kQueryKey).get(), bad_plain, &refused).ok());
  EXPECT_EQ(catalog_.last_query().weights, std::vector<uint8_t>(32 * clip.size(), 7));

  // The edges of the range are fine.
  MatchResponse response;
  EXPECT_TRUE(
      membership_->MatchFingerprint(Context(kQueryKey).get(), with_phase(0, clip), &response).ok());
  EXPECT_TRUE(
      membership_->MatchFingerprint(Context(kQueryKey).get(), with_phase(0.999, clip), &response)
          .ok());

  // On a stream, a bad phase variant fails that query only.
  auto context = Context(kQueryKey);
  auto stream = membership_->MatchStream(context.get());
  auto first = with_phase(2.5, clip);
  first.set_request_id("bad");
  auto second = with_phase(0.03, clip);
  second.set_request_id("good");
  ASSERT_TRUE(stream->Write(first));
  ASSERT_TRUE(stream->Write(second));
  stream->WritesDone();
  std::map<std::string, MatchResponse> answers;
  while (stream->Read(&response)) answers[response.request_id()] = response;
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answers["bad"].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_FALSE(answers["good"].has_error());
  EXPECT_TRUE(answers["good"].member());
}

TEST_F(ServerTest, MatchAudioErrors) {
  MatchResponse response;
  grpc::Status corrupt = MatchAudio("<html>this is not audio</html>", &response);
  EXPECT_EQ(corrupt.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(corrupt.error_message().find("not an audio file"), std::string::npos);

  std::string big = MakeFakeAudio(RandomItems(20000, 4));  // 80 KB > 64 KiB limit
  grpc::Status announced = MatchAudio(big, &response);
  EXPECT_EQ(announced.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(announced.error_message().find("--max-upload-mb"), std::string::npos);
  grpc::Status streamed = MatchAudio(big, &response, 0);
  EXPECT_EQ(streamed.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  grpc::Status empty = MatchAudio("", &response);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Chunks before options.
  auto context = Context(kQueryKey);
  auto writer = membership_->MatchAudio(context.get(), &response);
  v1::MatchAudioRequest chunk;
  chunk.set_chunk("abc");
  writer->Write(chunk);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The server is still fine.
  EXPECT_TRUE(MatchAudio(MakeFakeAudio(RandomItems(50, 8)), &response).ok());
}

TEST_F(ServerTest, DeadlinesAreHonoured) {
  catalog_.set_match_delay(absl::Seconds(5));
  MatchResponse response;
  absl::Time start = absl::Now();
  grpc::Status status =
      membership_->MatchFingerprint(Context(kQueryKey, absl::Milliseconds(300)).get(),
                                    FingerprintRequest(RandomItems(50, 5)), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  catalog_.set_match_delay(absl::ZeroDuration());
  fingerprinter_->set_delay(absl::Seconds(5));
  start = absl::Now();
  status = MatchAudio(MakeFakeAudio(RandomItems(50, 5)), &response, -1, kQueryKey,
                      absl::Milliseconds(300));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  fingerprinter_->set_delay(absl::ZeroDuration());
  // Give the server a moment to log the abandoned calls.
  absl::SleepFor(absl::Milliseconds(200));
}

TEST_F(ServerTest, MatchStreamAnswersEveryQueryOnceWithItsId) {
  auto context = Context(kQueryKey);
  auto stream = membership_->MatchStream(context.get());
  constexpr int kQueries = 60;
  std::thread writer([&] {
    for (int i = 0; i < kQueries; ++i) {
      v1::MatchFingerprintRequest request;
      if (i % 3 == 0) {
        std::vector<uint32_t> clip(reference_.begin() + i, reference_.begin() + i + 40);
        request = FingerprintRequest(clip);
      } else if (i % 3 == 1) {
        request = FingerprintRequest(RandomItems(40, 1000 + i));
      } else if (i == 2) {
        request = FingerprintRequest({});  // bad query: answered with an error, stream goes on
      } else {
        request = FingerprintRequest(RandomItems(40, 2000 + i));
      }
      request.set_request_id(absl::StrCat("id-", i));
      ASSERT_TRUE(stream->Write(request));
    }
    stream->WritesDone();
  });
  std::set<std::string> seen;
  int members = 0, errors = 0;
  MatchResponse response;
  while (stream->Read(&response)) {
    EXPECT_TRUE(seen.insert(response.request_id()).second) << response.request_id();
    if (response.has_error()) {
      ++errors;
      EXPECT_EQ(response.request_id(), "id-2");
      EXPECT_EQ(response.error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    }
    if (response.member()) ++members;
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kQueries));
  EXPECT_EQ(members, kQueries / 3);
  EXPECT_EQ(errors, 1);
}

TEST_F(ServerTest, MatchStreamNeedsRequestIds) {
  auto context = Context(kQueryKey);
  auto stream = membership_->MatchStream(context.get());
  ASSERT_TRUE(stream->Write(FingerprintRequest(RandomItems(40, 1))));
  stream->WritesDone();
  MatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, ListDatasetsPages) {
  for (const char* name : {"b", "c", "d", "e"})
    ASSERT_TRUE(catalog_.EnsureDataset(name, "1", "").ok());
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    v1::ListDatasetsRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListDatasetsResponse response;
    grpc::Status status = catalog_stub_->ListDatasets(Context(kQueryKey).get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const v1::Dataset& d : response.datasets()) names.push_back(d.name());
    token = response.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(names, (std::vector<std::string>{"b", "c", "d", "e", "fma"}));
  EXPECT_EQ(pages, 3);

  v1::ListDatasetsRequest bad;
  bad.set_page_token("!!!");
  v1::ListDatasetsResponse response;
  EXPECT_EQ(catalog_stub_->ListDatasets(Context(kQueryKey).get(), bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, GetTrackAndStats) {
  v1::GetTrackRequest request;
  request.set_dataset("fma");
  request.set_track_id("000123");
  v1::Track track;
  ASSERT_TRUE(catalog_stub_->GetTrack(Context(kQueryKey).get(), request, &track).ok());
  EXPECT_EQ(track.metadata().title(), "Song");
  EXPECT_EQ(track.num_items(), 400);
  request.set_track_id("nope");
  EXPECT_EQ(catalog_stub_->GetTrack(Context(kQueryKey).get(), request, &track).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::GetStatsResponse stats;
  ASSERT_TRUE(catalog_stub_->GetStats(Context(kQueryKey).get(), {}, &stats).ok());
  EXPECT_EQ(stats.datasets(), 1);
  EXPECT_EQ(stats.tracks(), 1);
  EXPECT_GE(stats.calls_in_flight(), 1);
}

class IngestStream {
 public:
  IngestStream(v1::Catalog::Stub* stub, const std::string& key)
      : context_(Context(key)), writer_(stub->IngestTracks(context_.get(), &response_)) {}
  void Header(const std::string& dataset) {
    v1::IngestTracksRequest m;
    m.mutable_header()->set_dataset(dataset);
    m.mutable_header()->set_version("2");
    m.mutable_header()->set_description("test set");
    Write(m);
  }
  void Raw(const std::string& id, const std::vector<uint32_t>& items) {
    v1::IngestTracksRequest m;
    m.mutable_track()->set_track_id(id);
    m.mutable_track()->mutable_metadata()->set_title(absl::StrCat("Title ", id));
    m.mutable_track()->mutable_raw()->mutable_items()->Assign(items.begin(), items.end());
    Write(m);
  }
  void Audio(const std::string& id, const std::string& bytes, size_t chunk = 1000) {
    v1::IngestTracksRequest m;
    m.mutable_track()->set_track_id(id);
    m.mutable_track()->set_audio(bytes.substr(0, chunk));
    Write(m);
    for (size_t i = chunk; i < bytes.size(); i += chunk) {
      v1::IngestTracksRequest c;
      c.set_audio_chunk(bytes.substr(i, chunk));
      Write(c);
    }
  }
  void Path(const std::string& id, const std::string& path) {
    v1::IngestTracksRequest m;
    m.mutable_track()->set_track_id(id);
    m.mutable_track()->set_server_path(path);
    Write(m);
  }
  void Write(const v1::IngestTracksRequest& m) { open_ = open_ && writer_->Write(m); }
  grpc::Status Finish() {
    if (open_) writer_->WritesDone();
    return writer_->Finish();
  }
  const v1::IngestTracksResponse& response() const { return response_; }

 private:
  v1::IngestTracksResponse response_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientWriter<v1::IngestTracksRequest>> writer_;
  bool open_ = true;
};

TEST_F(ServerTest, IngestTracksFromEverySourceIsVisibleAtOnce) {
  std::vector<uint32_t> a = RandomItems(300, 11), b = RandomItems(300, 12),
                        c = RandomItems(300, 13);
  ASSERT_TRUE(testing::ScopedTempDir().path().size() > 0);
  {
    std::ofstream(tmp_.File("ingest/c.fake"), std::ios::binary) << MakeFakeAudio(c);
    std::ofstream(tmp_.File("outside.fake"), std::ios::binary) << MakeFakeAudio(c);
  }
  IngestStream ingest(catalog_stub_.get(), kAdminKey);
  ingest.Header("newset");
  ingest.Raw("a", a);
  ingest.Audio("b", MakeFakeAudio(b));
  ingest.Path("c", "c.fake");
  ingest.Path("escape", "../outside.fake");
  ingest.Path("missing", "nope.fake");
  ingest.Audio("corrupt", "garbage bytes that are not audio");
  ingest.Audio("huge", MakeFakeAudio(RandomItems(20000, 14)));
  ingest.Raw("", a);
  grpc::Status status = ingest.Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ingest.response().added(), 3);
  EXPECT_EQ(ingest.response().failed(), 5);
  std::map<std::string, int> codes;
  for (const v1::TrackError& e : ingest.response().errors()) codes[e.track_id()] = e.code();
  EXPECT_EQ(codes["escape"], static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_EQ(codes["missing"], static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(codes["corrupt"], static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(codes["huge"], static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(codes[""], static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));

  // Audio (uploaded or on the server) gets a narrowband twin, as `trainspotter ingest` gives it;
  // a fingerprint has none.
  EXPECT_EQ(catalog_.narrowband_items("newset", "b"), FakeNarrowband(b));
  EXPECT_EQ(catalog_.narrowband_items("newset", "c"), FakeNarrowband(c));
  EXPECT_TRUE(catalog_.narrowband_items("newset", "a").empty());
  {
    // So a band-limited copy of the uploaded track is found.
    std::vector<uint32_t> band_limited = FakeNarrowband(b);
    MatchResponse response;
    ASSERT_TRUE(MatchAudio(MakeFakeAudio({band_limited.begin() + 30, band_limited.begin() + 100}),
                           &response)
                    .ok());
    ASSERT_TRUE(response.member());
    EXPECT_EQ(response.matches(0).track_id(), "b");
  }

  // Queries see the new tracks without a restart.
  for (const auto& [id, items] :
       {std::make_pair("a", a), std::make_pair("b", b), std::make_pair("c", c)}) {
    MatchResponse response;
    std::vector<uint32_t> clip(items.begin() + 50, items.begin() + 120);
    ASSERT_TRUE(
        membership_->MatchFingerprint(Context(kQueryKey).get(), FingerprintRequest(clip), &response)
            .ok());
    ASSERT_TRUE(response.member()) << id;
    EXPECT_EQ(response.matches(0).dataset(), "newset");
    EXPECT_EQ(response.matches(0).version(), "2");
    EXPECT_EQ(response.matches(0).track_id(), id);
  }

  // The same content again is skipped.
  IngestStream again(catalog_stub_.get(), kAdminKey);
  again.Header("newset");
  again.Raw("a", a);
  again.Audio("b", MakeFakeAudio(b));
  ASSERT_TRUE(again.Finish().ok());
  EXPECT_EQ(again.response().skipped(), 2);
  EXPECT_EQ(again.response().added(), 0);

  // Then deleted: queries stop finding it.
  v1::DeleteTracksRequest del;
  del.set_dataset("newset");
  del.add_track_ids("a");
  del.add_track_ids("never-there");
  v1::DeleteTracksResponse deleted;
  ASSERT_TRUE(catalog_stub_->DeleteTracks(Context(kAdminKey).get(), del, &deleted).ok());
  EXPECT_EQ(deleted.deleted(), 1);
  MatchResponse response;
  std::vector<uint32_t> clip(a.begin() + 50, a.begin() + 120);
  ASSERT_TRUE(
      membership_->MatchFingerprint(Context(kQueryKey).get(), FingerprintRequest(clip), &response)
          .ok());
  EXPECT_FALSE(response.member());

  v1::DeleteTracksRequest whole;
  whole.set_dataset("newset");
  EXPECT_EQ(catalog_stub_->DeleteTracks(Context(kAdminKey).get(), whole, &deleted).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // neither ids nor entire_dataset
  whole.set_entire_dataset(true);
  ASSERT_TRUE(catalog_stub_->DeleteTracks(Context(kAdminKey).get(), whole, &deleted).ok());
  EXPECT_EQ(deleted.deleted(), 2);
}

TEST_F(ServerTest, IngestProtocolErrors) {
  {
    IngestStream ingest(catalog_stub_.get(), kAdminKey);
    ingest.Raw("a", RandomItems(100, 1));  // no header
    EXPECT_EQ(ingest.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    IngestStream ingest(catalog_stub_.get(), kAdminKey);
    ingest.Header("bad name!");
    EXPECT_EQ(ingest.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    IngestStream ingest(catalog_stub_.get(), kAdminKey);
    ingest.Header("ok");
    v1::IngestTracksRequest chunk;
    chunk.set_audio_chunk("abc");
    ingest.Write(chunk);
    EXPECT_EQ(ingest.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(ServerTest, IngestWhileQuerying) {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> queriers;
  for (int t = 0; t < 3; ++t) {
    queriers.emplace_back([&, t] {
      auto stub = v1::Membership::NewStub(channel_);
      std::vector<uint32_t> clip(reference_.begin() + 20 * t, reference_.begin() + 20 * t + 60);
      while (!stop) {
        MatchResponse response;
        grpc::Status s =
            stub->MatchFingerprint(Context(kQueryKey).get(), FingerprintRequest(clip), &response);
        (s.ok() && response.member() ? ok : failed)++;
      }
    });
  }
  for (int batch = 0; batch < 5; ++batch) {
    IngestStream ingest(catalog_stub_.get(), kAdminKey);
    ingest.Header("growing");
    for (int i = 0; i < 20; ++i)
      ingest.Raw(absl::StrCat(batch, "-", i), RandomItems(100, 100 * batch + i + 50));
    ASSERT_TRUE(ingest.Finish().ok());
  }
  stop = true;
  for (std::thread& t : queriers) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(catalog_.num_tracks(), 101);
}

TEST_F(ServerTest, HealthAndGracefulShutdown) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(Context("").get(), request, &response).ok());  // no key needed
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  request.set_service("trainspotter.v1.Membership");
  ASSERT_TRUE(health->Check(Context("").get(), request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // A slow call in flight when shutdown starts still completes.
  catalog_.set_match_delay(absl::Milliseconds(1500));
  grpc::Status slow_status;
  MatchResponse slow_response;
  std::thread slow([&] {
    slow_status = membership_->MatchFingerprint(Context(kQueryKey).get(),
                                                FingerprintRequest(reference_), &slow_response);
  });
  absl::SleepFor(absl::Milliseconds(300));
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(10), absl::Milliseconds(500)); });
  absl::SleepFor(absl::Milliseconds(150));
  request.set_service("");
  ASSERT_TRUE(health->Check(Context("").get(), request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stopper.join();
  slow.join();
  EXPECT_TRUE(slow_status.ok()) << slow_status.error_message();
  EXPECT_TRUE(slow_response.member());
  // Refused afterwards.
  MatchResponse after;
  EXPECT_FALSE(membership_
                   ->MatchFingerprint(Context(kQueryKey, absl::Seconds(1)).get(),
                                      FingerprintRequest(reference_), &after)
                   .ok());
}

TEST_F(ServerTest, StreamEndsWithUnavailableOnShutdown) {
  auto context = Context(kQueryKey);
  auto stream = membership_->MatchStream(context.get());
  auto request = FingerprintRequest(reference_);
  request.set_request_id("1");
  ASSERT_TRUE(stream->Write(request));
  MatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(5)); });
  absl::SleepFor(absl::Milliseconds(200));
  request.set_request_id("2");
  stream->Write(request);  // read after draining began: left unanswered for the client to resend
  while (stream->Read(&response)) EXPECT_NE(response.request_id(), "2");
  grpc::Status status = stream->Finish();
  stopper.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

// Server reflection, spoken by hand (Debian ships no reflection stubs): ServerReflectionInfo
// with list_services = "" must list our services.
TEST_F(ServerTest, ReflectionListsServices) {
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto call = generic.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  auto step = [&](intptr_t expected) {
    ASSERT_TRUE(cq.Next(&tag, &ok));
    ASSERT_EQ(reinterpret_cast<intptr_t>(tag), expected);
  };
  call->StartCall(reinterpret_cast<void*>(1));
  step(1);
  const char request_bytes[] = {0x3a, 0x00};  // field 7 (list_services), empty string
  grpc::Slice slice(request_bytes, sizeof(request_bytes));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  step(2);
  call->WritesDone(reinterpret_cast<void*>(3));
  step(3);
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(4));
  step(4);
  ASSERT_TRUE(ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  google::protobuf::UnknownFieldSet response;
  ASSERT_TRUE(response.ParseFromString(bytes));
  std::set<std::string> services;
  for (int i = 0; i < response.field_count(); ++i) {
    if (response.field(i).number() != 6) continue;  // list_services_response
    google::protobuf::UnknownFieldSet list;
    ASSERT_TRUE(list.ParseFromString(response.field(i).length_delimited()));
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      ASSERT_TRUE(service.ParseFromString(list.field(j).length_delimited()));
      services.insert(service.field(0).length_delimited());
    }
  }
  EXPECT_EQ(services.count("trainspotter.v1.Membership"), 1u);
  EXPECT_EQ(services.count("trainspotter.v1.Catalog"), 1u);
  EXPECT_EQ(services.count("grpc.health.v1.Health"), 1u);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(ServerTest, MetricsCountCallsByMethodAndCode) {
  MatchResponse response;
  ASSERT_TRUE(
      membership_
          ->MatchFingerprint(Context(kQueryKey).get(), FingerprintRequest(reference_), &response)
          .ok());
  membership_->MatchFingerprint(Context("").get(), FingerprintRequest(reference_), &response);
  std::string text = server_->metrics().Scrape();
  EXPECT_NE(text.find("trainspotter_requests_total{code=\"OK\",method=\"MatchFingerprint\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "trainspotter_requests_total{code=\"UNAUTHENTICATED\",method=\"MatchFingerprint\"} 1"),
      std::string::npos);
  EXPECT_NE(text.find("trainspotter_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(text.find("trainspotter_catalog_tracks 1"), std::string::npos);
  EXPECT_NE(text.find("trainspotter_requests_in_flight"), std::string::npos);

  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0", server_->metrics());
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_GT((*endpoint)->port(), 0);
  std::string http = HttpGet((*endpoint)->port(), "/metrics");
  EXPECT_TRUE(absl::StartsWith(http, "HTTP/1.0 200 OK\r\n")) << http;
  EXPECT_NE(http.find("trainspotter_requests_total{code=\"OK\",method=\"MatchFingerprint\"} 1"),
            std::string::npos);
  EXPECT_NE(HttpGet((*endpoint)->port(), "/other").find("404"), std::string::npos);
  // Port in use: a clear error, no exception.
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> clash =
      MetricsEndpoint::Start(absl::StrCat("127.0.0.1:", (*endpoint)->port()), server_->metrics());
  EXPECT_TRUE(absl::IsUnavailable(clash.status())) << clash.status();
}

TEST(ServerOptionsTest, RefusesOpenNonLoopbackWithoutKeys) {
  FakeCatalog catalog;
  ServerOptions options;
  options.listen_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, &catalog);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(server.status()));
  EXPECT_NE(server.status().message().find("--keys"), absl::string_view::npos);

  options.listen_address = "127.0.0.1:0";
  options.tls_cert_file = "/nonexistent.pem";
  EXPECT_FALSE(Server::Start(options, &catalog).ok());
}

TEST(ServerOptionsTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:50051"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_TRUE(IsLoopbackAddress("unix:/tmp/ts.sock"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("192.168.1.2:50051"));
  EXPECT_FALSE(IsLoopbackAddress("127.example.com:50051"));
  EXPECT_FALSE(IsLoopbackAddress(":50051"));
}

// ---- client -------------------------------------------------------------------------------

TEST_F(ServerTest, ClientMatchesAndReportsErrors) {
  ClientOptions options;
  options.address = server_->address();
  options.api_key = kQueryKey;
  auto client = TrainspotterClient::Connect(options);
  ASSERT_TRUE(client.ok());
  RemoteQuery query;
  query.fingerprint.items.assign(reference_.begin() + 5, reference_.begin() + 90);
  absl::StatusOr<QueryOutcome> outcome = (*client)->MatchFingerprint(query);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->result.member);
  EXPECT_EQ(outcome->result.matches[0].track.metadata.album, "LP");

  absl::StatusOr<QueryOutcome> audio = (*client)->MatchAudioBytes(
      MakeFakeAudio(query.fingerprint.items), "x.fake", {}, 0, absl::Seconds(10));
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_TRUE(audio->result.member);

  // Variants travel with the query: only the phase variant matches here.
  RemoteQuery shifted;
  shifted.fingerprint.items = RandomItems(80, 31);
  shifted.variants.phase.emplace_back(
      0.093,
      WeightedItems{std::vector<uint32_t>(reference_.begin() + 7, reference_.begin() + 87), {}});
  shifted.variants.speed.emplace_back(1.02, WeightedItems{RandomItems(78, 32), {}});
  outcome = (*client)->MatchFingerprint(shifted);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->result.member);
  EXPECT_NEAR(outcome->result.matches[0].segment.query_start, 0.093, 1e-9);
  CatalogQuery sent = catalog_.last_query();
  EXPECT_EQ(sent.phase_variants, shifted.variants.phase);
  EXPECT_EQ(sent.speed_variants, shifted.variants.speed);

  // Speed factors given to MatchAudioBytes reach the server's fingerprinter; the phases are the
  // server's own.
  audio = (*client)->MatchAudioBytes(MakeFakeAudio(query.fingerprint.items), "x.fake", {}, 0,
                                     absl::Seconds(10), {1.01, 0.99});
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(fingerprinter_->last_options().speed_factors, (std::vector<double>{1.01, 0.99}));
  EXPECT_EQ(catalog_.last_query().phase_variants.size(), kQueryPhaseOffsets.size());

  absl::StatusOr<bool> serving = (*client)->Serving();
  ASSERT_TRUE(serving.ok());
  EXPECT_TRUE(*serving);

  options.api_key = "bad-key-0123456789abc";
  auto bad = TrainspotterClient::Connect(options);
  EXPECT_TRUE(absl::IsUnauthenticated((*bad)->MatchFingerprint(query).status()));
}

// A scan's stream survives a server restart: unanswered queries are resent, none is answered
// twice, none lost.
TEST_F(ServerTest, BulkMatcherSurvivesServerRestart) {
  catalog_.set_match_delay(absl::Milliseconds(10));
  int port = server_->port();
  ClientOptions options;
  options.address = server_->address();
  options.api_key = kQueryKey;
  options.initial_backoff = absl::Milliseconds(50);
  options.retry_for = absl::Seconds(30);
  auto client = TrainspotterClient::Connect(options);
  ASSERT_TRUE(client.ok());

  constexpr int kQueries = 200;
  absl::Mutex mu;
  std::map<uint64_t, int> answers;
  int members = 0;
  BulkMatcher bulk(client->get(), 8, [&](uint64_t tag, absl::StatusOr<QueryOutcome> outcome) {
    absl::MutexLock lock(&mu);
    answers[tag]++;
    if (outcome.ok() && outcome->result.member) ++members;
  });
  std::thread restarter([&] {
    absl::SleepFor(absl::Milliseconds(300));
    server_->Shutdown(absl::Seconds(2));
    server_.reset();
    absl::SleepFor(absl::Milliseconds(500));
    options_.listen_address = absl::StrCat("127.0.0.1:", port);
    StartServer();
  });
  for (int i = 0; i < kQueries; ++i) {
    RemoteQuery query;
    query.fingerprint.items.assign(reference_.begin() + (i % 200),
                                   reference_.begin() + (i % 200) + 50);
    ASSERT_TRUE(bulk.Submit(i, std::move(query)).ok());
  }
  absl::Status finished = bulk.Finish();
  restarter.join();
  ASSERT_TRUE(finished.ok()) << finished;
  EXPECT_EQ(answers.size(), static_cast<size_t>(kQueries));
  for (const auto& [tag, count] : answers) EXPECT_EQ(count, 1) << tag;
  EXPECT_EQ(members, kQueries);
  EXPECT_GE(bulk.reconnects(), 1);
}

TEST_F(ServerTest, BulkMatcherStopsOnBadKey) {
  ClientOptions options;
  options.address = server_->address();
  options.api_key = "bad-key-0123456789abc";
  auto client = TrainspotterClient::Connect(options);
  BulkMatcher bulk(client->get(), 4, [](uint64_t, absl::StatusOr<QueryOutcome>) {});
  RemoteQuery query;
  query.fingerprint.items = RandomItems(50, 1);
  ASSERT_TRUE(bulk.Submit(1, query).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(bulk.Finish()));
}

}  // namespace
}  // namespace trainspotter
