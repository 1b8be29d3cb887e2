#include "tools/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace trainspotter::cli {
namespace {

constexpr absl::Duration kBarInterval = absl::Milliseconds(100);
constexpr absl::Duration kRateWindow = absl::Seconds(30);

int TerminalWidth(std::FILE* out) {
  struct winsize ws;
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

}  // namespace

std::string FormatElapsed(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s / 60) % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

Progress::Progress(std::FILE* out, Style style, std::string noun, absl::Duration line_interval)
    : out_(out),
      style_(style),
      noun_(std::move(noun)),
      line_interval_(line_interval),
      start_(absl::Now()) {}

Progress::Style Progress::StyleFor(std::FILE* out, bool quiet) {
  if (quiet) return Style::kNone;
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  return ::isatty(::fileno(out)) && !dumb ? Style::kBar : Style::kLines;
}

double Progress::RateLocked(const ProgressCounts& counts, absl::Time now) {
  samples_.emplace_back(now, counts.done);
  while (samples_.size() > 2 && now - samples_[1].first > kRateWindow) samples_.pop_front();
  const auto& [t0, d0] = samples_.front();
  double secs = absl::ToDoubleSeconds(now - t0);
  if (secs < 1) {
    // Too early for the window: average since the start.
    secs = absl::ToDoubleSeconds(now - start_);
    return secs > 0 ? static_cast<double>(counts.done) / secs : 0;
  }
  return static_cast<double>(counts.done - d0) / secs;
}

std::string Progress::Describe(const ProgressCounts& c, absl::Time now) {
  std::string s = c.total > 0 ? absl::StrFormat("%d/%d %s (%.1f%%)", c.done, c.total, noun_,
                                                100.0 * static_cast<double>(c.done) /
                                                    static_cast<double>(c.total))
                              : absl::StrFormat("%d %s", c.done, noun_);
  if (c.failed > 0) absl::StrAppendFormat(&s, ", %d failed", c.failed);
  absl::StrAppendFormat(&s, ", %.1f h of audio", c.audio_seconds / 3600.0);
  double rate = RateLocked(c, now);
  absl::StrAppendFormat(&s, ", %.1f %s/s", rate, noun_);
  if (c.total > 0 && c.done < c.total && rate > 0) {
    absl::StrAppend(&s, ", ETA ",
                    FormatElapsed(absl::Seconds(static_cast<double>(c.total - c.done) / rate)));
  }
  if (style_ != Style::kBar) absl::StrAppend(&s, ", elapsed ", FormatElapsed(now - start_));
  return s;
}

void Progress::DrawLocked(const ProgressCounts& c, absl::Time now) {
  std::string text = Describe(c, now);
  if (style_ == Style::kLines) {
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
    return;
  }
  int width = TerminalWidth(out_);
  std::string bar;
  int bar_width = std::min(30, width - static_cast<int>(text.size()) - 4);
  if (bar_width >= 10 && c.total > 0) {
    int filled = static_cast<int>(std::lround(
        bar_width * std::min(1.0, static_cast<double>(c.done) / static_cast<double>(c.total))));
    bar = absl::StrCat("[", std::string(filled, '#'), std::string(bar_width - filled, '.'), "] ");
  }
  std::string line = absl::StrCat(bar, text);
  if (static_cast<int>(line.size()) >= width) line.resize(width - 1);
  std::fprintf(out_, "\r\033[K%s", line.c_str());
  std::fflush(out_);
  bar_visible_ = true;
}

void Progress::Update(const ProgressCounts& counts) {
  if (style_ == Style::kNone) return;
  absl::MutexLock l(&mu_);
  last_ = counts;
  absl::Time now = absl::Now();
  absl::Duration interval = style_ == Style::kBar ? kBarInterval : line_interval_;
  if (now - last_draw_ < interval) return;
  if (style_ == Style::kLines && last_draw_ == absl::InfinitePast()) {
    // The first plain line waits one interval: short runs print only their summary.
    last_draw_ = now;
    return;
  }
  last_draw_ = now;
  DrawLocked(counts, now);
}

void Progress::Message(absl::string_view line) {
  absl::MutexLock l(&mu_);
  if (bar_visible_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "%.*s\n", static_cast<int>(line.size()), line.data());
  if (bar_visible_) DrawLocked(last_, absl::Now());
  std::fflush(out_);
}

void Progress::Finish() {
  absl::MutexLock l(&mu_);
  if (bar_visible_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
    bar_visible_ = false;
  }
}

}  // namespace trainspotter::cli
