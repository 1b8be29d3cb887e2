// trainspotter ingest: add a training dataset's audio files or fingerprints to a catalogue.
//
// Pipeline: a feeder thread lists the inputs (folder walk or streamed manifest) into a bounded
// queue; --jobs workers hash each input, skip those already stored unchanged, and fingerprint
// the rest; the main thread is the one writer, committing results in batches (one durable
// transaction each) and only then reporting those tracks as done.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"
#include "tools/content_hash.h"
#include "tools/manifest.h"
#include "tools/progress.h"

namespace trainspotter::cli {
namespace {

constexpr const char* kAudioExtensions[] = {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav",
                                            ".m4a", ".aac", ".mp4", ".wma", ".aif", ".aiff",
                                            ".ape", ".wv",  ".mka", ".webm", ".mkv"};

constexpr const char* kIngestHelpFooter = R"(
Inputs are either audio files and folders (PATH...: folders are walked recursively for audio
files by extension -- mp3 ogg oga opus flac wav m4a aac mp4 wma aif aiff ape wv mka webm mkv;
hidden files are skipped; a track's id is its path relative to the folder given, or the file
name for a file given directly) or a manifest (--manifest: CSV with a header row, or JSON
Lines). Manifest columns:
  track_id      required, unique within the manifest
  path          audio file, relative to the manifest's folder or absolute
  fingerprint   compressed Chromaprint fingerprint as fpcalc prints it (AQAD...), instead of path
  duration      seconds of audio (required with fingerprint)
  title artist album source_url license   optional; any other column is kept as metadata

Re-running is cheap and safe: tracks stored with the same content (file bytes or fingerprint,
and metadata) are skipped; changed ones are replaced. Progress is committed every
--batch-size tracks or --batch-seconds, so an interrupted ingest (Ctrl-C, kill, power cut)
resumes where it stopped. Bad files and rows are reported one per line and skipped.

Exit status: 0 done; 1 if something failed and no track was ingested or found already stored,
if there was nothing to ingest, if the catalogue could not be opened or written, or (with
--strict) if anything failed; 2 usage error; 130 interrupted (what was committed stays).

Examples:
  # A folder of audio (decoded on all cores):
  trainspotter ingest --catalog cat --dataset fma-small --version 1.0 ~/data/fma_small
  # A manifest of precomputed fingerprints (no decoding):
  trainspotter ingest --catalog cat --dataset musiccaps --manifest musiccaps.csv
      with musiccaps.csv like:
        track_id,fingerprint,duration,title,source_url,genre
        yt-abc123,AQADtE...,10.0,"Song, live",https://youtu.be/abc123,jazz
  # JSON Lines, with a per-track record of what happened:
  trainspotter ingest --catalog cat --dataset d --manifest d.jsonl --report d-report.jsonl
      with d.jsonl lines like:
        {"track_id": "0001", "path": "audio/0001.flac", "artist": "X", "bpm": 120}
)";

// Set by SIGINT/SIGTERM: stop feeding, finish and commit what is in flight, exit 130.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void OnInterrupt(int sig) {
  g_interrupted.store(true);
  ::signal(sig, SIG_DFL);  // a second Ctrl-C kills at once
}

// A bounded multi-producer multi-consumer queue. Close() wakes everyone: Push then fails, Pop
// drains what is left and then returns nullopt.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  bool Push(T value) {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](BoundedQueue* q) { return q->closed_ || q->items_.size() < q->capacity_; }, this));
    if (closed_) return false;
    items_.push_back(std::move(value));
    return true;
  }

  // Waits up to `timeout` for an item. nullopt on timeout or once closed and empty
  // (`*finished` tells which).
  std::optional<T> Pop(absl::Duration timeout, bool* finished) {
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(+[](BoundedQueue* q) { return q->closed_ || !q->items_.empty(); }, this),
        timeout);
    *finished = closed_ && items_.empty();
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    return v;
  }

  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
  }
  // Close() and drop what is queued.
  void Abort() {
    absl::MutexLock l(&mu_);
    closed_ = true;
    items_.clear();
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<T> items_;
  bool closed_ = false;
};

struct Job {
  enum class Kind { kFile, kFingerprint, kBad };
  Kind kind = Kind::kBad;
  std::string where;  // path, or manifest:line
  std::string track_id;
  std::string path;
  std::string fingerprint;
  TrackMetadata metadata;
  absl::Status error;  // kBad
};

struct Outcome {
  enum class Kind { kIngest, kSkip, kFail, kCancelled };
  Kind kind = Kind::kFail;
  std::string where, track_id;
  std::string reason;  // kFail
  TrackInput input;    // kIngest
  std::vector<std::string> warnings;
};

// "<where>: <reason>", without repeating `where` when the reason already starts with it (the
// decoder's messages name the file).
std::string Located(const std::string& where, absl::string_view reason) {
  if (!where.empty() && absl::StartsWith(reason, where)) return std::string(reason);
  return absl::StrCat(where, ": ", reason);
}

bool IsAudioFile(const std::filesystem::path& p) {
  std::string ext = absl::AsciiStrToLower(p.extension().string());
  for (const char* e : kAudioExtensions) {
    if (ext == e) return true;
  }
  return false;
}

bool IsHidden(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Lists the audio under `roots` as jobs, sorted per root; problems become kBad jobs.
std::vector<Job> CollectFiles(const std::vector<std::string>& roots) {
  namespace fs = std::filesystem;
  std::vector<Job> jobs;
  absl::flat_hash_map<std::string, std::string> first_path;  // track_id -> path
  auto add = [&](const fs::path& file, std::string track_id) {
    Job job;
    job.where = file.string();
    job.track_id = std::move(track_id);
    auto [it, inserted] = first_path.emplace(job.track_id, job.where);
    if (!inserted) {
      job.error = absl::InvalidArgumentError(absl::StrCat(
          "duplicate track_id '", job.track_id, "' (also the id of ", it->second, ")"));
    } else {
      job.kind = Job::Kind::kFile;
      job.path = job.where;
    }
    jobs.push_back(std::move(job));
  };
  for (const std::string& root : roots) {
    std::error_code ec;
    fs::file_status st = fs::status(root, ec);
    if (ec || !fs::exists(st)) {
      Job job;
      job.where = root;
      job.error = absl::NotFoundError("no such file or folder");
      jobs.push_back(std::move(job));
      continue;
    }
    if (!fs::is_directory(st)) {
      add(fs::path(root), fs::path(root).filename().string());
      continue;
    }
    std::vector<std::pair<std::string, fs::path>> found;  // (track_id, path)
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& e = *it;
      if (IsHidden(e.path())) {
        if (e.is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!e.is_regular_file(ec) || !IsAudioFile(e.path())) continue;
      found.emplace_back(e.path().lexically_relative(root).generic_string(), e.path());
    }
    if (ec) {
      Job job;
      job.where = root;
      job.error = absl::UnavailableError(absl::StrCat("could not list the folder: ", ec.message()));
      jobs.push_back(std::move(job));
    }
    std::sort(found.begin(), found.end());
    for (auto& [id, path] : found) add(path, id);
  }
  return jobs;
}

struct IngestOptions {
  std::string catalog_dir = "./catalog";
  std::string dataset, version, description;
  std::string manifest;
  std::vector<std::string> paths;
  int jobs = 0;
  bool strict = false;
  bool narrowband_twin = true;
  bool quiet = false;
  int batch_size = 100;
  double batch_seconds = 2.0;
  std::string report;
};

class Ingest {
 public:
  Ingest(const IngestOptions& options, Catalog* catalog, Progress* progress, std::FILE* report)
      : o_(options),
        catalog_(catalog),
        progress_(progress),
        report_(report),
        jobs_(static_cast<size_t>(options.jobs) * 4 + 16),
        results_(static_cast<size_t>(options.batch_size) * 2 + 16) {}

  // Runs the pipeline over `files` (PATH mode) or `manifest` (manifest mode). Returns the
  // process exit code.
  int Run(std::vector<Job> files, std::unique_ptr<ManifestReader> manifest, int64_t total);

 private:
  void Feed(std::vector<Job> files, ManifestReader* manifest);
  void Work();
  Outcome Process(Job job);
  // Commits the pending tracks; false on a fatal error (already reported).
  bool Commit();
  void Record(const Outcome& o, const char* status, absl::string_view error = {});
  void Fail(const Outcome& o);
  void UpdateProgress();

  const IngestOptions& o_;
  Catalog* const catalog_;
  Progress* const progress_;
  std::FILE* const report_;
  BoundedQueue<Job> jobs_;
  BoundedQueue<Outcome> results_;
  std::atomic<bool> stop_{false};  // fatal error: everyone stops
  std::atomic<int> workers_left_{0};
  absl::Status feed_error_;  // set by the feeder before it closes jobs_

  std::vector<Outcome> pending_;
  absl::Time batch_start_ = absl::InfiniteFuture();
  int64_t total_ = 0, done_ = 0, ingested_ = 0, skipped_ = 0, failed_ = 0;
  double audio_seconds_ = 0;
};

void Ingest::Feed(std::vector<Job> files, ManifestReader* manifest) {
  auto stopping = [this] { return g_interrupted.load() || stop_.load(); };
  if (manifest == nullptr) {
    for (Job& job : files) {
      if (stopping() || !jobs_.Push(std::move(job))) break;
    }
  } else {
    while (!stopping()) {
      absl::StatusOr<std::optional<ManifestEntry>> entry = manifest->Next();
      if (!entry.ok()) {
        feed_error_ = entry.status();
        break;
      }
      if (!entry->has_value()) break;
      ManifestEntry& e = **entry;
      Job job;
      job.where = std::move(e.where);
      job.track_id = e.row.track_id;
      if (!e.status.ok()) {
        job.error = std::move(e.status);
      } else {
        job.metadata = std::move(e.row.metadata);
        if (!e.row.fingerprint.empty()) {
          job.kind = Job::Kind::kFingerprint;
          job.fingerprint = std::move(e.row.fingerprint);
        } else {
          job.kind = Job::Kind::kFile;
          job.path = std::move(e.row.path);
        }
      }
      if (!jobs_.Push(std::move(job))) break;
    }
  }
  jobs_.Close();
}

Outcome Ingest::Process(Job job) {
  Outcome out;
  out.where = job.where;
  out.track_id = job.track_id;
  auto fail = [&](absl::string_view reason) {
    out.kind = Outcome::Kind::kFail;
    // In PATH mode the location already is the file; a manifest row also names its track.
    bool plain = job.track_id.empty() || (job.kind == Job::Kind::kFile && job.where == job.path);
    out.reason = plain ? std::string(reason) : absl::StrCat("track '", job.track_id, "': ", reason);
    return std::move(out);
  };
  if (job.kind == Job::Kind::kBad) {
    out.kind = Outcome::Kind::kFail;
    out.reason = std::string(job.error.message());
    return out;
  }
  std::vector<uint32_t> items;
  std::string content_hash;
  if (job.kind == Job::Kind::kFingerprint) {
    absl::StatusOr<Fingerprint> fp = DecodeFingerprint(job.fingerprint);
    if (!fp.ok()) return fail(absl::StrCat("bad fingerprint: ", fp.status().message()));
    if (fp->algorithm != kChromaprintAlgorithm) {
      return fail(absl::StrCat("the fingerprint was made with Chromaprint algorithm ",
                               fp->algorithm, "; trainspotter indexes algorithm ",
                               kChromaprintAlgorithm, " (fpcalc's default)"));
    }
    if (fp->items.empty()) return fail("the fingerprint is empty");
    items = std::move(fp->items);
    content_hash = CombineContentHash(HashItems(items), HashMetadata(job.metadata, true));
  } else {
    absl::StatusOr<std::string> file_hash = HashFileContent(job.path);
    if (!file_hash.ok()) return fail(file_hash.status().message());
    content_hash = CombineContentHash(*file_hash, HashMetadata(job.metadata, false));
  }
  absl::StatusOr<bool> stored = catalog_->HasTrack(o_.dataset, job.track_id, content_hash);
  if (!stored.ok()) return fail(stored.status().message());
  if (*stored) {
    out.kind = Outcome::Kind::kSkip;
    return out;
  }
  if (job.kind == Job::Kind::kFile) {
    FingerprintOptions opts;
    opts.max_seconds = 0;  // the whole file: queries may come from anywhere in it
    opts.narrowband_twin = o_.narrowband_twin;
    opts.limits.interrupt = [this] { return g_interrupted.load() || stop_.load(); };
    absl::StatusOr<FingerprintResult> r = FingerprintFile(job.path, opts);
    if (!r.ok()) {
      if (absl::IsCancelled(r.status()) && (g_interrupted.load() || stop_.load())) {
        out.kind = Outcome::Kind::kCancelled;
        return out;
      }
      return fail(r.status().message());
    }
    if (r->fingerprint.items.empty()) {
      return fail("no fingerprint: the audio is too short or silent");
    }
    items = std::move(r->fingerprint.items);
    out.input.narrowband_items = std::move(r->narrowband_items);
    job.metadata.duration_seconds = r->fingerprint.duration_seconds;
    out.warnings = std::move(r->warnings);
  }
  out.kind = Outcome::Kind::kIngest;
  out.input.track_id = job.track_id;
  out.input.metadata = std::move(job.metadata);
  out.input.items = std::move(items);
  out.input.content_hash = std::move(content_hash);
  return out;
}

void Ingest::Work() {
  bool finished = false;
  while (!finished && !stop_.load() && !g_interrupted.load()) {
    std::optional<Job> job = jobs_.Pop(absl::Milliseconds(200), &finished);
    if (!job.has_value()) continue;
    if (!results_.Push(Process(*std::move(job)))) break;
  }
  if (workers_left_.fetch_sub(1) == 1) {
    jobs_.Abort();  // unblocks the feeder if it was waiting for room
    results_.Close();
  }
}

void Ingest::Record(const Outcome& o, const char* status, absl::string_view error) {
  if (report_ == nullptr) return;
  nlohmann::json j = {{"status", status}, {"track_id", o.track_id}, {"where", o.where}};
  if (!error.empty()) j["error"] = std::string(error);
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fprintf(report_, "%s\n", line.c_str());
}

void Ingest::Fail(const Outcome& o) {
  ++failed_;
  ++done_;
  progress_->Message(Located(o.where, o.reason));
  Record(o, "failed", o.reason);
}

bool Ingest::Commit() {
  if (pending_.empty()) return true;
  std::vector<TrackInput> inputs;
  inputs.reserve(pending_.size());
  for (Outcome& o : pending_) inputs.push_back(std::move(o.input));
  auto done = [this](const Outcome& o, const TrackInput& in) {
    ++ingested_;
    ++done_;
    audio_seconds_ += in.metadata.duration_seconds;
    Record(o, "ingested");
  };
  absl::Status st = catalog_->AddTracks(o_.dataset, inputs);
  if (st.ok()) {
    for (size_t i = 0; i < pending_.size(); ++i) done(pending_[i], inputs[i]);
  } else if (absl::IsInvalidArgument(st)) {
    // One track is refused (e.g. too short to index): find it by committing one at a time.
    for (size_t i = 0; i < pending_.size(); ++i) {
      absl::Status one = catalog_->AddTracks(o_.dataset, absl::MakeConstSpan(&inputs[i], 1));
      if (one.ok()) {
        done(pending_[i], inputs[i]);
      } else if (absl::IsInvalidArgument(one)) {
        pending_[i].reason = std::string(one.message());
        Fail(pending_[i]);
      } else {
        st = one;
        break;
      }
    }
    if (absl::IsInvalidArgument(st)) st = absl::OkStatus();
  }
  pending_.clear();
  batch_start_ = absl::InfiniteFuture();
  if (report_ != nullptr) std::fflush(report_);
  if (!st.ok()) {
    progress_->Message(absl::StrCat("ingest stopped: ", st.message()));
    return false;
  }
  return true;
}

void Ingest::UpdateProgress() {
  // The display counts tracks as soon as they are fingerprinted (the pending batch included),
  // so it moves smoothly; the summary and --report count only what is committed.
  ProgressCounts c;
  c.done = done_ + static_cast<int64_t>(pending_.size());
  c.total = total_;
  c.failed = failed_;
  c.audio_seconds = audio_seconds_;
  for (const Outcome& o : pending_) c.audio_seconds += o.input.metadata.duration_seconds;
  progress_->Update(c);
}

int Ingest::Run(std::vector<Job> files, std::unique_ptr<ManifestReader> manifest,
                int64_t total) {
  total_ = total;
  const absl::Time start = absl::Now();
  std::thread feeder(&Ingest::Feed, this, std::move(files), manifest.get());
  std::vector<std::thread> workers;
  workers_left_.store(o_.jobs);
  for (int i = 0; i < o_.jobs; ++i) workers.emplace_back(&Ingest::Work, this);

  bool fatal = false;
  bool finished = false;
  const absl::Duration batch_interval = absl::Seconds(o_.batch_seconds);
  while (!finished) {
    std::optional<Outcome> o = results_.Pop(absl::Milliseconds(200), &finished);
    if (o.has_value()) {
      for (const std::string& w : o->warnings) {
        progress_->Message(Located(o->where, absl::StrCat("warning: ", w)));
      }
      switch (o->kind) {
        case Outcome::Kind::kSkip:
          ++skipped_;
          ++done_;
          Record(*o, "skipped");
          break;
        case Outcome::Kind::kFail:
          Fail(*o);
          break;
        case Outcome::Kind::kCancelled:
          break;
        case Outcome::Kind::kIngest:
          if (pending_.empty()) batch_start_ = absl::Now();
          pending_.push_back(*std::move(o));
          break;
      }
    }
    if (static_cast<int>(pending_.size()) >= o_.batch_size ||
        absl::Now() - batch_start_ >= batch_interval || finished) {
      if (!Commit()) {
        fatal = true;
        break;
      }
    }
    UpdateProgress();
  }
  if (fatal) {
    stop_.store(true);
    jobs_.Abort();
    results_.Abort();
  }
  feeder.join();
  for (std::thread& t : workers) t.join();
  progress_->Finish();
  if (report_ != nullptr) std::fflush(report_);

  if (!feed_error_.ok()) {
    std::fprintf(stderr, "%s\n", std::string(feed_error_.message()).c_str());
    fatal = true;
  }
  const absl::Duration took = absl::Now() - start;
  const bool interrupted = g_interrupted.load();
  double secs = std::max(1e-3, absl::ToDoubleSeconds(took));
  absl::PrintF("%s%d ingested, %d skipped (unchanged), %d failed; %.1f h of audio in %s "
               "(%.1f tracks/s)\n",
               interrupted ? "interrupted: " : "", ingested_, skipped_, failed_,
               audio_seconds_ / 3600.0, FormatElapsed(took),
               static_cast<double>(ingested_ + skipped_ + failed_) / secs);
  absl::StatusOr<std::vector<DatasetInfo>> datasets = catalog_->ListDatasets();
  if (datasets.ok()) {
    for (const DatasetInfo& d : *datasets) {
      if (d.name != o_.dataset) continue;
      absl::PrintF("dataset '%s'%s now holds %d tracks, %.1f h of audio (catalogue %s)\n", d.name,
                   d.version.empty() ? "" : absl::StrCat(" ", d.version), d.tracks, d.hours,
                   o_.catalog_dir);
    }
  }
  std::fflush(stdout);
  if (fatal) return 1;
  if (interrupted) return 130;
  if (done_ == 0 && !interrupted) {
    std::fprintf(stderr, "trainspotter ingest: nothing to ingest (%s)\n",
                 o_.manifest.empty() ? "no audio files found" : "the manifest has no rows");
    return 1;
  }
  if (failed_ > 0 && (o_.strict || (ingested_ == 0 && skipped_ == 0))) return 1;
  return 0;
}

}  // namespace

int RunIngest(int argc, char** argv) {
  IngestOptions o;
  CLI::App app("Add a training dataset's audio files, or their fingerprints, to a catalogue.",
               "trainspotter ingest");
  app.add_option("--catalog", o.catalog_dir, "Catalogue directory (created if missing)")
      ->capture_default_str();
  app.add_option("--dataset", o.dataset, "Dataset name, e.g. fma-small")->required();
  app.add_option("--version", o.version, "Dataset version, e.g. 1.0");
  app.add_option("--description", o.description, "One-line description of the dataset");
  auto* manifest_opt = app.add_option("--manifest", o.manifest,
                                      "CSV (with header) or JSON Lines manifest of the tracks");
  auto* paths_opt =
      app.add_option("paths", o.paths, "Audio files and folders (walked recursively)");
  manifest_opt->excludes(paths_opt);
  paths_opt->excludes(manifest_opt);
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  o.jobs = static_cast<int>(hw);
  app.add_option("-j,--jobs", o.jobs, "Files decoded in parallel")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_flag("--strict", o.strict, "Exit 1 if any file or row failed");
  app.add_flag("!--no-narrowband-twin", o.narrowband_twin,
               "Do not index a 300-3400 Hz twin of each audio file (halves index memory; "
               "band-limited copies, e.g. telephone recordings, are then found less often)");
  app.add_option("--report", o.report,
                 "Append one JSON line per track (ingested after its commit, skipped, failed) "
                 "to this file ('-' = stdout)");
  app.add_option("--batch-size", o.batch_size, "Tracks per committed transaction")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch-seconds", o.batch_seconds, "Commit at least this often (seconds)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_flag("-q,--quiet", o.quiet, "No progress display (errors and the summary still show)");
  app.footer(kIngestHelpFooter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "trainspotter ingest: %s\nRun 'trainspotter ingest --help' for usage.\n",
                 e.what());
    return 2;
  }
  if (o.manifest.empty() && o.paths.empty()) {
    std::fprintf(stderr,
                 "trainspotter ingest: give audio files/folders or --manifest FILE\n"
                 "Run 'trainspotter ingest --help' for usage.\n");
    return 2;
  }

  // Inputs first: a bad manifest header fails before the catalogue is touched.
  std::unique_ptr<ManifestReader> manifest;
  std::vector<Job> files;
  int64_t total = 0;
  if (!o.manifest.empty()) {
    absl::StatusOr<std::unique_ptr<ManifestReader>> reader = ManifestReader::Open(o.manifest);
    if (!reader.ok()) {
      std::fprintf(stderr, "trainspotter ingest: %s\n",
                   std::string(reader.status().message()).c_str());
      return 1;
    }
    manifest = *std::move(reader);
    absl::StatusOr<int64_t> count = CountManifestRecords(o.manifest);
    total = count.ok() ? *count : 0;
  } else {
    files = CollectFiles(o.paths);
    total = static_cast<int64_t>(files.size());
  }

  Catalog::OpenOptions open;
  open.mode = Catalog::Mode::kReadWrite;
  open.build_index = false;  // ingest only writes; searching processes build their own index
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Open(o.catalog_dir, open);
  if (!catalog.ok()) {
    std::fprintf(stderr, "trainspotter ingest: %s\n",
                 std::string(catalog.status().message()).c_str());
    return 1;
  }
  absl::Status st = (*catalog)->EnsureDataset(o.dataset, o.version, o.description);
  if (!st.ok()) {
    std::fprintf(stderr, "trainspotter ingest: %s\n", std::string(st.message()).c_str());
    return 1;
  }

  std::FILE* report = nullptr;
  if (!o.report.empty()) {
    report = o.report == "-" ? stdout : std::fopen(o.report.c_str(), "a");
    if (report == nullptr) {
      std::fprintf(stderr, "trainspotter ingest: cannot open report file %s: %s\n",
                   o.report.c_str(), std::strerror(errno));
      return 1;
    }
  }

  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  Progress progress(stderr, Progress::StyleFor(stderr, o.quiet), "tracks");
  Ingest ingest(o, catalog->get(), &progress, report);
  int rc = ingest.Run(std::move(files), std::move(manifest), total);
  if (report != nullptr && report != stdout) std::fclose(report);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  return rc;
}

}  // namespace trainspotter::cli
