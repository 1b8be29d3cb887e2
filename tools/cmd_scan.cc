// trainspotter scan: a rights holder's bulk scan of a folder of audio against a trainspotter
// server. Files are fingerprinted locally on all cores (whole files, so a long master matches a
// training clip cut from anywhere in it) and only fingerprints travel, over one MatchStream
// (--upload sends the audio via MatchAudio instead). Each query carries the phase and speed
// variants `trainspotter query` tries (fingerprint/query_variants.h), so a file gets the answer
// `query` would give it. One JSON line per file, in the schema of `trainspotter query --json`
// (tools/match_json.h), written once and flushed; --resume skips the files already in the report.
// A server restart mid-scan costs nothing: unanswered queries are resent after reconnecting
// (service/client.h, BulkMatcher).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "fingerprint/fingerprinter.h"
#include "fingerprint/query_variants.h"
#include "nlohmann/json.hpp"
#include "service/client.h"
#include "tools/commands.h"
#include "tools/match_json.h"
#include "tools/progress.h"

namespace trainspotter::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kScanAudioExtensions[] = {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav",
                                                ".m4a", ".aac", ".mp4", ".wma",  ".aif",  ".aiff",
                                                ".ape", ".wv",  ".mka", ".webm", ".mkv"};

constexpr const char* kScanHelpFooter = R"(
Walks PATH... (folders recursively; audio files by extension: mp3 ogg oga opus flac wav m4a
aac mp4 wma aif aiff ape wv mka webm mkv; hidden files skipped; files named directly are
always tried), fingerprints every file on --jobs cores and asks the server whether any part
of it is in a known training dataset. Only fingerprints are sent (~260 bytes per second of
audio: the fingerprint plus the phase and speed variants `query` tries, so the answers are
those of `trainspotter query`); with --upload the files themselves are sent and decoded by
the server.

Output: --out gets one JSON line per file, exactly what `trainspotter query --json` prints:
  {"file": "...", "duration": 215.4, "member": true, "error": null,
   "matches": [{"dataset": "fma", "version": "1", "track_id": "000123", "title": "...",
                "artist": "...", "metadata": {...}, "confidence": 0.9999,
                "false_match_probability": 1e-9, "query_start": 61.3, "query_end": 71.3,
                "ref_start": 0.0, "ref_end": 10.0}]}
A file that could not be read or matched has "error": "<CODE>: <reason>" and "member": false.
--csv writes one row per file (its best match) for spreadsheets. At the end a summary goes to
stdout: files scanned, members per dataset, unreadable files.

Interruptions: every line is written once and flushed, so after Ctrl-C, a crash or a lost
server, `--resume` continues where the report stops (run it with the same PATHs). If the server
restarts mid-scan, the scan waits and reconnects (up to --retry-for) and resends what was not
answered: nothing is lost or duplicated.

The API key comes from --key, or --key-file, or the TRAINSPOTTER_API_KEY environment variable.

Exit status: 0 every file scanned; 1 some files unreadable or the scan stopped early (server
gone for longer than --retry-for, key refused); 2 usage error.

Examples:
  trainspotter scan --server scan.example.org:443 --tls --key-file ~/.ts-key \
      --out catalogue-scan.jsonl --csv catalogue-scan.csv ~/Music/masters
  trainspotter scan --server 127.0.0.1:50051 --resume --out scan.jsonl ~/Music/masters
)";

bool IsAudioName(const fs::path& path) {
  std::string ext = absl::AsciiStrToLower(path.extension().string());
  for (const char* audio : kScanAudioExtensions) {
    if (ext == audio) return true;
  }
  return false;
}

// Files to scan, sorted and unique. Missing paths are reported in `missing`.
std::vector<std::string> CollectFiles(const std::vector<std::string>& paths,
                                      std::vector<std::string>* missing) {
  std::set<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      missing->push_back(path);
      continue;
    }
    if (!fs::is_directory(status)) {
      files.insert(path);
      continue;
    }
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& entry = it->path();
      std::string name = entry.filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && IsAudioName(entry)) files.insert(entry.string());
    }
  }
  return {files.begin(), files.end()};
}

// Totals for the summary, over the whole report (resumed lines included).
struct Rollup {
  int64_t scanned = 0, members = 0, unreadable = 0;
  std::map<std::string, int64_t> members_by_dataset;
  std::vector<std::string> unreadable_files;

  void Add(const Json& line) {
    ++scanned;
    if (!line.value("error", Json()).is_null()) {
      ++unreadable;
      if (unreadable_files.size() < 20) unreadable_files.push_back(line.value("file", ""));
      return;
    }
    if (!line.value("member", false)) return;
    ++members;
    std::set<std::string> datasets;
    for (const Json& match : line.value("matches", Json::array())) {
      // Near misses (per-match "member": false) do not count for their dataset.
      if (match.value("member", true)) datasets.insert(match.value("dataset", ""));
    }
    for (const std::string& dataset : datasets) ++members_by_dataset[dataset];
  }
};

// The report file: each line written whole, then flushed.
class Report {
 public:
  Report(std::FILE* out, Progress* progress) : out_(out), progress_(progress) {}

  void Write(const Json& line, double audio_seconds) {
    std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace);
    text.push_back('\n');
    absl::MutexLock lock(&mu_);
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
    rollup_.Add(line);
    counts_.done++;
    if (!line.value("error", Json()).is_null()) counts_.failed++;
    counts_.audio_seconds += audio_seconds;
    progress_->Update(counts_);
  }
  void AddResumed(const Json& line) {
    absl::MutexLock lock(&mu_);
    rollup_.Add(line);
  }
  void SetTotal(int64_t total) {
    absl::MutexLock lock(&mu_);
    counts_.total = total;
    progress_->Update(counts_);
  }
  Rollup rollup() {
    absl::MutexLock lock(&mu_);
    return rollup_;
  }
  int64_t written() {
    absl::MutexLock lock(&mu_);
    return counts_.done;
  }

 private:
  std::FILE* out_;
  Progress* progress_;
  absl::Mutex mu_;
  Rollup rollup_;
  ProgressCounts counts_;
};

// Reads the lines of an existing report for --resume: the files already done. A last line cut
// short by a crash is removed from the file so appending continues cleanly.
absl::Status LoadReport(const std::string& path, std::set<std::string>* done,
                        std::vector<Json>* lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // nothing to resume
  std::string line;
  int64_t good_bytes = 0, offset = 0;
  while (std::getline(in, line)) {
    bool complete = !in.eof();
    offset += static_cast<int64_t>(line.size()) + (complete ? 1 : 0);
    if (!complete) break;  // no newline: cut short
    Json parsed = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("file")) {
      return absl::DataLossError(absl::StrCat(path, ": line at byte ", good_bytes,
                                              " is not a scan result; refusing to resume"));
    }
    good_bytes = offset;
    done->insert(parsed["file"].get<std::string>());
    lines->push_back(std::move(parsed));
  }
  in.close();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && st.st_size > good_bytes) {
    if (::truncate(path.c_str(), good_bytes) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("truncate ", path));
    }
  }
  return absl::OkStatus();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string JsonScalar(const Json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

absl::Status WriteCsv(const std::string& csv_path, const std::vector<Json>& lines) {
  std::string text =
      "file,member,duration,error,dataset,version,track_id,title,artist,confidence,"
      "false_match_probability,query_start,query_end,ref_start,ref_end,matches\n";
  for (const Json& line : lines) {
    std::vector<std::string> row = {
        JsonScalar(line.value("file", Json())), JsonScalar(line.value("member", Json())),
        JsonScalar(line.value("duration", Json())), JsonScalar(line.value("error", Json()))};
    Json matches = line.value("matches", Json::array());
    const Json best = matches.empty() ? Json::object() : matches[0];
    for (const char* key :
         {"dataset", "version", "track_id", "title", "artist", "confidence",
          "false_match_probability", "query_start", "query_end", "ref_start", "ref_end"}) {
      row.push_back(JsonScalar(best.value(key, Json())));
    }
    row.push_back(absl::StrCat(matches.size()));
    for (std::string& field : row) field = CsvField(field);
    absl::StrAppend(&text, absl::StrJoin(row, ","), "\n");
  }
  return WriteFileAtomically(csv_path, text);
}

absl::StatusOr<std::vector<Json>> ReadReportLines(const std::string& path) {
  std::set<std::string> done;
  std::vector<Json> lines;
  absl::Status status = LoadReport(path, &done, &lines);
  if (!status.ok()) return status;
  return lines;
}

bool IsFatalForScan(const absl::Status& status) {
  return absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status) ||
         absl::IsUnimplemented(status) || IsRetryable(status);
}

}  // namespace

int RunScan(int argc, char** argv) {
  CLI::App app{"Bulk-scan audio files against a trainspotter server.", "trainspotter scan"};
  app.footer(kScanHelpFooter);
  app.get_formatter()->column_width(30);

  std::string server, key, key_file, out = "scan-report.jsonl", csv, tls_ca;
  std::vector<std::string> paths, datasets;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int max_matches = 0;
  double timeout_seconds = 300, retry_for_seconds = 600;
  bool resume = false, overwrite = false, upload = false, tls = false, quiet = false;

  app.add_option("--server", server, "Server address, host:port")->required();
  app.add_option("--key", key, "API key (visible in `ps`; prefer --key-file or the env var)");
  app.add_option("--key-file", key_file, "File holding the API key")->check(CLI::ExistingFile);
  app.add_option("--jobs,-j", jobs, "Files fingerprinted (or uploaded) at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--out,-o", out, "Report, one JSON line per file ('-' = stdout)")
      ->capture_default_str();
  app.add_option("--csv", csv, "Also write a CSV summary, one row per file (best match)");
  app.add_flag("--resume", resume, "Continue an existing --out report, skipping files in it");
  app.add_flag("--overwrite", overwrite, "Replace an existing --out report");
  app.add_flag("--upload", upload, "Send the audio files (MatchAudio) instead of fingerprints");
  app.add_option("--tls-ca", tls_ca, "Use TLS, trusting this PEM CA certificate")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls", tls, "Use TLS with the system's trusted CAs");
  app.add_option("--dataset", datasets, "Only check these datasets (repeatable; default all)");
  app.add_option("--max-matches", max_matches, "Matches per file (0 = server default, 10)")
      ->check(CLI::Range(0, 100));
  app.add_option("--timeout", timeout_seconds, "Seconds the server may spend on one file")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retry-for", retry_for_seconds,
                 "Keep retrying an unreachable server this many seconds before stopping")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet,-q", quiet, "No progress display");
  app.add_option("PATH", paths, "Audio files and folders")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "trainspotter scan: %s\n", message.c_str());
    return 2;
  };
  if (!key_file.empty()) {
    absl::StatusOr<std::string> contents = ReadFile(key_file, 64 << 10);
    if (!contents.ok()) return usage(contents.status().ToString());
    key = std::string(absl::StripAsciiWhitespace(*contents));
  } else if (key.empty() && std::getenv("TRAINSPOTTER_API_KEY") != nullptr) {
    key = std::getenv("TRAINSPOTTER_API_KEY");
  }
  if (out == "-" && resume) return usage("--resume needs a report file (--out FILE)");
  if (resume && overwrite) return usage("--resume and --overwrite contradict each other");

  // The report: resume, refuse to clobber, or start fresh.
  std::set<std::string> done;
  std::vector<Json> resumed;
  std::FILE* report_file = stdout;
  if (out != "-") {
    struct stat st;
    bool exists = ::stat(out.c_str(), &st) == 0 && st.st_size > 0;
    if (exists && !resume && !overwrite) {
      return usage(absl::StrCat(out, " exists: pass --resume to continue it, or --overwrite"));
    }
    if (resume) {
      absl::Status loaded = LoadReport(out, &done, &resumed);
      if (!loaded.ok()) {
        std::fprintf(stderr, "trainspotter scan: %s\n", loaded.ToString().c_str());
        return 1;
      }
    }
    report_file = std::fopen(out.c_str(), resume ? "ab" : "wb");
    if (report_file == nullptr) {
      std::fprintf(stderr, "trainspotter scan: cannot write %s: %s\n", out.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }

  std::vector<std::string> missing;
  std::vector<std::string> files = CollectFiles(paths, &missing);
  for (const std::string& path : missing) {
    std::fprintf(stderr, "trainspotter scan: %s: no such file or folder\n", path.c_str());
  }
  std::vector<std::string> todo;
  for (const std::string& file : files) {
    if (done.count(file) == 0) todo.push_back(file);
  }

  Progress progress(stderr, Progress::StyleFor(stderr, quiet), "files");
  Report report(report_file, &progress);
  for (const Json& line : resumed) report.AddResumed(line);
  report.SetTotal(static_cast<int64_t>(todo.size()));
  if (resume) {
    progress.Message(absl::StrCat("resuming: ", resumed.size(), " files already in ", out, ", ",
                                  todo.size(), " to go"));
  }

  ClientOptions client_options;
  client_options.address = server;
  client_options.api_key = key;
  client_options.tls = tls;
  client_options.tls_ca_file = tls_ca;
  client_options.retry_for = absl::Seconds(retry_for_seconds);
  client_options.on_retry = [&](const absl::Status& error, absl::Duration wait) {
    progress.Message(absl::StrCat(
        "server: ", absl::StatusCodeToString(error.code()), ": ", error.message(), "; retrying in ",
        absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100)))));
  };
  absl::StatusOr<std::unique_ptr<TrainspotterClient>> client =
      TrainspotterClient::Connect(client_options);
  if (!client.ok()) return usage(client.status().ToString());

  // Stops the scan (key refused, server gone): the files not yet reported stay for --resume.
  absl::Mutex abort_mu;
  absl::Status abort_status;
  std::atomic<bool> aborted{false};
  auto abort = [&](const absl::Status& status) {
    absl::MutexLock lock(&abort_mu);
    if (abort_status.ok()) abort_status = status;
    aborted = true;
  };

  std::atomic<size_t> next{0};
  // --upload: the server computes the phase variants itself; the speeds are the client's call.
  const std::vector<double> upload_speeds(kQuerySpeedFactors.begin(), kQuerySpeedFactors.end());
  const absl::Duration timeout = absl::Seconds(timeout_seconds);
  std::unique_ptr<BulkMatcher> bulk;
  if (!upload) {
    bulk = std::make_unique<BulkMatcher>(
        client->get(), std::max(16, 4 * jobs),
        [&](uint64_t index, absl::StatusOr<QueryOutcome> outcome) {
          const std::string& file = todo[index];
          if (outcome.ok()) {
            report.Write(MatchResultToJson(file, outcome->duration_seconds, outcome->result),
                         outcome->duration_seconds);
          } else {
            report.Write(MatchErrorToJson(file, outcome.status()), 0);
          }
        });
  }

  auto worker = [&] {
    while (!aborted) {
      size_t index = next.fetch_add(1);
      if (index >= todo.size()) return;
      const std::string& file = todo[index];
      if (upload) {
        absl::StatusOr<QueryOutcome> outcome =
            (*client)->MatchAudioFile(file, datasets, max_matches, timeout, upload_speeds);
        if (outcome.ok()) {
          report.Write(MatchResultToJson(file, outcome->duration_seconds, outcome->result),
                       outcome->duration_seconds);
        } else if (IsFatalForScan(outcome.status()) &&
                   !absl::IsResourceExhausted(outcome.status())) {
          abort(outcome.status());
        } else {
          report.Write(MatchErrorToJson(file, outcome.status()), 0);
        }
        continue;
      }
      FingerprintOptions options;
      options.max_seconds = 0;  // whole file: a clip may come from anywhere in a long master
      RequestQueryVariants(&options);
      absl::StatusOr<FingerprintResult> fp = FingerprintFile(file, options);
      if (!fp.ok()) {
        report.Write(MatchErrorToJson(file, fp.status()), 0);
        continue;
      }
      if (fp->fingerprint.items.empty()) {
        report.Write(MatchErrorToJson(file, absl::InvalidArgumentError(
                                                "too short to fingerprint (under ~3 s of audio)")),
                     0);
        continue;
      }
      RemoteQuery query;
      query.file_name = file;
      query.fingerprint = std::move(fp->fingerprint);
      query.variants.weights = std::move(fp->weights);
      query.variants.phase = TakePhaseVariants(options, &*fp);
      query.variants.speed = TakeSpeedVariants(options, &*fp);
      query.datasets = datasets;
      query.max_matches = max_matches;
      query.timeout = timeout;
      absl::Status submitted = bulk->Submit(index, std::move(query));
      if (!submitted.ok()) abort(submitted);
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < jobs; ++i) workers.emplace_back(worker);
  for (std::thread& thread : workers) thread.join();
  if (bulk != nullptr) {
    absl::Status finished = aborted ? (bulk->Cancel(), absl::OkStatus()) : bulk->Finish();
    if (!finished.ok()) abort(finished);
    bulk.reset();
  }
  progress.Finish();
  if (report_file != stdout) std::fclose(report_file);

  // Summary.
  Rollup rollup = report.rollup();
  int64_t not_scanned = static_cast<int64_t>(todo.size()) - report.written();
  std::FILE* summary = out == "-" ? stderr : stdout;
  std::fprintf(summary, "files scanned: %lld%s\n", static_cast<long long>(rollup.scanned),
               resume ? absl::StrCat(" (", resumed.size(), " from the earlier run)").c_str() : "");
  std::fprintf(summary, "members: %lld\n", static_cast<long long>(rollup.members));
  for (const auto& [dataset, count] : rollup.members_by_dataset) {
    std::fprintf(summary, "  %s: %lld\n", dataset.c_str(), static_cast<long long>(count));
  }
  std::fprintf(summary, "unreadable: %lld\n", static_cast<long long>(rollup.unreadable));
  for (const std::string& file : rollup.unreadable_files) {
    std::fprintf(summary, "  %s\n", file.c_str());
  }
  if (!missing.empty()) {
    std::fprintf(summary, "missing paths: %zu\n", missing.size());
  }
  if (out != "-") std::fprintf(summary, "report: %s\n", out.c_str());

  if (!csv.empty()) {
    absl::StatusOr<std::vector<Json>> lines =
        out == "-" ? absl::StatusOr<std::vector<Json>>(
                         absl::FailedPreconditionError("--csv needs --out FILE"))
                   : ReadReportLines(out);
    absl::Status written = lines.ok() ? WriteCsv(csv, *lines) : lines.status();
    if (!written.ok()) {
      std::fprintf(stderr, "trainspotter scan: --csv: %s\n", written.ToString().c_str());
    } else {
      std::fprintf(summary, "csv: %s\n", csv.c_str());
    }
  }
  if (aborted) {
    std::fprintf(stderr,
                 "trainspotter scan: stopped early: %s\n  %lld files not scanned; run again "
                 "with --resume to continue\n",
                 abort_status.ToString().c_str(), static_cast<long long>(not_scanned));
    return 1;
  }
  return rollup.unreadable > 0 || !missing.empty() ? 1 : 0;
}

}  // namespace trainspotter::cli
