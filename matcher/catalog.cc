#include "matcher/catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "matcher/catalog_store.h"

namespace trainspotter {
namespace {

constexpr char kDatabaseFile[] = "catalog.db";
constexpr char kLockFile[] = "LOCK";
// The Matcher's snapshot (Catalog::WriteIndexSnapshot): a cache, rebuilt from catalog.db.
constexpr char kSnapshotFile[] = "index.snapshot";

// The writer's lock: flock(2) on DIR/LOCK, which also records the holder's pid for the message
// the next would-be writer sees. The kernel drops the lock when the holder dies, however it dies,
// so a stale pid in the file is harmless.
class WriterLock {
 public:
  static absl::StatusOr<std::unique_ptr<WriterLock>> Acquire(const std::string& dir) {
    std::string path = absl::StrCat(dir, "/", kLockFile);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err != EWOULDBLOCK) {
        ::close(fd);
        return ErrnoToStatus(err, absl::StrCat("lock ", path));
      }
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      int64_t pid = 0;
      std::string holder = "another process";
      if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid)) {
        holder = absl::StrCat("another process (pid ", pid, ")");
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "catalogue ", dir, " is locked for writing by ", holder,
          "; only one writer at a time: wait for it to finish or stop it (readers are fine)"));
    }
    std::string pid = absl::StrCat(::getpid(), "\n");
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The pid only improves another writer's message; the lock itself is held.
    }
    return std::unique_ptr<WriterLock>(new WriterLock(fd));
  }
  ~WriterLock() { ::close(fd_); }  // closing the descriptor releases the flock
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  explicit WriterLock(int fd) : fd_(fd) {}
  int fd_;
};

class SqliteCatalog : public Catalog {
 public:
  SqliteCatalog(std::string dir, std::unique_ptr<WriterLock> lock,
                std::unique_ptr<CatalogStore> writer, std::unique_ptr<CatalogStore> reader,
                std::unique_ptr<Matcher> matcher)
      : dir_(std::move(dir)),
        lock_(std::move(lock)),
        writer_(std::move(writer)),
        reader_(std::move(reader)),
        matcher_(std::move(matcher)) {}

  // Fills the Matcher (from the index snapshot if there is one and `use_index_snapshot`, else
  // from the stored fingerprints) and reads the totals.
  absl::Status Load(bool use_index_snapshot) {
    use_index_snapshot_ = use_index_snapshot;
    int64_t tracks = 0;
    double seconds = 0;
    {
      absl::MutexLock l(&read_mu_);
      TS_RETURN_IF_ERROR(reader_->Totals(&tracks, &seconds));
    }
    num_tracks_.store(tracks);
    seconds_.store(seconds);
    if (matcher_ == nullptr) return absl::OkStatus();
    absl::MutexLock l(&read_mu_);
    bool matcher_touched = false;
    absl::Status from_snapshot = use_index_snapshot_
                                     ? LoadFromSnapshotLocked(&matcher_touched)
                                     : absl::NotFoundError("not asked to");
    if (from_snapshot.ok()) return matcher_->FinishLoading();
    // Past the snapshot itself (reading the database failed): no second load on top of it.
    if (matcher_touched) return from_snapshot;
    if (!absl::IsNotFound(from_snapshot) && !absl::IsUnimplemented(from_snapshot)) {
      // The snapshot is a cache: a damaged or outdated one costs time, never answers.
      std::fprintf(stderr, "warning: %s; indexing the catalogue's fingerprints instead\n",
                   std::string(from_snapshot.message()).c_str());
    }
    TS_ASSIGN_OR_RETURN(const int64_t items, reader_->TotalItems());
    TS_RETURN_IF_ERROR(matcher_->Reserve(items));
    // Lock order: the Matcher's lock is taken before keys_mu_ (Match calls the filter under it),
    // so keys_mu_ is never held while calling into the Matcher.
    TS_RETURN_IF_ERROR(reader_->ForEachFingerprint(
        [this](int64_t key, int64_t dataset_id, absl::Span<const uint32_t> items) -> absl::Status {
          absl::Status st = matcher_->Add(key, items);
          if (absl::IsInvalidArgument(st)) {
            // Too short to index (or refused by a stricter matcher than the one that ingested
            // it): keep serving everything else.
            num_unindexed_.fetch_add(1);
            return absl::OkStatus();
          }
          TS_RETURN_IF_ERROR(st);
          absl::MutexLock k(&keys_mu_);
          key_dataset_[key] = dataset_id;
          return absl::OkStatus();
        }));
    TS_RETURN_IF_ERROR(
        reader_->ForEachNarrowband([this](int64_t key, absl::Span<const uint32_t> items) {
          // A twin too short to index, or of a track the Matcher refused, is no loss.
          absl::Status st = matcher_->AddNarrowband(key, items);
          return absl::IsInvalidArgument(st) || absl::IsNotFound(st) ? absl::OkStatus() : st;
        }));
    return matcher_->FinishLoading();
  }

  // The Matcher from DIR/index.snapshot, then brought up to date with the database: references
  // deleted or changed since the snapshot are removed, tracks added or changed since are read
  // and added. NOT_FOUND if there is no snapshot. `*touched` tells whether the Matcher holds
  // the snapshot (errors before that leave it empty).
  absl::Status LoadFromSnapshotLocked(bool* touched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
    const std::string path = absl::StrCat(dir_, "/", kSnapshotFile);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(path);
    TS_ASSIGN_OR_RETURN(auto stamps, matcher_->ReadSnapshot(path));
    *touched = true;
    absl::flat_hash_map<int64_t, int64_t> in_snapshot(stamps.begin(), stamps.end());
    std::vector<int64_t> to_load;
    absl::flat_hash_map<int64_t, int64_t> datasets;
    TS_RETURN_IF_ERROR(reader_->ForEachTrackStamp(
        [&](int64_t key, int64_t dataset_id, int64_t stamp) -> absl::Status {
          datasets[key] = dataset_id;
          auto it = in_snapshot.find(key);
          if (it != in_snapshot.end() && it->second == stamp) {
            in_snapshot.erase(it);  // unchanged
          } else {
            to_load.push_back(key);
          }
          return absl::OkStatus();
        }));
    // What is left was deleted or changed since the snapshot.
    for (const auto& [key, stamp] : in_snapshot) TS_RETURN_IF_ERROR(matcher_->Remove(key));
    for (int64_t key : to_load) {
      TS_ASSIGN_OR_RETURN(std::optional<std::vector<uint32_t>> items, reader_->GetItems(key));
      if (!items.has_value()) continue;  // deleted meanwhile
      absl::Status st = matcher_->Add(key, *items);
      if (absl::IsInvalidArgument(st)) {
        num_unindexed_.fetch_add(1);
        datasets.erase(key);
        continue;
      }
      TS_RETURN_IF_ERROR(st);
      TS_ASSIGN_OR_RETURN(std::optional<std::vector<uint32_t>> twin,
                          reader_->GetNarrowbandItems(key));
      if (twin.has_value()) {
        st = matcher_->AddNarrowband(key, *twin);
        if (!st.ok() && !absl::IsInvalidArgument(st)) return st;
      }
    }
    absl::MutexLock k(&keys_mu_);
    key_dataset_ = std::move(datasets);
    return absl::OkStatus();
  }

  absl::Status WriteIndexSnapshot() override {
    TS_RETURN_IF_ERROR(CheckWritable());
    if (matcher_ == nullptr) {
      return absl::FailedPreconditionError("catalogue opened without an index: nothing to write");
    }
    absl::MutexLock w(&write_mu_);  // no write of ours in between: stamps match the Matcher
    absl::flat_hash_map<int64_t, int64_t> stamps;
    {
      absl::MutexLock l(&read_mu_);
      TS_RETURN_IF_ERROR(reader_->ForEachTrackStamp([&](int64_t key, int64_t, int64_t stamp) {
        stamps[key] = stamp;
        return absl::OkStatus();
      }));
    }
    return matcher_->WriteSnapshot(absl::StrCat(dir_, "/", kSnapshotFile), [&](int64_t key) {
      auto it = stamps.find(key);
      return it == stamps.end() ? int64_t{0} : it->second;
    });
  }

  absl::Status EnsureDataset(const std::string& name, const std::string& version,
                             const std::string& description) override {
    TS_RETURN_IF_ERROR(CheckWritable());
    absl::MutexLock l(&write_mu_);
    return writer_->EnsureDataset(name, version, description).status();
  }

  absl::StatusOr<bool> HasTrack(const std::string& dataset, const std::string& track_id,
                                const std::string& content_hash) const override {
    absl::MutexLock l(&read_mu_);
    TS_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                        reader_->GetContentHash(dataset, track_id));
    return stored.has_value() && *stored == content_hash;
  }

  absl::Status AddTracks(const std::string& dataset,
                         absl::Span<const TrackInput> tracks) override {
    TS_RETURN_IF_ERROR(CheckWritable());
    if (tracks.empty()) return absl::OkStatus();
    absl::MutexLock l(&write_mu_);
    TS_ASSIGN_OR_RETURN(std::optional<DatasetRow> ds, writer_->FindDataset(dataset));
    if (!ds.has_value()) {
      return absl::NotFoundError(absl::StrCat("no dataset '", dataset, "' in catalogue ", dir_));
    }
    // The Matcher is updated inside the transaction, before COMMIT, so that a track it refuses
    // (too short to index) aborts the batch instead of being stored unsearchable. Until the key
    // map below learns the new keys, Match() filters them out, so no uncommitted track is
    // ever reported.
    std::vector<int64_t> touched;
    auto index = [&](absl::Span<const PutResult> placed) -> absl::Status {
      if (matcher_ == nullptr) return absl::OkStatus();
      for (size_t i = 0; i < placed.size(); ++i) {
        touched.push_back(placed[i].key);
        absl::Status st = matcher_->Add(placed[i].key, tracks[i].items);
        if (st.ok() && !tracks[i].narrowband_items.empty()) {
          absl::Status twin = matcher_->AddNarrowband(placed[i].key, tracks[i].narrowband_items);
          if (!absl::IsInvalidArgument(twin)) st = twin;  // a too-short twin is just not indexed
        }
        if (!st.ok()) {
          return absl::Status(st.code(),
                              absl::StrCat("track '", tracks[i].track_id, "': ", st.message()));
        }
      }
      return absl::OkStatus();
    };
    absl::StatusOr<std::vector<PutResult>> placed = writer_->PutTracks(ds->id, tracks, index);
    if (!placed.ok()) {
      // Rolled back: put the Matcher back to what the database holds for the touched keys.
      for (int64_t key : touched) {
        absl::StatusOr<std::optional<std::vector<uint32_t>>> old = writer_->GetItems(key);
        if (old.ok() && old->has_value()) {
          matcher_->Add(key, **old).IgnoreError();
        } else {
          matcher_->Remove(key).IgnoreError();
        }
      }
      return placed.status();
    }
    int64_t added = 0;
    double seconds = 0;
    for (size_t i = 0; i < placed->size(); ++i) {
      const PutResult& r = (*placed)[i];
      if (!r.replaced) ++added;
      seconds += tracks[i].metadata.duration_seconds - r.old_duration_seconds;
    }
    if (matcher_ != nullptr) {
      absl::MutexLock k(&keys_mu_);
      for (const PutResult& r : *placed) key_dataset_[r.key] = ds->id;
    }
    num_tracks_.fetch_add(added);
    AddSeconds(seconds);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Delete(const std::string& dataset,
                                 const std::string& track_id) override {
    TS_RETURN_IF_ERROR(CheckWritable());
    absl::MutexLock l(&write_mu_);
    TS_ASSIGN_OR_RETURN(CatalogStore::Removed removed, writer_->Delete(dataset, track_id));
    if (matcher_ != nullptr) {
      {
        absl::MutexLock k(&keys_mu_);
        for (int64_t key : removed.keys) key_dataset_.erase(key);
      }
      for (int64_t key : removed.keys) TS_RETURN_IF_ERROR(matcher_->Remove(key));
    }
    num_tracks_.fetch_sub(static_cast<int64_t>(removed.keys.size()));
    AddSeconds(-removed.seconds);
    return static_cast<int64_t>(removed.keys.size());
  }

  absl::StatusOr<std::vector<DatasetInfo>> ListDatasets() const override {
    absl::MutexLock l(&read_mu_);
    return reader_->ListDatasets();
  }

  absl::StatusOr<TrackInfo> GetTrack(const std::string& dataset,
                                     const std::string& track_id) const override {
    absl::MutexLock l(&read_mu_);
    return reader_->GetTrack(dataset, track_id);
  }

  absl::StatusOr<CatalogMatchResult> Match(const CatalogQuery& query) const override {
    if (matcher_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("catalogue ", dir_, " was opened without a search index"));
    }
    auto wanted = std::make_shared<absl::flat_hash_set<int64_t>>();
    if (!query.datasets.empty()) {
      absl::MutexLock l(&read_mu_);
      std::vector<std::string> unknown;
      for (const std::string& name : query.datasets) {
        TS_ASSIGN_OR_RETURN(std::optional<DatasetRow> ds, reader_->FindDataset(name));
        if (ds.has_value()) {
          wanted->insert(ds->id);
        } else {
          unknown.push_back(absl::StrCat("'", name, "'"));
        }
      }
      if (!unknown.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown dataset ", absl::StrJoin(unknown, ", "), " in catalogue ", dir_));
      }
    }
    MatchQuery mq;
    mq.items = query.items;
    mq.weights = query.weights;
    mq.speed_variants = query.speed_variants;
    mq.phase_variants = query.phase_variants;
    mq.deferred_variants = query.deferred_variants;
    mq.deferred_versions = query.deferred_versions;
    mq.exhaustive = query.exhaustive;
    mq.max_matches = query.max_matches;
    mq.deadline = query.deadline;
    mq.include_non_members = query.include_non_members;
    // Always filtered: the key map holds only committed, indexed tracks.
    mq.filter = [this, wanted](int64_t key) {
      absl::ReaderMutexLock k(&keys_mu_);
      auto it = key_dataset_.find(key);
      return it != key_dataset_.end() && (wanted->empty() || wanted->contains(it->second));
    };
    TS_ASSIGN_OR_RETURN(std::vector<SegmentMatch> segments, matcher_->Match(mq));
    CatalogMatchResult result;
    absl::MutexLock l(&read_mu_);
    for (SegmentMatch& seg : segments) {
      TS_ASSIGN_OR_RETURN(std::optional<TrackInfo> track, reader_->GetTrackByKey(seg.key));
      if (!track.has_value()) continue;  // deleted since the search
      result.member = result.member || seg.member;
      result.matches.push_back(CatalogMatch{*std::move(track), seg});
    }
    return result;
  }

  int64_t num_tracks() const override { return num_tracks_.load(); }
  double hours() const override { return seconds_.load() / 3600.0; }
  int64_t num_unindexed() const override { return num_unindexed_.load(); }

  absl::Status CheckIntegrity() const override {
    absl::MutexLock l(&read_mu_);
    return reader_->CheckIntegrity();
  }

  absl::Status Compact() override {
    TS_RETURN_IF_ERROR(CheckWritable());
    TS_RETURN_IF_ERROR(CheckIntegrity());
    absl::MutexLock l(&write_mu_);
    return writer_->Vacuum();
  }

 private:
  absl::Status CheckWritable() const {
    if (writer_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("catalogue ", dir_, " is open read-only"));
    }
    return absl::OkStatus();
  }
  void AddSeconds(double delta) {
    double cur = seconds_.load();
    while (!seconds_.compare_exchange_weak(cur, cur + delta)) {
    }
  }

  const std::string dir_;
  // Destroyed in reverse: the reader closes first, then the writer checkpoints, then the lock
  // is released.
  std::unique_ptr<WriterLock> lock_;
  std::unique_ptr<CatalogStore> writer_;  // null when read-only; used under write_mu_
  mutable absl::Mutex read_mu_;
  std::unique_ptr<CatalogStore> reader_;  // used under read_mu_
  mutable absl::Mutex write_mu_;
  std::unique_ptr<Matcher> matcher_;  // null without an index; thread-safe itself

  // Committed, indexed key -> dataset id (for dataset filters and hiding uncommitted keys).
  mutable absl::Mutex keys_mu_;
  absl::flat_hash_map<int64_t, int64_t> key_dataset_;

  std::atomic<int64_t> num_tracks_{0};
  std::atomic<double> seconds_{0};
  std::atomic<int64_t> num_unindexed_{0};
  bool use_index_snapshot_ = true;  // set once by Load()
};

}  // namespace

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& dir, Mode mode,
                                                       const MatcherOptions& options) {
  OpenOptions o;
  o.mode = mode;
  o.matcher = options;
  return Open(dir, o);
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& dir,
                                                       const OpenOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("catalogue directory is empty");
  const std::string db_path = absl::StrCat(dir, "/", kDatabaseFile);
  std::unique_ptr<WriterLock> lock;
  std::unique_ptr<CatalogStore> writer;
  if (options.mode == Mode::kReadWrite) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return ErrnoToStatus(ec.value(), absl::StrCat("create catalogue directory ", dir));
    }
    TS_ASSIGN_OR_RETURN(lock, WriterLock::Acquire(dir));
    TS_ASSIGN_OR_RETURN(writer, CatalogStore::Open(db_path, /*read_only=*/false));
  } else {
    std::error_code ec;
    if (!std::filesystem::exists(db_path, ec)) {
      return absl::NotFoundError(absl::StrCat(
          "no catalogue in ", dir, " (create one with 'trainspotter ingest --catalog ", dir,
          " ...')"));
    }
  }
  TS_ASSIGN_OR_RETURN(std::unique_ptr<CatalogStore> reader,
                      CatalogStore::Open(db_path, /*read_only=*/true));
  std::unique_ptr<Matcher> matcher;
  if (options.build_index) {
    auto made = options.matcher_factory ? options.matcher_factory(options.matcher)
                                        : Matcher::Create(options.matcher);
    TS_RETURN_IF_ERROR(made.status());
    matcher = *std::move(made);
  }
  auto catalog = std::make_unique<SqliteCatalog>(dir, std::move(lock), std::move(writer),
                                                 std::move(reader), std::move(matcher));
  TS_RETURN_IF_ERROR(catalog->Load(options.use_index_snapshot));
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace trainspotter
