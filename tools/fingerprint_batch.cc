#include "tools/fingerprint_batch.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/fingerprinter.h"
#include "nlohmann/json.hpp"
#include "tools/manifest.h"
#include "tools/progress.h"

namespace trainspotter::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

absl::StatusOr<int64_t> ParseNonNegative(absl::string_view text, absl::string_view what) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v) || v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", text, "' is not a non-negative integer"));
  }
  return v;
}

// One owned manifest row, and what became of it.
struct Task {
  int64_t seq = 0;  // position among the shard's rows (output order)
  ManifestEntry entry;
};

struct Done {
  std::string record;  // one JSON line, newline included
  bool ok = false;
  bool retryable = false;
  bool warned = false;
  bool cancelled = false;
  double audio_seconds = 0;
};

std::string AbsolutePath(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

void AppendMetadata(const TrackMetadata& m, Json* j) {
  auto put = [j](const char* key, const std::string& v) {
    if (!v.empty()) (*j)[key] = v;
  };
  put("title", m.title);
  put("artist", m.artist);
  put("album", m.album);
  put("source_url", m.source_url);
  put("license", m.license);
  for (const auto& [key, value] : m.extra) {
    if (!j->contains(key)) (*j)[key] = value;
  }
}

std::string ErrorRecord(const ManifestEntry& e, absl::string_view error, bool retryable) {
  Json j;
  j["track_id"] = e.row.track_id;
  j["path"] = AbsolutePath(e.row.path);
  j["error"] = std::string(error);
  j["retryable"] = retryable;
  j["line"] = e.line;
  return Dump(j) + "\n";
}

bool Sleep(absl::Duration d, const std::function<bool()>& interrupted) {
  const absl::Time end = absl::Now() + d;
  while (absl::Now() < end) {
    if (interrupted && interrupted()) return false;
    absl::SleepFor(std::min(absl::Milliseconds(100), end - absl::Now()));
  }
  return true;
}

Done Process(const BatchOptions& o, const ManifestEntry& e) {
  Done d;
  if (!e.status.ok()) {
    d.record = ErrorRecord(e, absl::StrCat(e.where, ": ", e.status.message()), false);
    return d;
  }
  const ManifestRow& row = e.row;
  Json j;
  j["track_id"] = row.track_id;
  if (!row.path.empty()) j["path"] = AbsolutePath(row.path);

  if (!row.fingerprint.empty()) {
    // Already fingerprinted upstream: checked and passed through, so that mixed manifests work.
    absl::StatusOr<Fingerprint> fp = DecodeFingerprint(row.fingerprint);
    if (!fp.ok() || fp->items.empty()) {
      d.record = ErrorRecord(
          e, absl::StrCat("bad fingerprint: ", fp.ok() ? "empty" : fp.status().message()), false);
      return d;
    }
    j["fingerprint"] = row.fingerprint;
    j["duration"] = row.duration_seconds.value_or(0);
    d.audio_seconds = row.duration_seconds.value_or(0);
  } else {
    FingerprintOptions fo;
    fo.max_seconds = o.max_seconds;
    fo.limits.interrupt = o.interrupted;
    absl::StatusOr<FingerprintResult> r;
    for (int attempt = 0;; ++attempt) {
      if (o.per_file_timeout != absl::InfiniteDuration()) {
        fo.limits.deadline = absl::Now() + o.per_file_timeout;
      }
      r = FingerprintFile(row.path, fo);
      if (o.interrupted && o.interrupted()) {
        d.cancelled = true;
        return d;
      }
      // A deadline will likely be hit again; other transient errors get a few more tries.
      if (r.ok() || !IsRetryableFileError(r.status()) || absl::IsDeadlineExceeded(r.status()) ||
          attempt >= o.retries) {
        break;
      }
      if (!Sleep(absl::Seconds(1 << std::min(attempt, 5)), o.interrupted)) {
        d.cancelled = true;
        return d;
      }
    }
    if (!r.ok()) {
      d.retryable = IsRetryableFileError(r.status());
      d.record = ErrorRecord(e, r.status().message(), d.retryable);
      return d;
    }
    if (r->fingerprint.items.empty()) {
      d.record = ErrorRecord(e, "no fingerprint: the audio is too short or silent", false);
      return d;
    }
    absl::StatusOr<std::string> encoded = EncodeFingerprint(r->fingerprint.items);
    if (!encoded.ok()) {
      d.record = ErrorRecord(e, encoded.status().message(), false);
      return d;
    }
    for (const std::string& w : r->warnings) {
      std::fprintf(stderr, "WARNING: %s: %s\n", row.path.c_str(), w.c_str());
    }
    d.warned = !r->warnings.empty();
    // The declared duration, as ingest stores it; streams that declare none: what was decoded.
    const double duration = r->fingerprint.duration_seconds > 0 ? r->fingerprint.duration_seconds
                                                                : r->fingerprinted_seconds;
    j["fingerprint"] = *std::move(encoded);
    j["duration"] = std::round(duration * 1000) / 1000;
    d.audio_seconds = duration;
  }
  AppendMetadata(row.metadata, &j);
  d.record = Dump(j) + "\n";
  d.ok = true;
  return d;
}

std::string TempPathFor(const std::string& out) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "host");
  return absl::StrCat(out, ".tmp.", host, ".", getpid());
}

// Owns the temporary output file: removed unless Commit() succeeded.
class PartWriter {
 public:
  static absl::StatusOr<std::unique_ptr<PartWriter>> Open(const std::string& out) {
    std::string tmp = TempPathFor(out);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
    std::FILE* f = ::fdopen(fd, "wb");
    if (f == nullptr) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoToStatus(err, absl::StrCat("open ", tmp));
    }
    return std::unique_ptr<PartWriter>(new PartWriter(out, std::move(tmp), f));
  }
  ~PartWriter() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  absl::Status Write(absl::string_view record) {
    if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
      return ErrnoToStatus(errno, absl::StrCat("write ", tmp_));
    }
    bytes_ += static_cast<int64_t>(record.size());
    return absl::OkStatus();
  }

  // Flushes, fsyncs and renames the file to its final name, then fsyncs the folder.
  absl::Status Commit() {
    if (std::fflush(file_) != 0 || std::ferror(file_)) {
      return ErrnoToStatus(errno, absl::StrCat("write ", tmp_));
    }
    if (::fsync(::fileno(file_)) != 0) return ErrnoToStatus(errno, absl::StrCat("fsync ", tmp_));
    std::FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0) return ErrnoToStatus(errno, absl::StrCat("close ", tmp_));
    if (::rename(tmp_.c_str(), out_.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("rename ", tmp_, " to ", out_));
    }
    committed_ = true;
    std::filesystem::path parent = std::filesystem::path(out_).parent_path();
    return SyncPath(parent.empty() ? "." : parent.string());
  }

  int64_t bytes() const { return bytes_; }

 private:
  PartWriter(std::string out, std::string tmp, std::FILE* f)
      : out_(std::move(out)), tmp_(std::move(tmp)), file_(f) {}
  std::string out_, tmp_;
  std::FILE* file_;
  bool committed_ = false;
  int64_t bytes_ = 0;
};

// The shard's pipeline: a reader thread streams the manifest and queues the owned rows (at most
// `window` ahead of the output, so memory stays bounded), workers fingerprint them, and the
// calling thread writes the records in manifest order.
class ShardRun {
 public:
  ShardRun(const BatchOptions& o, ManifestReader* manifest, PartWriter* writer, Progress* progress,
           int64_t owned_estimate)
      : o_(o), manifest_(manifest), writer_(writer), progress_(progress) {
    counts_.total = owned_estimate;
    window_ = static_cast<size_t>(std::max(o.jobs, 1)) * 4 + 16;
  }

  absl::Status Run(BatchSummary* summary) {
    std::thread reader([this] { Read(); });
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(o_.jobs, 1); ++i) workers.emplace_back([this] { Work(); });
    absl::Status status = WriteAll(summary);
    {
      absl::MutexLock lock(&mu_);
      if (status_.ok() && !status.ok()) status_ = status;
      stop_ = true;
    }
    reader.join();
    for (std::thread& t : workers) t.join();
    absl::MutexLock lock(&mu_);
    summary->manifest_rows = rows_read_;
    return status_;
  }

 private:
  bool Stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !status_.ok(); }

  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = std::move(status);
  }

  void Read() {
    try {
      int64_t row_index = 0;
      while (true) {
        if (o_.interrupted && o_.interrupted()) {
          Fail(absl::CancelledError("interrupted"));
          return;
        }
        absl::StatusOr<std::optional<ManifestEntry>> next = manifest_->Next();
        if (!next.ok()) {
          // A read error mid-way (EIO, network file system) is worth a re-run; a malformed file
          // is reported per row by the reader and does not reach here.
          Fail(absl::UnavailableError(
              absl::StrCat("reading the manifest failed: ", next.status().message())));
          return;
        }
        absl::MutexLock lock(&mu_);
        if (!next->has_value()) {
          reader_done_ = true;
          return;
        }
        rows_read_ = row_index + 1;
        if (row_index++ % o_.shard.count != o_.shard.index) continue;
        auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return Stopping() || static_cast<size_t>(queued_ - written_) < window_;
        };
        mu_.Await(absl::Condition(&has_room));
        if (Stopping()) return;
        tasks_.push_back(Task{queued_++, **std::move(next)});
      }
    } catch (const std::bad_alloc&) {
      Fail(absl::ResourceExhaustedError("out of memory while reading the manifest"));
    }
  }

  void Work() {
    while (true) {
      Task task;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return Stopping() || !tasks_.empty() || reader_done_;
        };
        mu_.Await(absl::Condition(&ready));
        if (Stopping() || tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      try {
        Done d = Process(o_, task.entry);
        absl::MutexLock lock(&mu_);
        results_.emplace(task.seq, std::move(d));
      } catch (const std::bad_alloc&) {
        Fail(absl::ResourceExhaustedError(
            absl::StrCat("out of memory fingerprinting ", task.entry.row.path)));
        return;
      }
    }
  }

  absl::Status WriteAll(BatchSummary* summary) {
    for (int64_t seq = 0;; ++seq) {
      Done d;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !status_.ok() || results_.count(seq) > 0 || (reader_done_ && seq == queued_);
        };
        mu_.Await(absl::Condition(&ready));
        if (!status_.ok()) return status_;
        auto it = results_.find(seq);
        if (it == results_.end()) return absl::OkStatus();  // all rows written
        d = std::move(it->second);
        results_.erase(it);
      }
      if (d.cancelled) return absl::CancelledError("interrupted");
      TS_RETURN_IF_ERROR(writer_->Write(d.record));
      ++summary->owned;
      if (d.ok) {
        ++summary->fingerprinted;
        summary->audio_seconds += d.audio_seconds;
      } else {
        ++summary->failed;
        if (d.retryable) ++summary->retryable_failed;
        Json j = Json::parse(d.record, nullptr, false);
        if (j.is_object()) {
          progress_->Message(absl::StrCat("FAILED", d.retryable ? " (retryable)" : "", ": ",
                                          j.value("error", std::string())));
        }
      }
      if (d.warned) ++summary->warnings;
      counts_.done = summary->owned;
      counts_.failed = summary->failed;
      counts_.audio_seconds = summary->audio_seconds;
      progress_->Update(counts_);
      absl::MutexLock lock(&mu_);
      written_ = seq + 1;
    }
  }

  const BatchOptions& o_;
  ManifestReader* const manifest_;
  PartWriter* const writer_;
  Progress* const progress_;
  ProgressCounts counts_;
  size_t window_;

  absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rows_read_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;   // owned rows handed to tasks_
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // records written
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Done> results_ ABSL_GUARDED_BY(mu_);
};

int DefaultJobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> g_signal{0};
extern "C" void OnBatchSignal(int sig) { g_signal.store(sig); }

constexpr char kBatchDescription[] =
    "Fingerprint one shard of a manifest for a batch job (Kubernetes Indexed Job, Slurm array,\n"
    "Spark...). Shard I of N takes the manifest rows whose 0-based index % N == I, decodes them\n"
    "on --jobs cores (whole files) and writes one JSON line per row to --out: the fingerprint,\n"
    "duration and metadata, or the error. The part is written atomically, then PART.done.\n"
    "`trainspotter ingest --manifest PART` reads parts as they are.";

constexpr char kBatchFooter[] = R"(
Shard index: --shard I/N, --shard I --shard-count N, or (no --shard) from JOB_COMPLETION_INDEX
(Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (use --array=0-<N-1>) with --shard-count N.
'{shard}' in --out is replaced by the index, zero-padded (part-{shard}.jsonl -> part-07.jsonl).

Output records (manifest order):
  {"track_id": "a1", "path": "/data/a1.mp3", "fingerprint": "AQAD...", "duration": 187.2, ...}
  {"track_id": "a2", "path": "/data/a2.mp3", "error": "...", "retryable": false, "line": 3}
PART.done (JSON summary) is written last; a shard whose PART.done exists is skipped (--force).

Exit status: 0 the shard is done (files that failed are error records); 3 retryable, re-run the
shard (I/O error, out of memory or disk, SIGTERM); 4 permanent (bad arguments or manifest).

Examples:
  trainspotter fingerprint --manifest fma.csv --shard 3/64 --out parts/part-{shard}.jsonl
  JOB_COMPLETION_INDEX=3 trainspotter fingerprint --manifest fma.csv --shard-count 64 \
      --out parts/part-{shard}.jsonl
  trainspotter ingest --catalog cat --dataset fma --manifest parts/part-03.jsonl)";

}  // namespace

absl::StatusOr<ShardSpec> ResolveShard(const std::string& shard_flag, int64_t count_flag,
                                       const std::function<const char*(const char*)>& getenv) {
  ShardSpec spec;
  std::optional<int64_t> index, count;
  if (count_flag > 0) count = count_flag;
  if (!shard_flag.empty()) {
    std::vector<absl::string_view> parts = absl::StrSplit(shard_flag, '/');
    if (parts.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shard '", shard_flag, "': expected I/N or I"));
    }
    TS_ASSIGN_OR_RETURN(index, ParseNonNegative(parts[0], "--shard index"));
    if (parts.size() == 2) {
      TS_ASSIGN_OR_RETURN(int64_t n, ParseNonNegative(parts[1], "--shard count"));
      if (count.has_value() && *count != n) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--shard ", shard_flag, " and --shard-count ", *count, " disagree on the count"));
      }
      count = n;
    }
  } else {
    for (const char* var : {"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"}) {
      const char* v = getenv ? getenv(var) : nullptr;
      if (v == nullptr || *v == '\0') continue;
      TS_ASSIGN_OR_RETURN(index, ParseNonNegative(v, absl::StrCat("$", var)));
      break;
    }
    if (!index.has_value()) {
      return absl::InvalidArgumentError(
          "no shard index: pass --shard I/N, or set JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID "
          "and --shard-count N");
    }
  }
  if (!count.has_value()) {
    return absl::InvalidArgumentError("no shard count: pass --shard I/N or --shard-count N");
  }
  if (*count < 1) return absl::InvalidArgumentError("the shard count must be at least 1");
  if (*index >= *count) {
    return absl::InvalidArgumentError(absl::StrCat("shard index ", *index, " is out of range for ",
                                                   *count, " shards (0..", *count - 1, ")"));
  }
  spec.index = *index;
  spec.count = *count;
  return spec;
}

std::string ExpandShardPattern(const std::string& pattern, const ShardSpec& shard) {
  const int width = static_cast<int>(absl::StrCat(std::max<int64_t>(shard.count - 1, 0)).size());
  return absl::StrReplaceAll(pattern, {{"{shard}", absl::StrFormat("%0*d", width, shard.index)}});
}

bool IsRetryableFileError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:  // EIO and friends (common/file_util ErrnoToStatus)
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

int ExitCodeForShardError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kBatchExitPermanent;
    default:
      return kBatchExitRetryable;
  }
}

absl::StatusOr<BatchSummary> FingerprintShard(const BatchOptions& o) {
  BatchSummary summary;
  if (o.out.empty()) return absl::InvalidArgumentError("no output file (--out)");
  const std::string marker = o.out + ".done";
  std::error_code ec;
  if (!o.force && std::filesystem::exists(marker, ec) && std::filesystem::exists(o.out, ec)) {
    summary.already_done = true;
    return summary;
  }
  TS_ASSIGN_OR_RETURN(std::unique_ptr<ManifestReader> manifest, ManifestReader::Open(o.manifest));
  std::filesystem::path parent = std::filesystem::path(o.out).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create folder ", parent.string()));
  }
  // A stale marker (--force, or a part deleted by hand) must not outlive the part it describes.
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, absl::StrCat("remove ", marker));
  }
  TS_ASSIGN_OR_RETURN(std::unique_ptr<PartWriter> writer, PartWriter::Open(o.out));

  int64_t owned_estimate = 0;
  if (absl::StatusOr<int64_t> rows = CountManifestRecords(o.manifest); rows.ok()) {
    owned_estimate = *rows > o.shard.index ? (*rows - o.shard.index - 1) / o.shard.count + 1 : 0;
  }
  Progress progress(stderr, Progress::StyleFor(stderr, o.quiet), "files");
  const absl::Time start = absl::Now();
  ShardRun run(o, manifest.get(), writer.get(), &progress, owned_estimate);
  absl::Status status = run.Run(&summary);
  progress.Finish();
  TS_RETURN_IF_ERROR(status);
  TS_RETURN_IF_ERROR(writer->Commit());

  Json done;
  done["manifest"] = AbsolutePath(o.manifest);
  done["part"] = std::filesystem::path(o.out).filename().string();
  done["shard"] = o.shard.index;
  done["shard_count"] = o.shard.count;
  done["manifest_rows"] = summary.manifest_rows;
  done["records"] = summary.owned;
  done["fingerprinted"] = summary.fingerprinted;
  done["failed"] = summary.failed;
  done["retryable_failed"] = summary.retryable_failed;
  done["audio_hours"] = summary.audio_seconds / 3600;
  done["part_bytes"] = writer->bytes();
  done["seconds"] = absl::ToDoubleSeconds(absl::Now() - start);
  done["finished_at"] = absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
  TS_RETURN_IF_ERROR(WriteFileAtomically(marker, Dump(done) + "\n"));
  return summary;
}

bool IsFingerprintBatchInvocation(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") return false;
    if (a == "--manifest" || absl::StartsWith(a, "--manifest=")) return true;
  }
  return false;
}

int RunFingerprintBatch(int argc, char** argv) {
  CLI::App app(kBatchDescription, "trainspotter fingerprint --manifest");
  app.footer(kBatchFooter);
  app.get_formatter()->column_width(28);
  BatchOptions o;
  std::string shard_flag;
  int64_t shard_count = 0;
  double timeout = 0;
  o.jobs = DefaultJobs();
  app.add_option("--manifest", o.manifest, "manifest (CSV with a header, or JSON Lines)")
      ->type_name("FILE")
      ->required();
  app.add_option("--out", o.out, "the shard's part file (JSON Lines); '{shard}' = the index")
      ->type_name("PART.jsonl")
      ->required();
  app.add_option("--shard", shard_flag, "this shard: I/N, or I with --shard-count")
      ->type_name("I/N");
  app.add_option("--shard-count", shard_count, "number of shards N")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("-j,--jobs", o.jobs, "files decoded in parallel (default: all cores)")
      ->type_name("N")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("-l,--length", o.max_seconds,
                 "fingerprint only the first SECONDS of each file (0 = whole file, as ingest)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--timeout", timeout, "give up on one file after SECONDS (0 = never)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--retries", o.retries,
                 "extra attempts for a file failing with a transient error (I/O, memory)")
      ->type_name("N")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_flag("--force", o.force, "redo the shard even if PART.done exists");
  app.add_flag("-q,--quiet", o.quiet, "no progress display");
  // `--manifest --help` would otherwise read "--help" as the manifest's name.
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(app.help().c_str(), stdout);
      return kBatchExitDone;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kBatchExitPermanent;
  }
  const std::string self = "trainspotter fingerprint";
  absl::StatusOr<ShardSpec> shard = ResolveShard(shard_flag, shard_count, [](const char* name) {
    return static_cast<const char*>(std::getenv(name));
  });
  if (!shard.ok()) {
    std::fprintf(stderr, "%s: %s\n", self.c_str(), std::string(shard.status().message()).c_str());
    return kBatchExitPermanent;
  }
  o.shard = *shard;
  o.out = ExpandShardPattern(o.out, o.shard);
  if (timeout > 0 && std::isfinite(timeout)) o.per_file_timeout = absl::Seconds(timeout);
  o.interrupted = [] { return g_signal.load() != 0; };

  struct sigaction sa = {};
  sa.sa_handler = OnBatchSignal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int = {}, old_term = {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  absl::StatusOr<BatchSummary> summary;
  try {
    summary = FingerprintShard(o);
  } catch (const std::bad_alloc&) {
    summary = absl::ResourceExhaustedError("out of memory");
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  const std::string label = absl::StrCat("shard ", o.shard.index, "/", o.shard.count);
  if (const int sig = g_signal.load(); sig != 0) {
    std::fprintf(stderr, "%s: %s interrupted (%s); nothing written, re-run the shard\n",
                 self.c_str(), label.c_str(), sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return sig == SIGINT ? 130 : kBatchExitRetryable;
  }
  if (!summary.ok()) {
    const int code = ExitCodeForShardError(summary.status());
    std::fprintf(stderr, "%s: %s failed (%s): %s\n", self.c_str(), label.c_str(),
                 code == kBatchExitRetryable ? "retryable" : "permanent",
                 std::string(summary.status().message()).c_str());
    return code;
  }
  if (summary->already_done) {
    std::fprintf(stderr, "%s: %s already done (%s.done exists; --force to redo)\n", self.c_str(),
                 label.c_str(), o.out.c_str());
    return kBatchExitDone;
  }
  std::fprintf(stderr,
               "%s: %s done: %lld of %lld manifest rows, %lld fingerprinted (%.1f h of audio), "
               "%lld failed (%lld retryable) -> %s\n",
               self.c_str(), label.c_str(), static_cast<long long>(summary->owned),
               static_cast<long long>(summary->manifest_rows),
               static_cast<long long>(summary->fingerprinted), summary->audio_seconds / 3600,
               static_cast<long long>(summary->failed),
               static_cast<long long>(summary->retryable_failed), o.out.c_str());
  return kBatchExitDone;
}

}  // namespace trainspotter::cli
