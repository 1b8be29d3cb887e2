// `trainspotter ingest` + `trainspotter query` on the real-music fixture, as a user runs them:
// member clips (transcoded, cut off the item grid) are found at the right offsets, a track that
// was not ingested and silence are not, a full master matches a short reference clip of it, the
// same audio in two datasets is listed twice, clips buried in steady noise are found, and bad
// inputs are reported without stopping.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/audio_synth.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::CommandResult;
using ::trainspotter::testing::RunCommand;
using ::trainspotter::testing::ScopedTempDir;
using ::trainspotter::testing::ShellQuote;
using ::trainspotter::testing::TestMusicFiles;

std::string Base(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> v;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    v.push_back(nlohmann::json::parse(line));
  }
  return v;
}

class QueryCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = new std::vector<std::string>(TestMusicFiles());
    if (files_->size() < 8 || !::trainspotter::testing::HaveProgram("ffmpeg")) return;
    dir_ = new ScopedTempDir();
    // Members: the three long asc tracks and two drascula tracks; the non-member is another
    // drascula track. (Some drascula tracks share audio with each other -- track1/track30,
    // track9/track14 -- so the picks avoid those pairs.)
    for (const std::string& f : *files_) {
      const std::string b = Base(f);
      if (b == "frontiers.mp3" || b == "machine_wars.mp3" || b == "time_to_strike.mp3" ||
          b == "track2.ogg" || b == "track3.ogg") {
        members_.push_back(f);
      }
      if (b == "track6.ogg") nonmember_ = f;
    }
    std::string cmd = absl::StrCat("mkdir -p ", ShellQuote(dir_->File("lib")));
    for (const std::string& m : members_) {
      absl::StrAppend(&cmd, " && ln -s ", ShellQuote(m), " ", ShellQuote(dir_->File("lib/")));
    }
    CommandResult r = RunCommand(cmd);
    ASSERT_EQ(r.exit_code, 0);
    r = RunCommand(absl::StrCat(TRAINSPOTTER_BIN, " ingest --catalog ", dir_->File("cat"),
                                " --dataset music --version 2 ", dir_->File("lib"), " 2>&1"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ready_ = true;
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete files_;
    dir_ = nullptr;
    files_ = nullptr;
  }
  void SetUp() override {
    if (!ready_) GTEST_SKIP() << ::trainspotter::testing::MissingMusicMessage();
  }

  // Cuts [start, start + length) of `src`, applying the ffmpeg options `args`, into `name`.
  static std::string Clip(const std::string& src, double start, double length,
                          const std::string& args, const std::string& name) {
    const std::string out = dir_->File(name);
    CommandResult r =
        RunCommand(absl::StrCat("ffmpeg -nostdin -v error -y -ss ", start, " -t ", length, " -i ",
                                ShellQuote(src), " ", args, " ", ShellQuote(out), " 2>&1"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }

  // [start, start + length) of `src` as mono PCM at the Chromaprint rate, with pink noise
  // (ffmpeg's anoisesrc, `seed`) mixed in at `snr_db` (the clip's mean power over the noise's),
  // written as WAV to `name`.
  static std::string NoisyClip(const std::string& src, double start, double length, double snr_db,
                               int seed, const std::string& name) {
    const std::string music = dir_->File(name + ".music.raw");
    const std::string noise = dir_->File(name + ".noise.raw");
    CommandResult r = RunCommand(absl::StrCat(
        "ffmpeg -nostdin -v error -y -ss ", start, " -t ", length, " -i ", ShellQuote(src),
        " -ac 1 -ar 11025 -f s16le ", ShellQuote(music), " && ffmpeg -nostdin -v error -y -f lavfi",
        " -i anoisesrc=color=pink:sample_rate=11025:seed=", seed, ":duration=", length,
        " -f s16le ", ShellQuote(noise), " 2>&1"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto m = ReadFile(music);
    auto n = ReadFile(noise);
    EXPECT_TRUE(m.ok() && n.ok());
    if (!m.ok() || !n.ok()) return "";
    const size_t count = std::min(m->size(), n->size()) / 2;
    std::vector<double> a(count), b(count);
    double pa = 0, pb = 0;
    for (size_t i = 0; i < count; ++i) {
      int16_t x, y;
      std::memcpy(&x, m->data() + 2 * i, 2);
      std::memcpy(&y, n->data() + 2 * i, 2);
      a[i] = x;
      b[i] = y;
      pa += a[i] * a[i];
      pb += b[i] * b[i];
    }
    const double gain = std::sqrt(pa / std::max(pb, 1.0) / std::pow(10.0, snr_db / 10));
    std::vector<int16_t> mixed(count);
    for (size_t i = 0; i < count; ++i) {
      // Halved so that the sum rarely clips; the ratio of the two is what matters.
      const double v = 0.5 * (a[i] + gain * b[i]);
      mixed[i] = static_cast<int16_t>(std::clamp(std::lround(v), -32768L, 32767L));
    }
    const std::string out = dir_->File(name);
    EXPECT_TRUE(::trainspotter::testing::WriteBytes(
                    out, ::trainspotter::testing::EncodeWav(mixed, kFingerprintSampleRate, 1))
                    .ok());
    return out;
  }

  static CommandResult Query(const std::string& args) {
    return RunCommand(
        absl::StrCat(TRAINSPOTTER_BIN, " query --catalog ", dir_->File("cat"), " ", args));
  }

  static inline std::vector<std::string>* files_ = nullptr;
  static inline ScopedTempDir* dir_ = nullptr;
  static inline std::vector<std::string> members_;
  static inline std::string nonmember_;
  static inline bool ready_ = false;
};

TEST_F(QueryCliTest, MemberClipsAreFoundWithTheirOffsets) {
  ASSERT_EQ(members_.size(), 5u);
  std::vector<std::string> clips;
  std::vector<double> starts;
  for (size_t i = 0; i < members_.size(); ++i) {
    // Offsets chosen off Chromaprint's 0.124 s item grid.
    const double start = 12.3457 + 9.731 * static_cast<double>(i);
    starts.push_back(start);
    clips.push_back(Clip(members_[i], start, 10, "-c:a libmp3lame -b:a 64k",
                         absl::StrCat("member", i, ".mp3")));
  }
  std::string args = "--json";
  for (const std::string& c : clips) absl::StrAppend(&args, " ", ShellQuote(c));
  CommandResult r = Query(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    const nlohmann::json& j = lines[i];
    EXPECT_EQ(j["file"], clips[i]);
    EXPECT_TRUE(j["error"].is_null());
    ASSERT_TRUE(j["member"].get<bool>()) << j.dump();
    ASSERT_FALSE(j["matches"].empty());
    const nlohmann::json& top = j["matches"][0];
    EXPECT_EQ(top["dataset"], "music");
    EXPECT_EQ(top["version"], "2");
    EXPECT_EQ(top["track_id"], Base(members_[i]));
    const double ref_minus_query =
        top["ref_start"].get<double>() - top["query_start"].get<double>();
    EXPECT_NEAR(ref_minus_query, starts[i], 0.5) << j.dump();
    EXPECT_LT(top["false_match_probability"].get<double>(), 1e-6);
    EXPECT_GT(top["confidence"].get<double>(), 0.999);
    EXPECT_NEAR(j["duration"].get<double>(), 10.0, 0.2);
  }
}

// The default, human-readable answer says what --json says: member or not, the track, where,
// and how well the bits agree (a clean clip of different music that sounds alike agrees at ~0.2
// or more, so the bit error rate is part of the answer a person reads).
TEST_F(QueryCliTest, HumanReadableAnswerCarriesTrackOffsetsAndBitErrorRate) {
  ASSERT_FALSE(members_.empty());
  ASSERT_FALSE(nonmember_.empty());
  const std::string member = Clip(members_[0], 31.4159, 10, "", "human_member.wav");
  const std::string non = Clip(nonmember_, 40, 10, "", "human_non.wav");
  CommandResult json = Query(absl::StrCat("--json ", ShellQuote(member)));
  ASSERT_EQ(json.exit_code, 0) << json.output;
  auto lines = JsonLines(json.output);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(lines[0]["member"].get<bool>()) << lines[0].dump();
  const nlohmann::json& top = lines[0]["matches"][0];

  CommandResult human = Query(absl::StrCat(ShellQuote(member), " ", ShellQuote(non)));
  ASSERT_EQ(human.exit_code, 0) << human.output;
  std::vector<std::string> rows = absl::StrSplit(human.output, '\n', absl::SkipEmpty());
  ASSERT_GE(rows.size(), 4u) << human.output;
  EXPECT_EQ(rows[0].rfind(absl::StrCat(member, ": MEMBER of a training set"), 0), 0u) << rows[0];
  EXPECT_NE(rows[1].find(absl::StrCat("music/2  ", Base(members_[0]))), std::string::npos)
      << rows[1];
  double q0, q1, r0, r1, fmp, ber;
  ASSERT_EQ(std::sscanf(rows[2].c_str(),
                        " query %lf-%lf s = reference %lf-%lf s, false-match probability %lf, "
                        "bit error rate %lf",
                        &q0, &q1, &r0, &r1, &fmp, &ber),
            6)
      << rows[2];
  EXPECT_NEAR(r0 - q0, 31.4159, 0.5);
  EXPECT_NEAR(q0, top["query_start"].get<double>(), 0.051);
  EXPECT_NEAR(r1, top["ref_end"].get<double>(), 0.051);
  EXPECT_NEAR(ber, top["bit_error_rate"].get<double>(), 0.0011);
  EXPECT_LT(ber, 0.2);  // an uncompressed copy
  EXPECT_LE(fmp, 1e-5);
  EXPECT_EQ(rows.back(), absl::StrCat(non, ": not in the catalogue (10.0 s)"));

  // With --near-misses the person reading sees the alignments that did not pass too, each
  // marked as such: as many as --json --near-misses lists, none unmarked.
  CommandResult near_json = Query(absl::StrCat("--json --near-misses ", ShellQuote(non)));
  ASSERT_EQ(near_json.exit_code, 0) << near_json.output;
  auto near_lines = JsonLines(near_json.output);
  ASSERT_EQ(near_lines.size(), 1u);
  EXPECT_FALSE(near_lines[0]["member"].get<bool>());
  ASSERT_FALSE(near_lines[0]["matches"].empty()) << near_lines[0].dump();  // something came close
  CommandResult near = Query(absl::StrCat("--near-misses ", ShellQuote(non)));
  ASSERT_EQ(near.exit_code, 0) << near.output;
  std::vector<std::string> near_rows = absl::StrSplit(near.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(near_rows.size(), 1 + 2 * near_lines[0]["matches"].size()) << near.output;
  EXPECT_EQ(near_rows[0], absl::StrCat(non, ": not in the catalogue (10.0 s)"));
  for (size_t i = 0; i < near_lines[0]["matches"].size(); ++i) {
    const nlohmann::json& m = near_lines[0]["matches"][i];
    const std::string label = m.value("sounds_alike", false)
                                  ? "  sounds alike, not the same audio: music/2  "
                                  : "  near miss: music/2  ";
    EXPECT_EQ(near_rows[1 + 2 * i].rfind(label + m["track_id"].get<std::string>(), 0), 0u)
        << near_rows[1 + 2 * i];
  }
}

TEST_F(QueryCliTest, NonMemberAndSilenceAreNotMatched) {
  ASSERT_FALSE(nonmember_.empty());
  const std::string a = Clip(nonmember_, 20, 10, "-c:a libmp3lame -b:a 128k", "non.mp3");
  const std::string b = Clip(nonmember_, 5, 30, "", "non30.wav");
  const std::string silence = dir_->File("silence.wav");
  ASSERT_EQ(RunCommand(absl::StrCat("ffmpeg -nostdin -v error -y -f lavfi -i "
                                    "anullsrc=r=44100:cl=stereo -t 10 ",
                                    ShellQuote(silence)))
                .exit_code,
            0);
  const std::string tone = dir_->File("tone.wav");
  ASSERT_EQ(RunCommand(absl::StrCat("ffmpeg -nostdin -v error -y -f lavfi -i "
                                    "sine=frequency=440:sample_rate=44100 -t 10 ",
                                    ShellQuote(tone)))
                .exit_code,
            0);
  CommandResult r = Query(absl::StrCat("--json ", ShellQuote(a), " ", ShellQuote(b), " ",
                                       ShellQuote(silence), " ", ShellQuote(tone)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const nlohmann::json& j : JsonLines(r.output)) {
    EXPECT_TRUE(j["error"].is_null()) << j.dump();
    EXPECT_FALSE(j["member"].get<bool>()) << j.dump();
    EXPECT_TRUE(j["matches"].empty()) << j.dump();
  }
}

TEST_F(QueryCliTest, FullMasterMatchesAShortReferenceClipInAnotherDataset) {
  // A dataset that ships only a 30 s excerpt (as FMA does) of a track that "music" has whole.
  const std::string src = members_[0];
  const std::string excerpt = Clip(src, 100, 30, "-c:a libvorbis -q:a 4", "excerpt.ogg");
  CommandResult r =
      RunCommand(absl::StrCat(TRAINSPOTTER_BIN, " ingest --catalog ", dir_->File("cat"),
                              " --dataset clips ", ShellQuote(excerpt), " 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Query(absl::StrCat("--json ", ShellQuote(src)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), 1u);
  // The excerpt is reported where it was cut from; a track whose material repeats also holds it
  // elsewhere, and those segments are listed too (each a member).
  bool whole = false, part = false;
  for (const nlohmann::json& m : lines[0]["matches"]) {
    if (m["dataset"] == "music" && m["track_id"] == Base(src)) whole = true;
    if (m["dataset"] == "clips" && m["track_id"] == "excerpt.ogg") {
      EXPECT_TRUE(m["member"].get<bool>()) << m.dump();
      const double offset = m["query_start"].get<double>() - m["ref_start"].get<double>();
      if (std::abs(offset - 100.0) <= 0.5 &&
          m["query_end"].get<double>() - m["query_start"].get<double>() > 20.0) {
        part = true;
      }
    }
  }
  EXPECT_TRUE(whole) << lines[0].dump();
  EXPECT_TRUE(part) << lines[0].dump();

  // A clip inside the excerpt is in both datasets: both are listed, and --dataset filters.
  const std::string clip = Clip(src, 110, 8, "-c:a libopus -b:a 48k", "inside.opus");
  r = Query(absl::StrCat("--json ", ShellQuote(clip)));
  ASSERT_EQ(r.exit_code, 0);
  auto both = JsonLines(r.output);
  ASSERT_EQ(both.size(), 1u);
  std::vector<std::string> datasets;
  for (const auto& m : both[0]["matches"]) datasets.push_back(m["dataset"]);
  std::sort(datasets.begin(), datasets.end());
  EXPECT_EQ(datasets, (std::vector<std::string>{"clips", "music"})) << both[0].dump();
  r = Query(absl::StrCat("--json --dataset clips ", ShellQuote(clip)));
  auto only = JsonLines(r.output);
  ASSERT_EQ(only.size(), 1u);
  for (const auto& m : only[0]["matches"]) EXPECT_EQ(m["dataset"], "clips");
}

// Pink noise 5 dB louder than the music buries the fingerprint's contrasts; the query's
// noise-reduced variant (fingerprint/noise_reduction.h) restores them. The plain fingerprint and
// its phases found none of these three clips (9 of 30 such clips of the five members, against 19
// of 30 with the variant). A non-member under the same noise stays a non-member.
TEST_F(QueryCliTest, ClipsBuriedInSteadyNoiseAreFoundAndANoisyNonMemberIsNot) {
  struct Case {
    std::string src;
    double start;
    int seed;
  };
  std::vector<Case> cases;
  for (const std::string& m : members_) {
    const std::string b = Base(m);
    if (b == "machine_wars.mp3") cases.push_back({m, 37.7, 11});
    if (b == "time_to_strike.mp3") cases.push_back({m, 37.7, 19});
    if (b == "track2.ogg") cases.push_back({m, 24.0, 26});
  }
  ASSERT_EQ(cases.size(), 3u);
  cases.push_back({nonmember_, 20.0, 31});
  std::string args = "--json";
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string clip = NoisyClip(cases[i].src, cases[i].start, 10, -5.0, cases[i].seed,
                                       absl::StrCat("noisy", i, ".wav"));
    absl::StrAppend(&args, " ", ShellQuote(clip));
  }
  CommandResult r = Query(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), cases.size());
  for (size_t i = 0; i + 1 < cases.size(); ++i) {
    const nlohmann::json& j = lines[i];
    ASSERT_TRUE(j["member"].get<bool>()) << Base(cases[i].src) << ": " << j.dump();
    const nlohmann::json& top = j["matches"][0];
    EXPECT_EQ(top["track_id"], Base(cases[i].src)) << j.dump();
    EXPECT_NEAR(top["ref_start"].get<double>() - top["query_start"].get<double>(), cases[i].start,
                0.5)
        << j.dump();
  }
  EXPECT_FALSE(lines.back()["member"].get<bool>()) << lines.back().dump();
}

TEST_F(QueryCliTest, BadInputsAreReportedAndTheRunGoesOn) {
  const std::string good = Clip(members_[1], 30, 10, "", "good.wav");
  const std::string text = dir_->File("notes.txt");
  ASSERT_EQ(RunCommand(absl::StrCat("echo 'not audio at all' > ", ShellQuote(text))).exit_code, 0);
  CommandResult r = Query(absl::StrCat("--json /nonexistent/x.mp3 ", ShellQuote(text), " ",
                                       ShellQuote(good), " 2>/dev/null"));
  EXPECT_EQ(r.exit_code, 1);
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), 3u);
  for (int i : {0, 1}) {
    EXPECT_FALSE(lines[i]["error"].is_null());
    EXPECT_FALSE(lines[i]["member"].get<bool>()) << lines[i].dump();
    EXPECT_NE(lines[i]["error"].get<std::string>().find(i == 0 ? "/nonexistent/x.mp3" : text),
              std::string::npos);
  }
  EXPECT_TRUE(lines[2]["member"].get<bool>());

  // Human-readable: the error names the file on stderr.
  r = Query("/nonexistent/y.ogg 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("/nonexistent/y.ogg"), std::string::npos);
  // A malformed fingerprint string is an error for that input.
  r = Query("--json --fingerprint not-a-fingerprint 2>/dev/null");
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(JsonLines(r.output).size(), 1u);
  // No catalogue, no inputs: usage-level failures.
  r = RunCommand(absl::StrCat(TRAINSPOTTER_BIN, " query --catalog ", dir_->File("nocat"), " ",
                              ShellQuote(good), " 2>&1"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("nocat"), std::string::npos);
  r = Query("2>&1");
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(QueryCliTest, FingerprintStringQueryMatchesLikeTheFile) {
  const std::string clip = Clip(members_[2], 50, 12, "-c:a aac -b:a 96k", "fp.m4a");
  CommandResult fp =
      RunCommand(absl::StrCat(TRAINSPOTTER_BIN, " fingerprint --length 0 ", ShellQuote(clip)));
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  const size_t at = fp.output.find("FINGERPRINT=");
  ASSERT_NE(at, std::string::npos);
  std::string encoded = fp.output.substr(at + 12);
  encoded = encoded.substr(0, encoded.find('\n'));
  CommandResult r = Query(absl::StrCat("--json --fingerprint ", encoded));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(lines[0]["member"].get<bool>()) << lines[0].dump();
  EXPECT_EQ(lines[0]["matches"][0]["track_id"], Base(members_[2]));
}

}  // namespace
}  // namespace trainspotter
