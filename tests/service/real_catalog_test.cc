// The service over the real catalogue (SQLite + FAISS matcher) and the real decoder, with
// synthetic music: ingest WAV uploads through the API, then find a clip of one by upload, and
// band-limited clips through the narrowband twins the ingest computed.
#include <grpcpp/grpcpp.h>

#include "fingerprint/narrowband_filter.h"
#include "matcher/catalog.h"
#include "service/server.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/audio_synth.h"

namespace trainspotter {
namespace {

constexpr int kRate = 22050;

std::string Wav(const std::vector<int16_t>& samples) {
  return testing::EncodeWav(samples, kRate, 1);
}

std::vector<int16_t> Excerpt(const std::vector<int16_t>& samples, double start, double seconds) {
  auto begin = samples.begin() + static_cast<ptrdiff_t>(start * kRate);
  return std::vector<int16_t>(begin, begin + static_cast<ptrdiff_t>(seconds * kRate));
}

TEST(RealCatalogTest, IngestAudioThenMatchClipsWithoutRestart) {
  testing::ScopedTempDir tmp;
  absl::StatusOr<std::unique_ptr<Catalog>> catalog =
      Catalog::Open(tmp.File("catalog"), Catalog::Mode::kReadWrite);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.log_sink = [](absl::string_view) {};
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, catalog->get());
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto catalog_stub = v1::Catalog::NewStub(channel);
  auto membership = v1::Membership::NewStub(channel);

  std::vector<std::vector<int16_t>> tracks;
  for (uint32_t seed = 1; seed <= 3; ++seed)
    tracks.push_back(testing::SynthesizeMusic(40, kRate, 1, seed));
  {
    v1::IngestTracksResponse response;
    auto context = Context("");
    auto writer = catalog_stub->IngestTracks(context.get(), &response);
    v1::IngestTracksRequest header;
    header.mutable_header()->set_dataset("synth");
    header.mutable_header()->set_version("1");
    ASSERT_TRUE(writer->Write(header));
    for (size_t i = 0; i < tracks.size(); ++i) {
      std::string wav = Wav(tracks[i]);
      v1::IngestTracksRequest track;
      track.mutable_track()->set_track_id(absl::StrCat("t", i + 1));
      track.mutable_track()->mutable_metadata()->set_title(absl::StrCat("Track ", i + 1));
      track.mutable_track()->set_audio(wav.substr(0, 100000));
      ASSERT_TRUE(writer->Write(track));
      for (size_t off = 100000; off < wav.size(); off += 100000) {
        v1::IngestTracksRequest chunk;
        chunk.set_audio_chunk(wav.substr(off, 100000));
        ASSERT_TRUE(writer->Write(chunk));
      }
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.added(), 3) << response.DebugString();
  }
  EXPECT_EQ((*catalog)->num_tracks(), 3);

  auto match_audio = [&](const std::string& bytes, v1::MatchResponse* response) {
    auto context = Context("");
    auto writer = membership->MatchAudio(context.get(), response);
    v1::MatchAudioRequest message;
    message.mutable_options()->set_file_name("clip.wav");
    writer->Write(message);
    message.set_chunk(bytes);
    writer->Write(message);
    writer->WritesDone();
    return writer->Finish();
  };
  v1::MatchResponse response;
  grpc::Status status = match_audio(Wav(Excerpt(tracks[1], 12, 12)), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.member());
  ASSERT_GE(response.matches_size(), 1);
  EXPECT_EQ(response.matches(0).track_id(), "t2");
  EXPECT_EQ(response.matches(0).title(), "Track 2");
  EXPECT_NEAR(response.matches(0).ref_start() - response.matches(0).query_start(), 12.0, 0.5);
  EXPECT_NEAR(response.duration(), 12.0, 0.1);

  // Band-limited (telephone-like) clips: found through the narrowband twin that ingest of audio
  // computes, as `trainspotter ingest` does. Without the twin most of these are missed.
  for (size_t i = 0; i < tracks.size(); ++i) {
    std::vector<int16_t> band_limited;
    NarrowbandFilter(kRate).Process(Excerpt(tracks[i], 10, 6), &band_limited);
    status = match_audio(Wav(band_limited), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.member()) << "band-limited clip of t" << i + 1;
    if (response.matches_size() > 0) {
      EXPECT_EQ(response.matches(0).track_id(), absl::StrCat("t", i + 1));
    }
  }

  status = match_audio(Wav(testing::SynthesizeMusic(12, kRate, 1, 77)), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.member());

  status = match_audio("RIFF....WAVEfmt garbage that is not really a wave file", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());
}

}  // namespace
}  // namespace trainspotter
