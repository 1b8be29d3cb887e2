#include "service/convert.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "service/grpc_status.h"
#include "service/request_log.h"

namespace trainspotter {
namespace {

CatalogMatch SampleMatch() {
  CatalogMatch m;
  m.track.dataset = "fma";
  m.track.version = "1";
  m.track.track_id = "000123";
  m.track.metadata.title = "Song";
  m.track.metadata.artist = "Band";
  m.track.metadata.album = "LP";
  m.track.metadata.license = "CC BY 4.0";
  m.track.metadata.duration_seconds = 200;
  m.track.metadata.extra = {{"genre", "jazz"}, {"bpm", "120"}};
  m.segment.member = true;
  m.segment.confidence = 0.999;
  m.segment.false_match_probability = 1e-9;
  m.segment.query_start = 1;
  m.segment.query_end = 11;
  m.segment.ref_start = 61.3;
  m.segment.ref_end = 71.3;
  m.segment.bit_error_rate = 0.1;
  m.segment.speed = 1.02;
  return m;
}

TEST(ConvertTest, MatchRoundTrip) {
  v1::Match proto;
  CatalogMatchToProto(SampleMatch(), &proto);
  EXPECT_EQ(proto.metadata().at("album"), "LP");
  EXPECT_EQ(proto.metadata().at("license"), "CC BY 4.0");
  EXPECT_EQ(proto.metadata().at("genre"), "jazz");
  EXPECT_EQ(proto.metadata().count("source_url"), 0u);  // empty: left out
  CatalogMatch back = CatalogMatchFromProto(proto);
  EXPECT_EQ(back.track.track_id, "000123");
  EXPECT_EQ(back.track.metadata.album, "LP");
  EXPECT_EQ(back.track.metadata.license, "CC BY 4.0");
  // Extra comes back sorted by key (a proto map has no order).
  ASSERT_EQ(back.track.metadata.extra.size(), 2u);
  EXPECT_EQ(back.track.metadata.extra[0].first, "bpm");
  EXPECT_DOUBLE_EQ(back.segment.ref_start, 61.3);
  EXPECT_DOUBLE_EQ(back.segment.speed, 1.02);
  EXPECT_TRUE(back.segment.member);
  EXPECT_DOUBLE_EQ(back.track.metadata.duration_seconds, 200);
}

TEST(ConvertTest, OutcomeRoundTrip) {
  QueryOutcome outcome;
  outcome.duration_seconds = 12.5;
  outcome.result.member = true;
  outcome.result.matches = {SampleMatch()};
  outcome.warnings = {"corrupt frame skipped"};
  v1::MatchResponse proto;
  QueryOutcomeToProto(outcome, &proto);
  QueryOutcome back = QueryOutcomeFromProto(proto);
  EXPECT_TRUE(back.result.member);
  EXPECT_DOUBLE_EQ(back.duration_seconds, 12.5);
  ASSERT_EQ(back.result.matches.size(), 1u);
  EXPECT_EQ(back.warnings, outcome.warnings);
}

TEST(ConvertTest, QueryFingerprint) {
  v1::MatchFingerprintRequest request;
  EXPECT_TRUE(absl::IsInvalidArgument(QueryFingerprintFromProto(request).status()));
  request.mutable_raw()->add_items(7);
  request.mutable_raw()->set_duration(3);
  absl::StatusOr<Fingerprint> fp = QueryFingerprintFromProto(request);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(fp->algorithm, kChromaprintAlgorithm);
  EXPECT_EQ(fp->items, std::vector<uint32_t>{7});
  request.set_compressed("not base64 at all!!");
  EXPECT_TRUE(absl::IsInvalidArgument(QueryFingerprintFromProto(request).status()));
}

TEST(ConvertTest, QueryVariantsRoundTrip) {
  QueryVariants variants;
  std::vector<uint8_t> weights(64);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<uint8_t>(i % 16);
  variants.weights = std::vector<uint8_t>(weights.rbegin(), weights.rend());
  variants.phase = {{0.0309, {{1, 2, 3}, {}}}, {0.0619, {{4, 5}, weights}}};
  variants.speed = {{1.01, {{6}, {}}}, {0.99, {{7, 8}, {}}}};
  v1::MatchFingerprintRequest request;
  QueryVariantsToProto(variants, &request);
  ASSERT_EQ(request.phase_variants_size(), 2);
  EXPECT_DOUBLE_EQ(request.phase_variants(1).start_seconds(), 0.0619);
  EXPECT_EQ(request.phase_variants(1).items_size(), 2);
  ASSERT_EQ(request.speed_variants_size(), 2);
  EXPECT_DOUBLE_EQ(request.speed_variants(0).factor(), 1.01);
  // Bit weights travel packed, two to a byte.
  EXPECT_EQ(request.bit_weights().size(), 32u);
  EXPECT_EQ(request.phase_variants(1).bit_weights().size(), 32u);
  EXPECT_TRUE(request.phase_variants(0).bit_weights().empty());
  QueryVariants back = QueryVariantsFromProto(request);
  EXPECT_EQ(back.weights, variants.weights);
  EXPECT_EQ(back.phase, variants.phase);
  EXPECT_EQ(back.speed, variants.speed);
  // A request from a client that predates phase variants has none.
  EXPECT_TRUE(QueryVariantsFromProto(v1::MatchFingerprintRequest()).phase.empty());
}

TEST(GrpcStatusTest, CodesAndMessagesSurvive) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why");
    grpc::Status converted = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(converted.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(converted), status);
  }
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "x")).error_code(),
            grpc::StatusCode::UNKNOWN);
}

TEST(RequestLogTest, OneJsonObjectPerLine) {
  RequestLogEntry entry;
  entry.start = absl::FromUnixMillis(1700000000123);
  entry.method = "MatchAudio";
  entry.peer = "ipv4:127.0.0.1:5555";
  entry.key_name = "label-a";
  entry.status = absl::InvalidArgumentError("clip.mp3: not \"audio\"\n");
  entry.latency = absl::Microseconds(1234);
  entry.fields["bytes"] = 42;
  entry.fields["file"] = std::string("bad\xff.mp3");  // invalid UTF-8 must not throw
  std::string line = RequestLog::Format(entry);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["ts"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(parsed["method"], "MatchAudio");
  EXPECT_EQ(parsed["key"], "label-a");
  EXPECT_EQ(parsed["code"], "INVALID_ARGUMENT");
  EXPECT_DOUBLE_EQ(parsed["latency_ms"].get<double>(), 1.234);
  EXPECT_EQ(parsed["bytes"], 42);
  EXPECT_EQ(parsed["error"], "clip.mp3: not \"audio\"\n");
}

}  // namespace
}  // namespace trainspotter
