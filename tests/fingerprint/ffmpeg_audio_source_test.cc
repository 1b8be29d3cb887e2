// FingerprintFile / FingerprintBuffer through the FFmpeg decoder: files written by the test
// (WAV in C++, other formats with the ffmpeg CLI), bad input of every kind, limits.
#include "fingerprint/ffmpeg_audio_source.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "tests/testing/audio_synth.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::EncodeWav;
using ::trainspotter::testing::HaveProgram;
using ::trainspotter::testing::RunCommand;
using ::trainspotter::testing::ScopedTempDir;
using ::trainspotter::testing::ShellQuote;
using ::trainspotter::testing::SynthesizeMusic;
using ::trainspotter::testing::WriteBytes;

constexpr int kRate = kFingerprintSampleRate;

FingerprintOptions WholeFile() {
  FingerprintOptions options;
  options.max_seconds = 0;
  return options;
}

// Status message names the input and has exactly one line.
void ExpectOneLineNaming(const absl::Status& status, const std::string& name) {
  EXPECT_NE(status.message().find(name), std::string::npos) << status;
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << status;
}

class FfmpegAudioSourceTest : public ::testing::Test {
 protected:
  // A WAV of synthetic music, written by the test.
  std::string WriteMusicWav(const std::string& name, double seconds, int rate, int channels,
                            uint32_t seed) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(
        WriteBytes(path, EncodeWav(SynthesizeMusic(seconds, rate, channels, seed), rate, channels))
            .ok());
    return path;
  }

  // Encodes `input` with the ffmpeg CLI (`args` between input and output).
  std::string Transcode(const std::string& input, const std::string& name,
                        const std::string& args) {
    const std::string out = dir_.File(name);
    auto r = RunCommand(absl::StrCat("ffmpeg -nostdin -v error -y -i ", ShellQuote(input), " ",
                                     args, " ", ShellQuote(out), " 2>&1"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }

  void SetUp() override { have_ffmpeg_ = HaveProgram("ffmpeg"); }

  ScopedTempDir dir_;
  bool have_ffmpeg_ = false;
};

#define REQUIRE_FFMPEG()                                                            \
  do {                                                                              \
    if (!have_ffmpeg_) GTEST_SKIP() << "the ffmpeg CLI is needed (tools/setup.sh)"; \
  } while (0)

TEST_F(FfmpegAudioSourceTest, MonoWavAt11025IsFedAsDecoded) {
  // Already mono s16 at 11025 Hz: no resampling, so the items equal FingerprintPcm's.
  const std::vector<int16_t> pcm = SynthesizeMusic(20, kRate, 1, 21);
  const std::string path = dir_.File("mono.wav");
  ASSERT_TRUE(WriteBytes(path, EncodeWav(pcm, kRate, 1)).ok());
  auto expected = FingerprintPcm(pcm, kRate, 1);
  ASSERT_TRUE(expected.ok());
  auto result = FingerprintFile(path, WholeFile());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->fingerprint.items, *expected);
  EXPECT_DOUBLE_EQ(result->fingerprint.duration_seconds, 20.0);
  EXPECT_TRUE(result->warnings.empty());
}

TEST_F(FfmpegAudioSourceTest, BufferEqualsFile) {
  const std::string path = WriteMusicWav("stereo.wav", 30, 44100, 2, 22);
  FingerprintOptions options;
  options.speed_factors = {0.97, 1.03};
  auto from_file = FingerprintFile(path, options);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  auto from_buffer = FingerprintBuffer(*bytes, "stereo.wav", options);
  ASSERT_TRUE(from_buffer.ok()) << from_buffer.status();
  EXPECT_EQ(from_file->fingerprint.items, from_buffer->fingerprint.items);
  EXPECT_EQ(from_file->fingerprint.duration_seconds, from_buffer->fingerprint.duration_seconds);
  EXPECT_EQ(from_file->speed_variants, from_buffer->speed_variants);
  EXPECT_EQ(from_file->speed_variants.size(), 2u);
  EXPECT_GT(from_file->fingerprint.items.size(), 200u);
}

TEST_F(FfmpegAudioSourceTest, CompressedFormatsAndBufferEqualsFile) {
  REQUIRE_FFMPEG();
  const std::string wav = WriteMusicWav("src.wav", 25, 44100, 2, 23);
  for (const auto& [name, args] :
       std::vector<std::pair<std::string, std::string>>{{"a.mp3", "-c:a libmp3lame -b:a 128k"},
                                                        {"a.ogg", "-c:a libvorbis -q:a 4"},
                                                        {"a.opus", "-c:a libopus -b:a 96k"},
                                                        {"a.flac", "-c:a flac"},
                                                        {"a.m4a", "-c:a aac -b:a 128k"}}) {
    const std::string path = Transcode(wav, name, args);
    auto from_file = FingerprintFile(path, WholeFile());
    ASSERT_TRUE(from_file.ok()) << name << ": " << from_file.status();
    EXPECT_TRUE(from_file->warnings.empty()) << name << ": " << from_file->warnings[0];
    EXPECT_NEAR(from_file->fingerprint.duration_seconds, 25.0, 0.1) << name;
    auto bytes = ReadFile(path);
    ASSERT_TRUE(bytes.ok());
    auto from_buffer = FingerprintBuffer(*bytes, name, WholeFile());
    ASSERT_TRUE(from_buffer.ok()) << name << ": " << from_buffer.status();
    EXPECT_EQ(from_file->fingerprint.items, from_buffer->fingerprint.items) << name;
  }
}

TEST_F(FfmpegAudioSourceTest, VideoContainerUsesItsAudio) {
  REQUIRE_FFMPEG();
  const std::string wav = WriteMusicWav("src.wav", 20, 48000, 2, 24);
  const std::string mkv = dir_.File("clip.mkv");
  auto r = RunCommand(absl::StrCat(
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=5 -i ", ShellQuote(wav),
      " -shortest -map 0:v -map 1:a -c:v mpeg4 -c:a libvorbis ", ShellQuote(mkv), " 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto video = FingerprintFile(mkv, WholeFile());
  ASSERT_TRUE(video.ok()) << video.status();
  EXPECT_GT(video->fingerprint.items.size(), 100u);
}

TEST_F(FfmpegAudioSourceTest, MissingFileIsNotFound) {
  const std::string path = dir_.File("no-such-file.mp3");
  auto result = FingerprintFile(path, FingerprintOptions());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  ExpectOneLineNaming(result.status(), path);
}

TEST_F(FfmpegAudioSourceTest, DirectoryIsInvalidArgument) {
  auto result = FingerprintFile(dir_.path(), FingerprintOptions());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectOneLineNaming(result.status(), dir_.path());
  EXPECT_TRUE(absl::StrContains(result.status().message(), "directory")) << result.status();
}

TEST_F(FfmpegAudioSourceTest, EmptyFileAndEmptyBuffer) {
  const std::string path = dir_.File("empty.mp3");
  ASSERT_TRUE(WriteBytes(path, "").ok());
  auto result = FingerprintFile(path, FingerprintOptions());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectOneLineNaming(result.status(), path);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "empty")) << result.status();

  auto buffer = FingerprintBuffer("", "upload.mp3", FingerprintOptions());
  ASSERT_FALSE(buffer.ok());
  EXPECT_EQ(buffer.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectOneLineNaming(buffer.status(), "upload.mp3");
}

TEST_F(FfmpegAudioSourceTest, RandomBytesAreNotAudio) {
  std::mt19937 rng(31);
  std::string noise(200000, '\0');
  for (char& c : noise) c = static_cast<char>(rng() & 0xff);
  for (const std::string name : {"noise.bin", "noise.mp3", "noise.ogg"}) {
    const std::string path = dir_.File(name);
    ASSERT_TRUE(WriteBytes(path, noise).ok());
    auto result = FingerprintFile(path, FingerprintOptions());
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    ExpectOneLineNaming(result.status(), path);
  }
}

TEST_F(FfmpegAudioSourceTest, TextFileIsNotAudio) {
  std::string text;
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&text, "line ", i, ": no music here\n");
  for (const std::string name : {"notes.txt", "notes.mp3"}) {
    const std::string path = dir_.File(name);
    ASSERT_TRUE(WriteBytes(path, text).ok());
    auto result = FingerprintFile(path, FingerprintOptions());
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    ExpectOneLineNaming(result.status(), path);
  }
}

TEST_F(FfmpegAudioSourceTest, VideoWithoutAudioHasNoAudioStream) {
  REQUIRE_FFMPEG();
  const std::string path = dir_.File("silent-film.mkv");
  auto r = RunCommand(absl::StrCat(
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=5 -t 3 -c:v mpeg4 ",
      ShellQuote(path), " 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto result = FingerprintFile(path, FingerprintOptions());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectOneLineNaming(result.status(), path);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "no audio stream")) << result.status();
}

TEST_F(FfmpegAudioSourceTest, HeaderFollowedByGarbageIsNothingDecodable) {
  REQUIRE_FFMPEG();
  const std::string mp3 =
      Transcode(WriteMusicWav("src.wav", 10, 44100, 2, 25), "a.mp3", "-c:a libmp3lame -b:a 128k");
  auto bytes = ReadFile(mp3);
  ASSERT_TRUE(bytes.ok());
  // Keep the headers (ID3, Xing) and the first frame's header; garble all audio data.
  std::string broken = bytes->substr(0, 1200);
  std::mt19937 rng(32);
  for (size_t i = 0; i < 200000; ++i) broken.push_back(static_cast<char>(rng() & 0x7f));
  const std::string path = dir_.File("garbled.mp3");
  ASSERT_TRUE(WriteBytes(path, broken).ok());
  auto result = FingerprintFile(path, FingerprintOptions());
  ASSERT_FALSE(result.ok()) << "got " << result->fingerprint.items.size() << " items";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  ExpectOneLineNaming(result.status(), path);
}

// Truncated files still fingerprint (what decoded), with a warning that says so.
TEST_F(FfmpegAudioSourceTest, TruncatedFilesGiveAFingerprintAndAWarning) {
  REQUIRE_FFMPEG();
  const std::string wav = WriteMusicWav("src.wav", 40, 44100, 2, 26);
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"t.mp3", "-c:a libmp3lame -b:a 128k"},
           {"t.ogg", "-c:a libvorbis -q:a 4"},
           {"t.opus", "-c:a libopus -b:a 96k"},
           {"t.flac", "-c:a flac"},
           {"t.m4a", "-c:a aac -b:a 128k -movflags +faststart"}}) {
    const std::string full = Transcode(wav, name, args);
    auto bytes = ReadFile(full);
    ASSERT_TRUE(bytes.ok());
    const std::string path = dir_.File("cut-" + name);
    ASSERT_TRUE(WriteBytes(path, bytes->substr(0, bytes->size() / 2 + 17)).ok());
    auto result = FingerprintFile(path, WholeFile());
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_GT(result->fingerprinted_seconds, 12) << name;
    EXPECT_LT(result->fingerprinted_seconds, 28) << name;
    EXPECT_FALSE(result->warnings.empty()) << name << " was cut in half without a warning";
  }
}

TEST_F(FfmpegAudioSourceTest, CorruptedMiddleGivesAFingerprintAndAWarning) {
  REQUIRE_FFMPEG();
  const std::string wav = WriteMusicWav("src.wav", 40, 44100, 2, 27);
  for (const auto& [name, args] :
       std::vector<std::pair<std::string, std::string>>{{"c.mp3", "-c:a libmp3lame -b:a 128k"},
                                                        {"c.ogg", "-c:a libvorbis -q:a 4"},
                                                        {"c.flac", "-c:a flac"},
                                                        {"c.m4a", "-c:a aac -b:a 128k"}}) {
    const std::string full = Transcode(wav, name, args);
    auto clean = FingerprintFile(full, WholeFile());
    ASSERT_TRUE(clean.ok()) << name << ": " << clean.status();
    auto bytes = ReadFile(full);
    ASSERT_TRUE(bytes.ok());
    std::string damaged = *bytes;
    std::mt19937 rng(33);
    for (size_t i = damaged.size() / 2; i < damaged.size() / 2 + 3000; ++i) {
      damaged[i] = static_cast<char>(rng() & 0xff);
    }
    const std::string path = dir_.File("damaged-" + name);
    ASSERT_TRUE(WriteBytes(path, damaged).ok());
    auto result = FingerprintFile(path, WholeFile());
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_FALSE(result->warnings.empty()) << name << ": damage went unreported";
    // Before the damage (half way) the items are the clean file's; after it decoding went on
    // (audio skipped there shifts what follows, so later items differ in value).
    const auto& a = clean->fingerprint.items;
    const auto& b = result->fingerprint.items;
    ASSERT_GT(b.size(), a.size() * 85 / 100) << name << ": decoding stopped at the damage";
    const size_t prefix = a.size() * 4 / 10;
    EXPECT_TRUE(std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(prefix), b.begin()))
        << name;
  }
}

TEST_F(FfmpegAudioSourceTest, AbsurdDeclaredDurationIsNotTrusted) {
  // A WAV whose header claims 4 GB of data, holding 10 s: decoded quickly, fingerprint of what
  // is there, and a warning that the audio ended early.
  std::string wav = EncodeWav(SynthesizeMusic(10, 8000, 1, 28), 8000, 1);
  for (int offset : {4, 40}) {  // RIFF size and data size
    for (int i = 0; i < 4; ++i) wav[static_cast<size_t>(offset + i)] = static_cast<char>(0xff);
  }
  const std::string path = dir_.File("liar.wav");
  ASSERT_TRUE(WriteBytes(path, wav).ok());
  const absl::Time start = absl::Now();
  auto result = FingerprintFile(path, WholeFile());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_NEAR(result->fingerprinted_seconds, 10, 0.2);
  EXPECT_FALSE(result->warnings.empty());
}

TEST_F(FfmpegAudioSourceTest, HugeFileIsReadOnlyAsFarAsNeeded) {
  // 8 GiB (sparse: a real WAV header and 30 s of music, then silence): with the default
  // 120 s, decoding reads a few MB and stops.
  std::string head = EncodeWav(SynthesizeMusic(30, 44100, 2, 29), 44100, 2);
  for (int offset : {4, 40}) {
    for (int i = 0; i < 4; ++i) head[static_cast<size_t>(offset + i)] = static_cast<char>(0xff);
  }
  const std::string path = dir_.File("huge.wav");
  ASSERT_TRUE(WriteBytes(path, head).ok());
  ASSERT_EQ(::truncate(path.c_str(), int64_t{8} << 30), 0);
  FingerprintOptions options;  // max_seconds = 120
  options.limits.max_input_bytes = 64 << 20;
  auto result = FingerprintFile(path, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->fingerprinted_seconds, 120.0);
}

TEST_F(FfmpegAudioSourceTest, TwoHourFileStreamsInBoundedMemory) {
  // Two hours of 44.1 kHz stereo (sparse: 20 s of music, then digital silence), whole file.
  std::string head = EncodeWav(SynthesizeMusic(20, 44100, 2, 30), 44100, 2);
  const uint32_t data_bytes = 2u * 3600 * 44100 * 4;
  for (int i = 0; i < 4; ++i) {
    head[static_cast<size_t>(40 + i)] = static_cast<char>((data_bytes >> (8 * i)) & 0xff);
    head[static_cast<size_t>(4 + i)] = static_cast<char>(((data_bytes + 36) >> (8 * i)) & 0xff);
  }
  const std::string path = dir_.File("two-hours.wav");
  ASSERT_TRUE(WriteBytes(path, head).ok());
  ASSERT_EQ(::truncate(path.c_str(), int64_t{44} + data_bytes), 0);

  struct rusage before;
  ::getrusage(RUSAGE_SELF, &before);
  auto result = FingerprintFile(path, WholeFile());
  struct rusage after;
  ::getrusage(RUSAGE_SELF, &after);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NEAR(result->fingerprint.duration_seconds, 7200, 1);
  EXPECT_NEAR(result->fingerprinted_seconds, 7200, 1);
  EXPECT_GT(result->fingerprint.items.size(), 7200 * 8u);
  // The decoded PCM alone would be 159 MB at 11025 Hz (1.3 GB as decoded); peak RSS may grow
  // by the items (230 kB) and codec buffers only.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 40 * 1024) << "kB";
}

TEST_F(FfmpegAudioSourceTest, LimitsStopDecoding) {
  const std::string path = WriteMusicWav("long.wav", 60, 44100, 2, 31);
  {
    FingerprintOptions options = WholeFile();
    options.limits.max_input_bytes = 1 << 20;
    auto result = FingerprintFile(path, options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
    ExpectOneLineNaming(result.status(), path);
  }
  {
    FingerprintOptions options = WholeFile();
    options.limits.max_decode_seconds = 15;
    auto result = FingerprintFile(path, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NEAR(result->fingerprinted_seconds, 15, 0.01);
  }
  {
    FingerprintOptions options = WholeFile();
    options.limits.deadline = absl::Now() - absl::Seconds(1);
    auto result = FingerprintFile(path, options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
    ExpectOneLineNaming(result.status(), path);
  }
  {
    FingerprintOptions options = WholeFile();
    options.limits.interrupt = [] { return true; };
    auto result = FingerprintFile(path, options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  }
  {
    // Cancelled midway: after some decoding has happened.
    std::atomic<int> polls{0};
    FingerprintOptions options = WholeFile();
    options.limits.interrupt = [&polls] { return ++polls > 200; };
    auto result = FingerprintFile(path, options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  }
}

TEST_F(FfmpegAudioSourceTest, ConcurrentCallsAgree) {
  const std::string a = WriteMusicWav("a.wav", 20, 44100, 2, 41);
  const std::string b = WriteMusicWav("b.wav", 20, 22050, 1, 42);
  auto ra = FingerprintFile(a, FingerprintOptions());
  auto rb = FingerprintFile(b, FingerprintOptions());
  ASSERT_TRUE(ra.ok() && rb.ok());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        const bool use_a = (t + i) % 2 == 0;
        auto r = FingerprintFile(use_a ? a : b, FingerprintOptions());
        if (!r.ok() || r->fingerprint.items != (use_a ? ra : rb)->fingerprint.items) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(FfmpegAudioSourceTest, PathsAreNeverUrls) {
  // A path is opened as a file, never handed to FFmpeg's protocols.
  auto result = FingerprintFile("http://127.0.0.1:9/x.mp3", FingerprintOptions());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace trainspotter
