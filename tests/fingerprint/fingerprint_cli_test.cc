// `trainspotter fingerprint` run as a subprocess: output byte-identical to fpcalc 1.5.1's for one
// file, the multi-file format, order under --jobs, exit codes.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/audio_synth.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::CommandResult;
using ::trainspotter::testing::EncodeWav;
using ::trainspotter::testing::HaveProgram;
using ::trainspotter::testing::RunCommand;
using ::trainspotter::testing::ScopedTempDir;
using ::trainspotter::testing::ShellQuote;
using ::trainspotter::testing::SynthesizeMusic;
using ::trainspotter::testing::WriteBytes;

#ifndef TRAINSPOTTER_BIN
#define TRAINSPOTTER_BIN ""
#endif

CommandResult Trainspotter(const std::string& args, bool with_stderr = false) {
  return RunCommand(absl::StrCat(ShellQuote(TRAINSPOTTER_BIN), " fingerprint ", args,
                                 with_stderr ? " 2>&1" : " 2>/dev/null"));
}

class FingerprintCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(TRAINSPOTTER_BIN).empty()) GTEST_SKIP() << "built without the CLI";
    // Three different synthetic pieces: 125 s (longer than the default 120 s), 30 s, 20 s.
    int seed = 51;
    for (double seconds : {125.0, 30.0, 20.0}) {
      const std::string path = dir_.File(absl::StrCat("piece", seed, ".wav"));
      ASSERT_TRUE(
          WriteBytes(path, EncodeWav(SynthesizeMusic(seconds, 16000, 1, seed), 16000, 1)).ok());
      files_.push_back(path);
      ++seed;
    }
  }
  ScopedTempDir dir_;
  std::vector<std::string> files_;
};

TEST_F(FingerprintCliTest, OneFileOutputIsByteIdenticalToFpcalc) {
  if (!HaveProgram("fpcalc")) GTEST_SKIP() << "fpcalc not installed (libchromaprint-tools)";
  for (const std::string& file : files_) {
    for (const auto& [ours, theirs] : std::vector<std::pair<std::string, std::string>>{
             {"", ""},
             {"--raw", "-raw"},
             {"--json", "-json"},
             {"--json --raw", "-json -raw"},
             {"--plain", "-plain"},
             {"--length 0", "-length 0"},
             {"--raw --length 12.5", "-raw -length 12.5"},
             {"-raw -length 30", "-raw -length 30"},  // fpcalc's spellings work too
         }) {
      CommandResult a = Trainspotter(absl::StrCat(ours, " ", ShellQuote(file)));
      CommandResult b =
          RunCommand(absl::StrCat("fpcalc ", theirs, " ", ShellQuote(file), " 2>/dev/null"));
      EXPECT_EQ(a.exit_code, 0) << ours;
      EXPECT_FALSE(b.output.empty()) << theirs;
      EXPECT_EQ(a.output, b.output)
          << "trainspotter fingerprint " << ours << " vs fpcalc " << theirs << " on " << file;
    }
  }
}

TEST_F(FingerprintCliTest, ValidFilesGiveNoErrorsUnlikeFpcalc) {
  // fpcalc 1.5.1 prints "ERROR: Error decoding audio frame (End of file)" and exits 3 on every
  // file shorter than -length; we must not.
  CommandResult r = Trainspotter(ShellQuote(files_[2]), /*with_stderr=*/true);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(r.output, "ERROR")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "WARNING")) << r.output;
}

TEST_F(FingerprintCliTest, SeveralFilesAreLabelledAndSeparated) {
  const std::string all =
      absl::StrCat(ShellQuote(files_[0]), " ", ShellQuote(files_[1]), " ", ShellQuote(files_[2]));
  CommandResult r = Trainspotter(all);
  ASSERT_EQ(r.exit_code, 0);
  std::vector<std::string> records = absl::StrSplit(r.output, "\n\n");
  ASSERT_EQ(records.size(), 3u) << r.output;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> lines = absl::StrSplit(records[i], '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 3u) << records[i];
    EXPECT_EQ(lines[0], "FILE=" + files_[i]);
    EXPECT_TRUE(absl::StartsWith(lines[1], "DURATION=")) << lines[1];
    EXPECT_TRUE(absl::StartsWith(lines[2], "FINGERPRINT=AQ")) << lines[2];
    // Each record's fingerprint is the file's own.
    CommandResult single = Trainspotter(ShellQuote(files_[i]));
    EXPECT_TRUE(absl::StrContains(single.output, lines[2]));
  }
  CommandResult json = Trainspotter("--json " + all);
  std::vector<std::string> lines = absl::StrSplit(json.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StartsWith(lines[i], "{\"file\": \"" + files_[i] + "\", \"duration\": "))
        << lines[i];
  }
}

TEST_F(FingerprintCliTest, JobsKeepInputOrder) {
  std::string args;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& f : files_) absl::StrAppend(&args, " ", ShellQuote(f));
  }
  CommandResult one = Trainspotter("--raw --jobs 1" + args);
  CommandResult two = Trainspotter("--raw --jobs 2" + args);
  CommandResult many = Trainspotter("--raw --jobs 7" + args);
  ASSERT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.output, two.output);
  EXPECT_EQ(one.output, many.output);
}

TEST_F(FingerprintCliTest, UnreadableInputExitsOneAndOthersStillPrint) {
  const std::string missing = dir_.File("missing.mp3");
  const std::string text = dir_.File("notes.txt");
  ASSERT_TRUE(WriteBytes(text, "not audio at all\n").ok());
  CommandResult r = Trainspotter(absl::StrCat(ShellQuote(files_[1]), " ", ShellQuote(missing), " ",
                                              ShellQuote(text), " ", ShellQuote(files_[2])),
                                 /*with_stderr=*/true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.output, "FILE=" + files_[1]));
  EXPECT_TRUE(absl::StrContains(r.output, "FILE=" + files_[2]));
  EXPECT_TRUE(absl::StrContains(r.output, "ERROR: " + missing + ": No such file or directory"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "ERROR: " + text + ": ")) << r.output;

  CommandResult json =
      Trainspotter(absl::StrCat("--json ", ShellQuote(missing), " ", ShellQuote(files_[2])));
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(json.output, "{\"file\": \"" + missing + "\", \"error\": "))
      << json.output;
}

TEST_F(FingerprintCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Trainspotter("").exit_code, 2);
  EXPECT_EQ(Trainspotter("--no-such-flag " + ShellQuote(files_[0])).exit_code, 2);
  EXPECT_EQ(Trainspotter("--length -1 " + ShellQuote(files_[0])).exit_code, 2);
  EXPECT_EQ(Trainspotter("--length abc " + ShellQuote(files_[0])).exit_code, 2);
  EXPECT_EQ(Trainspotter("--jobs 0 " + ShellQuote(files_[0])).exit_code, 2);
}

TEST_F(FingerprintCliTest, HelpTeaches) {
  CommandResult r = Trainspotter("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "Examples:")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "--length")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "--jobs")) << r.output;
}

TEST_F(FingerprintCliTest, ReadsStandardInput) {
  CommandResult piped =
      RunCommand(absl::StrCat("cat ", ShellQuote(files_[1]), " | ", ShellQuote(TRAINSPOTTER_BIN),
                              " fingerprint --raw - 2>/dev/null"));
  CommandResult direct = Trainspotter("--raw " + ShellQuote(files_[1]));
  EXPECT_EQ(piped.exit_code, 0);
  // Through a pipe the duration is what the stream says (the file's header may be unreachable
  // without seeking); the items are the same.
  auto fingerprint_line = [](const std::string& out) {
    const size_t at = out.find("FINGERPRINT=");
    return at == std::string::npos ? std::string() : out.substr(at);
  };
  EXPECT_FALSE(fingerprint_line(direct.output).empty());
  EXPECT_EQ(fingerprint_line(piped.output), fingerprint_line(direct.output));
}

}  // namespace
}  // namespace trainspotter
