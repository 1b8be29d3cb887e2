// Progress of a long batch job (ingest, scan) on stderr: a redrawn one-line bar on a terminal,
// plain periodic lines otherwise (logs, CI), and messages (one line each) that never tangle with
// the bar.
//
// Thread-safety: all methods may be called from any thread.
#ifndef TRAINSPOTTER_TOOLS_PROGRESS_H_
#define TRAINSPOTTER_TOOLS_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace trainspotter::cli {

struct ProgressCounts {
  int64_t done = 0;   // items finished, however they ended
  int64_t total = 0;  // items in all; 0 = unknown
  int64_t failed = 0;
  double audio_seconds = 0;  // audio processed so far
};

// "1h02m", "3m12s", "45s".
std::string FormatElapsed(absl::Duration d);

class Progress {
 public:
  enum class Style { kBar, kLines, kNone };

  // `noun` names the items ("tracks", "files"). kBar redraws at most every 100 ms; kLines prints
  // one line every `line_interval`.
  Progress(std::FILE* out, Style style, std::string noun,
           absl::Duration line_interval = absl::Seconds(10));
  // kBar if `out` is a terminal (and TERM is not "dumb"), kLines otherwise; kNone if `quiet`.
  static Style StyleFor(std::FILE* out, bool quiet);

  void Update(const ProgressCounts& counts);
  // Prints `line` (a newline is added) above the bar.
  void Message(absl::string_view line);
  // Clears the bar (the caller prints its summary next).
  void Finish();

  // "1234/20000 tracks (6.2%), 12.3 h of audio, 45.6 tracks/s, ETA 3m12s"
  std::string Describe(const ProgressCounts& counts, absl::Time now);

 private:
  void DrawLocked(const ProgressCounts& counts, absl::Time now);
  double RateLocked(const ProgressCounts& counts, absl::Time now);

  std::FILE* const out_;
  const Style style_;
  const std::string noun_;
  const absl::Duration line_interval_;
  const absl::Time start_;
  absl::Mutex mu_;
  absl::Time last_draw_ = absl::InfinitePast();
  bool bar_visible_ = false;
  ProgressCounts last_;
  // (time, done) samples of the last ~30 s, for a rate that follows the current speed.
  std::deque<std::pair<absl::Time, int64_t>> samples_;
};

}  // namespace trainspotter::cli

#endif  // TRAINSPOTTER_TOOLS_PROGRESS_H_
