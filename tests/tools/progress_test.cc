#include "tools/progress.h"

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace trainspotter::cli {
namespace {

TEST(ProgressTest, FormatElapsed) {
  EXPECT_EQ(FormatElapsed(absl::Seconds(5)), "5s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(192)), "3m12s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(3725)), "1h02m");
  EXPECT_EQ(FormatElapsed(-absl::Seconds(3)), "0s");
}

TEST(ProgressTest, DescribesCountsRateAndEta) {
  Progress p(stderr, Progress::Style::kNone, "tracks");
  ProgressCounts c;
  c.total = 200;
  c.done = 0;
  absl::Time t0 = absl::Now();
  p.Describe(c, t0);
  c.done = 100;
  c.failed = 2;
  c.audio_seconds = 7200;
  std::string s = p.Describe(c, t0 + absl::Seconds(10));
  EXPECT_NE(s.find("100/200 tracks (50.0%)"), std::string::npos) << s;
  EXPECT_NE(s.find("2 failed"), std::string::npos) << s;
  EXPECT_NE(s.find("2.0 h of audio"), std::string::npos) << s;
  EXPECT_NE(s.find("10.0 tracks/s"), std::string::npos) << s;
  EXPECT_NE(s.find("ETA 10s"), std::string::npos) << s;
}

TEST(ProgressTest, PlainLinesAndMessages) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  {
    Progress p(out, Progress::Style::kLines, "files", absl::ZeroDuration());
    ProgressCounts c;
    c.total = 3;
    c.done = 1;
    p.Update(c);  // the first plain line waits an interval
    p.Message("x.mp3: not audio");
    c.done = 3;
    p.Update(c);
    p.Finish();
  }
  std::fclose(out);
  std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("x.mp3: not audio\n"), std::string::npos) << text;
  EXPECT_NE(text.find("3/3 files (100.0%)"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no bar control codes in plain mode";
}

}  // namespace
}  // namespace trainspotter::cli
