// Bit-identical to Debian's fpcalc 1.5.1 on real music: the fixture's tracks as they are, and
// re-encoded (at test time, with the ffmpeg CLI) to MP3, Ogg Vorbis, Opus, FLAC, AAC/M4A and WAV.
// Skips when the fixture (tools/fetch-test-music.sh) or fpcalc/ffmpeg is missing.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::HaveProgram;
using ::trainspotter::testing::MissingMusicMessage;
using ::trainspotter::testing::RunCommand;
using ::trainspotter::testing::ScopedTempDir;
using ::trainspotter::testing::ShellQuote;
using ::trainspotter::testing::TestMusicFiles;

struct FpcalcOutput {
  bool ok = false;
  int duration = -1;
  std::vector<uint32_t> items;
  std::string error;
};

FpcalcOutput RunFpcalc(const std::string& path, double length) {
  FpcalcOutput out;
  // fpcalc 1.5.1 exits 3 after printing a valid result for files shorter than -length (its
  // "Error decoding audio frame (End of file)"), so judge by what it printed.
  auto r = RunCommand(
      absl::StrCat("fpcalc -raw -length ", length, " ", ShellQuote(path), " 2>/dev/null"));
  for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
    if (absl::ConsumePrefix(&line, "DURATION=")) {
      if (!absl::SimpleAtoi(line, &out.duration)) out.error = "bad DURATION";
    } else if (absl::ConsumePrefix(&line, "FINGERPRINT=")) {
      for (absl::string_view item : absl::StrSplit(line, ',')) {
        uint32_t v;
        if (!absl::SimpleAtoi(item, &v)) out.error = "bad FINGERPRINT";
        out.items.push_back(v);
      }
    }
  }
  out.ok = out.error.empty() && out.duration >= 0 && !out.items.empty();
  if (!out.ok && out.error.empty()) out.error = absl::StrCat("no result (exit ", r.exit_code, ")");
  return out;
}

void ExpectSameAsFpcalc(const std::string& path, double length) {
  SCOPED_TRACE(absl::StrCat(path, " --length ", length));
  FpcalcOutput reference = RunFpcalc(path, length);
  ASSERT_TRUE(reference.ok) << "fpcalc: " << reference.error;
  FingerprintOptions options;
  options.max_seconds = length;
  auto ours = FingerprintFile(path, options);
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(static_cast<int>(ours->fingerprint.duration_seconds), reference.duration);
  ASSERT_EQ(ours->fingerprint.items.size(), reference.items.size());
  size_t first_difference = reference.items.size();
  for (size_t i = 0; i < reference.items.size(); ++i) {
    if (ours->fingerprint.items[i] != reference.items[i]) {
      first_difference = i;
      break;
    }
  }
  EXPECT_EQ(first_difference, reference.items.size())
      << "items differ from index " << first_difference;
  EXPECT_TRUE(ours->warnings.empty()) << ours->warnings[0];
}

class FpcalcCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveProgram("fpcalc")) GTEST_SKIP() << "fpcalc not installed (libchromaprint-tools)";
    tracks_ = TestMusicFiles();
    if (tracks_.empty()) GTEST_SKIP() << MissingMusicMessage();
  }
  std::vector<std::string> tracks_;
};

TEST_F(FpcalcCompatTest, EveryFixtureTrackFirst120Seconds) {
  for (const std::string& track : tracks_) ExpectSameAsFpcalc(track, 120);
}

TEST_F(FpcalcCompatTest, EveryFixtureTrackWholeFile) {
  for (const std::string& track : tracks_) ExpectSameAsFpcalc(track, 0);
}

TEST_F(FpcalcCompatTest, OddLengths) {
  ExpectSameAsFpcalc(tracks_.front(), 7.5);
  ExpectSameAsFpcalc(tracks_.back(), 33.3);
}

struct Encoding {
  const char* name;
  const char* extension;
  const char* ffmpeg_args;
};

void PrintTo(const Encoding& e, std::ostream* os) { *os << e.name; }

class ReencodedFpcalcCompatTest : public FpcalcCompatTest,
                                  public ::testing::WithParamInterface<Encoding> {};

TEST_P(ReencodedFpcalcCompatTest, SameItemsAndDuration) {
  if (!HaveProgram("ffmpeg")) GTEST_SKIP() << "the ffmpeg CLI is needed (tools/setup.sh)";
  const Encoding& e = GetParam();
  // An Ogg and an MP3 track of the fixture (different sources, rates), cut to 150 s.
  std::vector<std::string> sources;
  for (const std::string& t : tracks_) {
    if (sources.empty() && absl::EndsWith(t, ".ogg")) sources.push_back(t);
  }
  for (const std::string& t : tracks_) {
    if (absl::EndsWith(t, ".mp3")) {
      sources.push_back(t);
      break;
    }
  }
  ScopedTempDir dir;
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string out = dir.File(absl::StrCat("track", i, ".", e.extension));
    auto r = RunCommand(absl::StrCat("ffmpeg -nostdin -v error -y -i ", ShellQuote(sources[i]),
                                     " -t 150 -vn ", e.ffmpeg_args, " ", ShellQuote(out), " 2>&1"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ExpectSameAsFpcalc(out, 120);
    ExpectSameAsFpcalc(out, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ReencodedFpcalcCompatTest,
    ::testing::Values(Encoding{"Mp3", "mp3", "-c:a libmp3lame -b:a 160k"},
                      Encoding{"Mp3Vbr22k", "mp3", "-c:a libmp3lame -q:a 5 -ar 22050"},
                      Encoding{"Vorbis", "ogg", "-c:a libvorbis -q:a 5"},
                      Encoding{"Opus", "opus", "-c:a libopus -b:a 96k"},
                      Encoding{"Flac", "flac", "-c:a flac"},
                      Encoding{"Flac24Bit48k", "flac", "-c:a flac -sample_fmt s32 -ar 48000"},
                      Encoding{"AacM4a", "m4a", "-c:a aac -b:a 128k"},
                      Encoding{"Wav", "wav", "-c:a pcm_s16le"},
                      Encoding{"WavMono11025", "wav", "-c:a pcm_s16le -ac 1 -ar 11025"},
                      Encoding{"WavFloat8k", "wav", "-c:a pcm_f32le -ar 8000"},
                      Encoding{"Surround51Flac", "flac",
                               "-af 'pan=5.1|FL=c0|FR=c1|FC=c0|LFE=c1|BL=c0|BR=c1' -c:a flac"}),
    [](const ::testing::TestParamInfo<Encoding>& info) { return info.param.name; });

}  // namespace
}  // namespace trainspotter
