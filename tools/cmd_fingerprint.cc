// `trainspotter fingerprint`: Chromaprint fingerprints of audio files, in fpcalc's output format.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fingerprint/fingerprinter.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"
#include "tools/fingerprint_batch.h"

namespace trainspotter::cli {
namespace {

constexpr char kDescription[] =
    "Print the Chromaprint fingerprint of each audio FILE, as fpcalc (Chromaprint 1.5.1) does:\n"
    "the same decoding, resampling and algorithm, so raw items are bit-identical to\n"
    "`fpcalc -raw` and the output parses the same way. Any format FFmpeg reads works,\n"
    "video containers too (their best audio stream is used). FILE '-' reads standard input.\n";

constexpr char kExamples[] = R"(Output (one file, as fpcalc):
  DURATION=187
  FINGERPRINT=AQADtEmUaEkS...
With several files, each record starts with FILE=<path> and records are separated by a blank
line; with --json each file is one JSON object per line ("file", "duration", "fingerprint",
and "warnings" or "error" when there are any). DURATION is the duration the file declares,
rounded down to whole seconds (--json: two decimals).

Examples:
  trainspotter fingerprint song.mp3                 # first 120 s, compressed fingerprint
  trainspotter fingerprint --raw --length 0 a.flac  # whole file, comma-separated raw items
  trainspotter fingerprint --json clip.m4a          # {"duration": 31.05, "fingerprint": "AQAD..."}
  trainspotter fingerprint --jobs 8 --json music/*.ogg > prints.jsonl   # bulk, on 8 cores
  ffmpeg -i talk.mkv -f wav - | trainspotter fingerprint -
  trainspotter fingerprint --manifest m.csv --shard 3/64 --out part-{shard}.jsonl  # batch shard

fpcalc's single-dash spellings (-raw, -json, -plain, -text, -length N) are accepted too.
Warnings about damaged input (still fingerprinted, as far as it decodes) go to stderr.
Exit status: 0 all files fingerprinted, 1 some file could not be, 2 usage error.)";

// fpcalc spells long options with one dash; accept those spellings as ours.
std::string TranslateFpcalcFlag(const std::string& arg) {
  static constexpr const char* kFlags[] = {"-raw", "-json", "-plain", "-text", "-length"};
  for (const char* f : kFlags) {
    if (arg == f) return std::string("-") + f;
  }
  return arg;
}

int DefaultJobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

enum class Format { kText, kJson, kPlain };

struct Settings {
  Format format = Format::kText;
  bool raw = false;
  bool multi = false;  // several files: label each record
};

std::string JsonString(const std::string& s) {
  // File names need not be UTF-8; replace invalid bytes rather than fail.
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string FingerprintText(const FingerprintResult& r, bool raw) {
  if (raw) return absl::StrJoin(r.fingerprint.items, ",");
  absl::StatusOr<std::string> encoded = EncodeFingerprint(r.fingerprint.items);
  return encoded.ok() ? *encoded : std::string();
}

// One file's stdout record (empty when it failed and the format has no error record).
std::string FormatRecord(const Settings& s, const std::string& file,
                         const absl::StatusOr<FingerprintResult>& result, bool first) {
  if (!result.ok()) {
    if (s.format == Format::kJson && s.multi) {
      return absl::StrCat("{\"file\": ", JsonString(file),
                          ", \"error\": ", JsonString(std::string(result.status().message())),
                          "}\n");
    }
    return "";
  }
  const FingerprintResult& r = *result;
  const std::string fp = FingerprintText(r, s.raw);
  switch (s.format) {
    case Format::kPlain:
      return absl::StrCat(fp, "\n");
    case Format::kJson: {
      std::string out = "{";
      if (s.multi) absl::StrAppend(&out, "\"file\": ", JsonString(file), ", ");
      absl::StrAppend(&out,
                      absl::StrFormat("\"duration\": %.2f, ", r.fingerprint.duration_seconds));
      if (s.raw) {
        absl::StrAppend(&out, "\"fingerprint\": [", fp, "]");
      } else {
        absl::StrAppend(&out, "\"fingerprint\": \"", fp, "\"");
      }
      if (!r.warnings.empty()) {
        std::vector<std::string> quoted;
        for (const std::string& w : r.warnings) quoted.push_back(JsonString(w));
        absl::StrAppend(&out, ", \"warnings\": [", absl::StrJoin(quoted, ", "), "]");
      }
      absl::StrAppend(&out, "}\n");
      return out;
    }
    case Format::kText:
    default: {
      std::string out;
      if (s.multi) {
        if (!first) out += "\n";
        absl::StrAppend(&out, "FILE=", file, "\n");
      }
      absl::StrAppend(&out, "DURATION=", static_cast<int64_t>(r.fingerprint.duration_seconds),
                      "\nFINGERPRINT=", fp, "\n");
      return out;
    }
  }
}

absl::StatusOr<FingerprintResult> FingerprintOne(const std::string& file,
                                                 FingerprintOptions options,
                                                 absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) options.limits.deadline = absl::Now() + timeout;
  if (file == "-") return FingerprintFile("/dev/stdin", options);
  return FingerprintFile(file, options);
}

// Fingerprints `files` on `jobs` threads and hands each result to `emit` in input order, as soon
// as it and all before it are done. Workers run at most `window` files ahead of the output, so
// memory stays bounded however many files there are.
template <typename Emit>
void RunInOrder(const std::vector<std::string>& files, const FingerprintOptions& options,
                absl::Duration timeout, int jobs, Emit emit) {
  const size_t n = files.size();
  jobs = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), n));
  if (jobs <= 1) {
    for (size_t i = 0; i < n; ++i) emit(i, FingerprintOne(files[i], options, timeout));
    return;
  }
  const size_t window = static_cast<size_t>(jobs) * 4 + 16;
  absl::Mutex mu;
  // A ring: file i lives in slots[i % window] from when a worker finishes it until it is emitted.
  std::vector<std::optional<absl::StatusOr<FingerprintResult>>> slots(std::min(window, n));
  size_t next_index = 0;  // next file a worker takes; guarded by mu
  size_t emitted = 0;     // files handed to emit; guarded by mu

  auto worker = [&] {
    while (true) {
      size_t i;
      {
        absl::MutexLock lock(&mu);
        auto can_take = [&] { return next_index >= n || next_index < emitted + window; };
        mu.Await(absl::Condition(&can_take));
        if (next_index >= n) return;
        i = next_index++;
      }
      absl::StatusOr<FingerprintResult> r = FingerprintOne(files[i], options, timeout);
      absl::MutexLock lock(&mu);
      slots[i % slots.size()].emplace(std::move(r));
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(jobs));
  for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);

  for (size_t i = 0; i < n; ++i) {
    std::optional<absl::StatusOr<FingerprintResult>> r;
    {
      absl::MutexLock lock(&mu);
      auto& slot = slots[i % slots.size()];
      auto ready = [&] { return slot.has_value(); };
      mu.Await(absl::Condition(&ready));
      r = std::move(slot);
      slot.reset();
    }
    emit(i, std::move(*r));
    absl::MutexLock lock(&mu);
    emitted = i + 1;
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace

int RunFingerprint(int argc, char** argv) {
  if (IsFingerprintBatchInvocation(argc, argv)) return RunFingerprintBatch(argc, argv);
  std::vector<std::string> args;
  args.reserve(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    args.push_back(i == 0 ? std::string(argv[i]) : TranslateFpcalcFlag(argv[i]));
  }
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());

  CLI::App app(kDescription, "trainspotter fingerprint");
  app.footer(kExamples);
  app.get_formatter()->column_width(26);

  bool raw = false, json = false, plain = false, text = false;
  double length = 120;
  int jobs = DefaultJobs();
  double timeout = 0;
  std::vector<std::string> files;
  app.add_flag("--raw", raw, "print raw items (comma-separated integers), not the compressed form");
  app.add_flag("--json", json, "one JSON object per file, as fpcalc -json");
  app.add_flag("--plain", plain, "print only the fingerprint, one per line");
  app.add_flag("--text", text, "KEY=VALUE lines (the default)");
  app.add_option("-l,--length", length,
                 "fingerprint only the first SECONDS of audio, as fpcalc -length (0 = whole file)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber.description(""))
      ->capture_default_str();
  app.add_option("-j,--jobs", jobs, "files fingerprinted in parallel (default: all cores)")
      ->type_name("N")
      ->check(CLI::Range(1, 1024).description(""));
  app.add_option("--timeout", timeout,
                 "give up on a file after SECONDS (it is reported as unreadable; 0 = never)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber.description(""));
  app.add_option("files", files, "audio or video files ('-' = standard input)")
      ->type_name("FILE")
      ->required();

  try {
    app.parse(static_cast<int>(cargv.size()), cargv.data());
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  if (json + plain + text > 1) {
    std::fprintf(stderr, "trainspotter fingerprint: choose one of --json, --plain, --text\n");
    return 2;
  }
  if (!std::isfinite(length)) {
    std::fprintf(stderr, "trainspotter fingerprint: --length must be a finite number\n");
    return 2;
  }

  Settings settings;
  settings.raw = raw;
  settings.format = json ? Format::kJson : plain ? Format::kPlain : Format::kText;
  settings.multi = files.size() > 1;
  FingerprintOptions options;
  options.max_seconds = length;
  const absl::Duration per_file_timeout =
      timeout > 0 && std::isfinite(timeout) ? absl::Seconds(timeout) : absl::InfiniteDuration();

  static char out_buffer[1 << 16];
  std::setvbuf(stdout, out_buffer, _IOFBF, sizeof(out_buffer));
  int exit_code = 0;
  bool first = true;
  RunInOrder(files, options, per_file_timeout, jobs,
             [&](size_t i, absl::StatusOr<FingerprintResult> result) {
               const std::string& file = files[i];
               if (!result.ok()) {
                 std::fprintf(stderr, "ERROR: %s\n",
                              std::string(result.status().message()).c_str());
                 exit_code = 1;
               } else {
                 for (const std::string& w : result->warnings) {
                   std::fprintf(stderr, "WARNING: %s: %s\n", file.c_str(), w.c_str());
                 }
               }
               std::string record = FormatRecord(settings, file, result, first);
               if (!record.empty()) {
                 std::fwrite(record.data(), 1, record.size(), stdout);
                 first = false;
               }
             });
  if (std::fflush(stdout) != 0) {
    std::fprintf(stderr, "trainspotter fingerprint: cannot write the output: %s\n",
                 std::strerror(errno));
    return 1;
  }
  return exit_code;
}

}  // namespace trainspotter::cli
