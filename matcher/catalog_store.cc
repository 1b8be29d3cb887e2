#include "matcher/catalog_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace trainspotter {
namespace {

// 'TSPT': marks the file as a trainspotter catalogue (PRAGMA application_id).
constexpr int32_t kApplicationId = 0x54535054;

constexpr const char* kSchema = R"sql(
CREATE TABLE datasets(
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  version     TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
-- AUTOINCREMENT: a track's id is its Matcher key, and a process holding an older snapshot of
-- the catalogue must never see a deleted track's key reused by another track.
CREATE TABLE tracks(
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  dataset_id   INTEGER NOT NULL REFERENCES datasets(id),
  track_id     TEXT NOT NULL,
  title        TEXT NOT NULL DEFAULT '',
  artist       TEXT NOT NULL DEFAULT '',
  album        TEXT NOT NULL DEFAULT '',
  source_url   TEXT NOT NULL DEFAULT '',
  license      TEXT NOT NULL DEFAULT '',
  duration     REAL NOT NULL DEFAULT 0,
  extra        TEXT NOT NULL DEFAULT '[]',
  content_hash TEXT NOT NULL DEFAULT '',
  num_items    INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  UNIQUE(dataset_id, track_id)
);
CREATE TABLE fingerprints(
  track_rowid INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
  items       BLOB NOT NULL
);
)sql";

// The narrowband twin of a fingerprint (the reference band-limited to 300-3400 Hz, as telephone
// and small-speaker recordings are). Optional per track; catalogues made before it existed get
// the table on their next writable open, and readers treat its absence as "no twins".
constexpr const char* kNarrowbandSchema = R"sql(
CREATE TABLE IF NOT EXISTS narrowband(
  track_rowid INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
  items       BLOB NOT NULL
);
)sql";
constexpr const char* kSqlPutNarrowband =
    "INSERT INTO narrowband(track_rowid, items) VALUES(?1, ?2) "
    "ON CONFLICT(track_rowid) DO UPDATE SET items = excluded.items";
constexpr const char* kSqlDeleteNarrowband = "DELETE FROM narrowband WHERE track_rowid = ?1";

// ---- SQL used more than once: prepared once per connection (see Prepare) -------------------
constexpr const char* kSqlFindDataset =
    "SELECT id, name, version, description FROM datasets WHERE name = ?1";
constexpr const char* kSqlDatasetExists = "SELECT 1 FROM datasets WHERE id = ?1";
constexpr const char* kSqlFindTrack =
    "SELECT id, duration FROM tracks WHERE dataset_id = ?1 AND track_id = ?2";
constexpr const char* kSqlInsertTrack =
    "INSERT INTO tracks(dataset_id, track_id, title, artist, album, source_url, license, "
    "duration, extra, content_hash, num_items, updated_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kSqlUpdateTrack =
    "UPDATE tracks SET title = ?3, artist = ?4, album = ?5, source_url = ?6, license = ?7, "
    "duration = ?8, extra = ?9, content_hash = ?10, num_items = ?11, updated_at = ?12 "
    "WHERE id = ?1 AND dataset_id = ?2";
constexpr const char* kSqlPutItems =
    "INSERT INTO fingerprints(track_rowid, items) VALUES(?1, ?2) "
    "ON CONFLICT(track_rowid) DO UPDATE SET items = excluded.items";
constexpr const char* kSqlContentHash =
    "SELECT t.content_hash FROM tracks t JOIN datasets d ON d.id = t.dataset_id "
    "WHERE d.name = ?1 AND t.track_id = ?2";
#define TS_TRACK_COLUMNS                                                                   \
  "SELECT d.name, d.version, t.track_id, t.title, t.artist, t.album, t.source_url, "       \
  "t.license, t.duration, t.extra, t.num_items, t.content_hash FROM tracks t JOIN datasets d " \
  "ON d.id = t.dataset_id "
constexpr const char* kSqlGetTrack = TS_TRACK_COLUMNS "WHERE d.name = ?1 AND t.track_id = ?2";
constexpr const char* kSqlGetTrackByKey = TS_TRACK_COLUMNS "WHERE t.id = ?1";
#undef TS_TRACK_COLUMNS
constexpr const char* kSqlGetItems = "SELECT items FROM fingerprints WHERE track_rowid = ?1";

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_READONLY:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Resets a cached statement when it goes out of scope, so it never holds a read snapshot open.
class StmtUse {
 public:
  explicit StmtUse(sqlite3_stmt* s) : s_(s) {}
  ~StmtUse() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

void BindText(sqlite3_stmt* s, int i, absl::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(s, i)));
}

// Items are stored as little-endian uint32; on the (usual) little-endian host that is a memcpy.
std::string EncodeItems(absl::Span<const uint32_t> items) {
  std::string out(items.size() * 4, '\0');
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (!items.empty()) std::memcpy(out.data(), items.data(), out.size());
#else
  for (size_t i = 0; i < items.size(); ++i) {
    for (int b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<char>((items[i] >> (8 * b)) & 0xff);
  }
#endif
  return out;
}

void DecodeItems(const void* blob, size_t bytes, std::vector<uint32_t>* items) {
  items->resize(bytes / 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (!items->empty()) std::memcpy(items->data(), blob, items->size() * 4);
#else
  const unsigned char* p = static_cast<const unsigned char*>(blob);
  for (size_t i = 0; i < items->size(); ++i) {
    (*items)[i] = uint32_t{p[4 * i]} | uint32_t{p[4 * i + 1]} << 8 | uint32_t{p[4 * i + 2]} << 16 |
                  uint32_t{p[4 * i + 3]} << 24;
  }
#endif
}

std::string EncodeExtra(const std::vector<std::pair<std::string, std::string>>& extra) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [k, v] : extra) j.push_back({k, v});
  // Invalid UTF-8 in a manifest must not abort an ingest: replace it rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::pair<std::string, std::string>> DecodeExtra(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const nlohmann::json& kv : j) {
    if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) {
      out.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
    }
  }
  return out;
}

// Reads the columns of TS_TRACK_COLUMNS.
TrackInfo ReadTrack(sqlite3_stmt* s) {
  TrackInfo t;
  t.dataset = ColumnText(s, 0);
  t.version = ColumnText(s, 1);
  t.track_id = ColumnText(s, 2);
  t.metadata.title = ColumnText(s, 3);
  t.metadata.artist = ColumnText(s, 4);
  t.metadata.album = ColumnText(s, 5);
  t.metadata.source_url = ColumnText(s, 6);
  t.metadata.license = ColumnText(s, 7);
  t.metadata.duration_seconds = sqlite3_column_double(s, 8);
  t.metadata.extra = DecodeExtra(ColumnText(s, 9));
  t.num_items = sqlite3_column_int64(s, 10);
  t.content_hash = ColumnText(s, 11);
  return t;
}

// True if `db_path`'s folder cannot be written and there is no DB-shm to share: the case where
// a WAL-mode database can only be read as immutable.
bool ReadOnlyMedia(const std::string& db_path) {
  std::string dir = db_path.substr(0, db_path.find_last_of('/') == std::string::npos
                                          ? 0
                                          : db_path.find_last_of('/'));
  if (dir.empty()) dir = ".";
  return ::access(dir.c_str(), W_OK) != 0 && ::access((db_path + "-shm").c_str(), F_OK) != 0;
}

// Percent-escapes what an SQLite URI filename cannot hold literally.
std::string UriEscape(const std::string& path) {
  std::string out;
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f) {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CatalogStore>> CatalogStore::Open(const std::string& path,
                                                                 bool read_only) {
  if (read_only) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return absl::NotFoundError(absl::StrCat("no catalogue database at ", path));
      }
      return ErrnoToStatus(errno, absl::StrCat("stat ", path));
    }
  }
  std::unique_ptr<CatalogStore> store(new CatalogStore(path, read_only));
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  std::string target = path;
  if (read_only && ReadOnlyMedia(path)) {
    // A WAL reader needs to create DB-shm; on read-only media (a read-only mount or folder)
    // nobody can be writing, so read the file as immutable instead of failing.
    target = absl::StrCat("file:", UriEscape(path), "?immutable=1");
    flags |= SQLITE_OPEN_URI;
  }
  int rc = sqlite3_open_v2(target.c_str(), &store->db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = store->Error("open");
    return status;
  }
  sqlite3_extended_result_codes(store->db_, 1);
  TS_RETURN_IF_ERROR(store->Init());
  return store;
}

CatalogStore::~CatalogStore() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  if (db_ != nullptr) {
    // Leave a compact file behind: fold the WAL in (skipped by SQLite if readers are active).
    if (!read_only_) sqlite3_exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
  }
}

absl::Status CatalogStore::Error(const char* what) const {
  int rc = db_ == nullptr ? SQLITE_NOMEM : sqlite3_extended_errcode(db_);
  const char* msg = db_ == nullptr ? "out of memory" : sqlite3_errmsg(db_);
  return absl::Status(CodeFor(rc), absl::StrCat("catalogue ", path_, ": ", what, ": ", msg));
}

absl::Status CatalogStore::CheckWritable() const {
  if (read_only_) {
    return absl::FailedPreconditionError(absl::StrCat("catalogue ", path_, " is open read-only"));
  }
  return absl::OkStatus();
}

absl::Status CatalogStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::Status(CodeFor(rc), absl::StrCat("catalogue ", path_, ": ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> CatalogStore::Prepare(const char* sql) {
  for (auto& [key, stmt] : statements_) {
    if (key == sql) return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return Error("prepare");
  }
  statements_.emplace_back(sql, stmt);
  return stmt;
}

absl::Status CatalogStore::Init() {
  // Another connection may hold a write lock briefly (e.g. the writer checkpointing).
  sqlite3_busy_timeout(db_, 10000);

  int64_t user_version = 0, application_id = 0;
  {
    // These read the file header: the first place a non-database file shows itself.
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      absl::Status st = Error("read header");
      sqlite3_finalize(s);
      return st;
    }
    user_version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db_, "PRAGMA application_id", -1, &s, nullptr) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      absl::Status st = Error("read header");
      sqlite3_finalize(s);
      return st;
    }
    application_id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
  }

  if (user_version != 0 && application_id != kApplicationId) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, " is an SQLite database but not a trainspotter catalogue"));
  }
  if (user_version > kCatalogFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "catalogue ", path_, " was written in format version ", user_version,
        " by a newer trainspotter; this one reads format versions up to ", kCatalogFormatVersion,
        ": upgrade trainspotter to use it"));
  }
  if (read_only_) {
    if (user_version == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " is not an initialised trainspotter catalogue"));
    }
    return absl::OkStatus();
  }

  // WAL lets readers (a running `serve`, a `query`) work while one writer ingests. The journal
  // mode is persistent; synchronous is per connection (see header for why FULL).
  TS_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
  TS_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  TS_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
  TS_RETURN_IF_ERROR(Exec("PRAGMA cache_size=-65536"));  // 64 MiB
  if (user_version == 0) {
    bool has_tables = false;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM sqlite_schema", -1, &s, nullptr) !=
            SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      absl::Status st = Error("read schema");
      sqlite3_finalize(s);
      return st;
    }
    has_tables = sqlite3_column_int64(s, 0) > 0;
    sqlite3_finalize(s);
    if (has_tables) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " is an SQLite database but not a trainspotter catalogue"));
    }
    TS_RETURN_IF_ERROR(CreateSchema());
  }
  TS_RETURN_IF_ERROR(Exec(kNarrowbandSchema));
  return absl::OkStatus();
}

absl::Status CatalogStore::CreateSchema() {
  TS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status st = Exec(kSchema);
  if (st.ok()) {
    st = Exec(absl::StrCat("PRAGMA application_id=", kApplicationId, "; PRAGMA user_version=",
                           kCatalogFormatVersion)
                  .c_str());
  }
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<DatasetRow>> CatalogStore::FindDataset(const std::string& name) {
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(kSqlFindDataset));
  StmtUse s(raw);
  BindText(raw, 1, name);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return std::optional<DatasetRow>();
  if (rc != SQLITE_ROW) return Error("find dataset");
  DatasetRow row;
  row.id = sqlite3_column_int64(raw, 0);
  row.name = ColumnText(raw, 1);
  row.version = ColumnText(raw, 2);
  row.description = ColumnText(raw, 3);
  return std::optional<DatasetRow>(std::move(row));
}

absl::StatusOr<DatasetRow> CatalogStore::EnsureDataset(const std::string& name,
                                                       const std::string& version,
                                                       const std::string& description) {
  if (name.empty()) return absl::InvalidArgumentError("dataset name is empty");
  TS_RETURN_IF_ERROR(CheckWritable());
  TS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> absl::StatusOr<DatasetRow> {
    TS_ASSIGN_OR_RETURN(std::optional<DatasetRow> found, FindDataset(name));
    int64_t now = absl::ToUnixSeconds(absl::Now());
    if (!found.has_value()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db_,
                             "INSERT INTO datasets(name, version, description, created_at, "
                             "updated_at) VALUES(?1, ?2, ?3, ?4, ?4)",
                             -1, &s, nullptr) != SQLITE_OK) {
        return Error("prepare");
      }
      BindText(s, 1, name);
      BindText(s, 2, version);
      BindText(s, 3, description);
      sqlite3_bind_int64(s, 4, now);
      int rc = sqlite3_step(s);
      sqlite3_finalize(s);
      if (rc != SQLITE_DONE) return Error("create dataset");
      return DatasetRow{sqlite3_last_insert_rowid(db_), name, version, description};
    }
    DatasetRow row = *std::move(found);
    if (!version.empty() && !row.version.empty() && version != row.version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset '", name, "' is stored as version '", row.version, "', not '", version,
          "': delete it first, or ingest the new version under another dataset name"));
    }
    bool set_version = !version.empty() && row.version.empty();
    bool set_description = !description.empty() && description != row.description;
    if (set_version || set_description) {
      if (set_version) row.version = version;
      if (set_description) row.description = description;
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(
              db_, "UPDATE datasets SET version = ?2, description = ?3, updated_at = ?4 WHERE id = ?1",
              -1, &s, nullptr) != SQLITE_OK) {
        return Error("prepare");
      }
      sqlite3_bind_int64(s, 1, row.id);
      BindText(s, 2, row.version);
      BindText(s, 3, row.description);
      sqlite3_bind_int64(s, 4, now);
      int rc = sqlite3_step(s);
      sqlite3_finalize(s);
      if (rc != SQLITE_DONE) return Error("update dataset");
    }
    return row;
  };
  absl::StatusOr<DatasetRow> result = body();
  if (!result.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return result;
  }
  absl::Status st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return result;
}

absl::StatusOr<std::vector<DatasetInfo>> CatalogStore::ListDatasets() {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT d.name, d.version, d.description, count(t.id), total(t.duration) "
                         "FROM datasets d LEFT JOIN tracks t ON t.dataset_id = d.id "
                         "GROUP BY d.id ORDER BY d.name",
                         -1, &s, nullptr) != SQLITE_OK) {
    return Error("prepare");
  }
  std::vector<DatasetInfo> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    DatasetInfo d;
    d.name = ColumnText(s, 0);
    d.version = ColumnText(s, 1);
    d.description = ColumnText(s, 2);
    d.tracks = sqlite3_column_int64(s, 3);
    d.hours = sqlite3_column_double(s, 4) / 3600.0;
    out.push_back(std::move(d));
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return Error("list datasets");
  return out;
}

absl::StatusOr<std::vector<PutResult>> CatalogStore::PutTracks(
    int64_t dataset_id, absl::Span<const TrackInput> tracks,
    const std::function<absl::Status(absl::Span<const PutResult>)>& before_commit) {
  TS_RETURN_IF_ERROR(CheckWritable());
  absl::flat_hash_set<absl::string_view> ids;
  for (const TrackInput& t : tracks) {
    if (t.track_id.empty()) return absl::InvalidArgumentError("a track has an empty track_id");
    if (t.items.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("track '", t.track_id, "' has an empty fingerprint"));
    }
    if (!ids.insert(t.track_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("track '", t.track_id, "' appears twice in one batch"));
    }
  }
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * exists, Prepare(kSqlDatasetExists));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * find, Prepare(kSqlFindTrack));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * insert, Prepare(kSqlInsertTrack));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * update, Prepare(kSqlUpdateTrack));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * put_items, Prepare(kSqlPutItems));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * put_narrowband, Prepare(kSqlPutNarrowband));
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * delete_narrowband, Prepare(kSqlDeleteNarrowband));

  TS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> absl::StatusOr<std::vector<PutResult>> {
    {
      StmtUse s(exists);
      sqlite3_bind_int64(exists, 1, dataset_id);
      int rc = sqlite3_step(exists);
      if (rc == SQLITE_DONE) {
        return absl::NotFoundError(absl::StrCat("no dataset with id ", dataset_id));
      }
      if (rc != SQLITE_ROW) return Error("find dataset");
    }
    int64_t now = absl::ToUnixSeconds(absl::Now());
    std::vector<PutResult> results;
    results.reserve(tracks.size());
    std::string blob, extra;
    for (const TrackInput& t : tracks) {
      PutResult r;
      {
        StmtUse s(find);
        sqlite3_bind_int64(find, 1, dataset_id);
        BindText(find, 2, t.track_id);
        int rc = sqlite3_step(find);
        if (rc == SQLITE_ROW) {
          r.key = sqlite3_column_int64(find, 0);
          r.old_duration_seconds = sqlite3_column_double(find, 1);
          r.replaced = true;
        } else if (rc != SQLITE_DONE) {
          return Error("find track");
        }
      }
      extra = EncodeExtra(t.metadata.extra);
      sqlite3_stmt* w = r.replaced ? update : insert;
      {
        StmtUse s(w);
        if (r.replaced) {
          sqlite3_bind_int64(w, 1, r.key);
        } else {
          BindText(w, 2, t.track_id);
        }
        sqlite3_bind_int64(w, r.replaced ? 2 : 1, dataset_id);
        BindText(w, 3, t.metadata.title);
        BindText(w, 4, t.metadata.artist);
        BindText(w, 5, t.metadata.album);
        BindText(w, 6, t.metadata.source_url);
        BindText(w, 7, t.metadata.license);
        sqlite3_bind_double(w, 8, t.metadata.duration_seconds);
        BindText(w, 9, extra);
        BindText(w, 10, t.content_hash);
        sqlite3_bind_int64(w, 11, static_cast<int64_t>(t.items.size()));
        sqlite3_bind_int64(w, 12, now);
        if (sqlite3_step(w) != SQLITE_DONE) {
          return Error(absl::StrCat("store track '", t.track_id, "'").c_str());
        }
        if (!r.replaced) r.key = sqlite3_last_insert_rowid(db_);
      }
      blob = EncodeItems(t.items);
      {
        StmtUse s(put_items);
        sqlite3_bind_int64(put_items, 1, r.key);
        sqlite3_bind_blob(put_items, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
        if (sqlite3_step(put_items) != SQLITE_DONE) {
          return Error(absl::StrCat("store fingerprint of '", t.track_id, "'").c_str());
        }
      }
      if (!t.narrowband_items.empty()) {
        blob = EncodeItems(t.narrowband_items);
        StmtUse s(put_narrowband);
        sqlite3_bind_int64(put_narrowband, 1, r.key);
        sqlite3_bind_blob(put_narrowband, 2, blob.data(), static_cast<int>(blob.size()),
                          SQLITE_STATIC);
        if (sqlite3_step(put_narrowband) != SQLITE_DONE) {
          return Error(absl::StrCat("store narrowband fingerprint of '", t.track_id, "'").c_str());
        }
      } else if (r.replaced) {
        StmtUse s(delete_narrowband);
        sqlite3_bind_int64(delete_narrowband, 1, r.key);
        if (sqlite3_step(delete_narrowband) != SQLITE_DONE) {
          return Error(absl::StrCat("replace fingerprint of '", t.track_id, "'").c_str());
        }
      }
      results.push_back(r);
    }
    if (before_commit) TS_RETURN_IF_ERROR(before_commit(results));
    return results;
  };
  absl::StatusOr<std::vector<PutResult>> results = body();
  if (!results.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return results.status();
  }
  absl::Status st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return results;
}

absl::StatusOr<std::optional<std::string>> CatalogStore::GetContentHash(
    const std::string& dataset, const std::string& track_id) {
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(kSqlContentHash));
  StmtUse s(raw);
  BindText(raw, 1, dataset);
  BindText(raw, 2, track_id);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return Error("read track");
  return std::optional<std::string>(ColumnText(raw, 0));
}

absl::StatusOr<TrackInfo> CatalogStore::GetTrack(const std::string& dataset,
                                                 const std::string& track_id) {
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(kSqlGetTrack));
  StmtUse s(raw);
  BindText(raw, 1, dataset);
  BindText(raw, 2, track_id);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(
        absl::StrCat("no track '", track_id, "' in dataset '", dataset, "'"));
  }
  if (rc != SQLITE_ROW) return Error("read track");
  return ReadTrack(raw);
}

absl::StatusOr<std::optional<TrackInfo>> CatalogStore::GetTrackByKey(int64_t key) {
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(kSqlGetTrackByKey));
  StmtUse s(raw);
  sqlite3_bind_int64(raw, 1, key);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return std::optional<TrackInfo>();
  if (rc != SQLITE_ROW) return Error("read track");
  return std::optional<TrackInfo>(ReadTrack(raw));
}

absl::StatusOr<std::optional<std::vector<uint32_t>>> CatalogStore::GetItems(int64_t key) {
  TS_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(kSqlGetItems));
  StmtUse s(raw);
  sqlite3_bind_int64(raw, 1, key);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return std::optional<std::vector<uint32_t>>();
  if (rc != SQLITE_ROW) return Error("read fingerprint");
  std::vector<uint32_t> items;
  DecodeItems(sqlite3_column_blob(raw, 0), static_cast<size_t>(sqlite3_column_bytes(raw, 0)),
              &items);
  return std::optional<std::vector<uint32_t>>(std::move(items));
}

absl::StatusOr<std::optional<std::vector<uint32_t>>> CatalogStore::GetNarrowbandItems(
    int64_t key) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT items FROM narrowband WHERE track_rowid = ?1", -1, &s,
                         nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);  // a catalogue from before twins, opened read-only
    return std::optional<std::vector<uint32_t>>();
  }
  sqlite3_bind_int64(s, 1, key);
  const int rc = sqlite3_step(s);
  std::optional<std::vector<uint32_t>> out;
  if (rc == SQLITE_ROW) {
    out.emplace();
    DecodeItems(sqlite3_column_blob(s, 0), static_cast<size_t>(sqlite3_column_bytes(s, 0)),
                &*out);
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("read narrowband fingerprint");
  return out;
}

absl::Status CatalogStore::ForEachTrackStamp(
    const std::function<absl::Status(int64_t, int64_t, int64_t)>& fn) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT id, dataset_id, num_items, updated_at, content_hash FROM tracks "
                         "ORDER BY id",
                         -1, &s, nullptr) != SQLITE_OK) {
    return Error("prepare");
  }
  int rc;
  absl::Status status;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    // FNV-1a: stable across processes and builds (absl::Hash is not).
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* p, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
      }
    };
    const int64_t num_items = sqlite3_column_int64(s, 2), updated = sqlite3_column_int64(s, 3);
    mix(&num_items, sizeof(num_items));
    mix(&updated, sizeof(updated));
    mix(sqlite3_column_blob(s, 4), static_cast<size_t>(sqlite3_column_bytes(s, 4)));
    status = fn(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), static_cast<int64_t>(h));
    if (!status.ok()) break;
  }
  if (status.ok() && rc != SQLITE_DONE) status = Error("read tracks");
  sqlite3_finalize(s);
  return status;
}

absl::Status CatalogStore::ForEachFingerprint(
    const std::function<absl::Status(int64_t, int64_t, absl::Span<const uint32_t>)>& fn) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT f.track_rowid, t.dataset_id, f.items FROM fingerprints f "
                         "JOIN tracks t ON t.id = f.track_rowid ORDER BY f.track_rowid",
                         -1, &s, nullptr) != SQLITE_OK) {
    return Error("prepare");
  }
  std::vector<uint32_t> items;
  int rc;
  absl::Status status;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    DecodeItems(sqlite3_column_blob(s, 2), static_cast<size_t>(sqlite3_column_bytes(s, 2)),
                &items);
    status = fn(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), items);
    if (!status.ok()) break;
  }
  if (status.ok() && rc != SQLITE_DONE) status = Error("read fingerprints");
  sqlite3_finalize(s);
  return status;
}

absl::Status CatalogStore::ForEachNarrowband(
    const std::function<absl::Status(int64_t, absl::Span<const uint32_t>)>& fn) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT track_rowid, items FROM narrowband ORDER BY track_rowid",
                         -1, &s, nullptr) != SQLITE_OK) {
    // A catalogue from before twins existed, opened read-only: no twins.
    sqlite3_finalize(s);
    return absl::OkStatus();
  }
  std::vector<uint32_t> items;
  int rc;
  absl::Status status;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    DecodeItems(sqlite3_column_blob(s, 1), static_cast<size_t>(sqlite3_column_bytes(s, 1)),
                &items);
    status = fn(sqlite3_column_int64(s, 0), items);
    if (!status.ok()) break;
  }
  if (status.ok() && rc != SQLITE_DONE) status = Error("read narrowband fingerprints");
  sqlite3_finalize(s);
  return status;
}

absl::StatusOr<CatalogStore::Removed> CatalogStore::Delete(const std::string& dataset,
                                                           const std::string& track_id) {
  TS_RETURN_IF_ERROR(CheckWritable());
  TS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> absl::StatusOr<Removed> {
    TS_ASSIGN_OR_RETURN(std::optional<DatasetRow> ds, FindDataset(dataset));
    if (!ds.has_value()) {
      return absl::NotFoundError(absl::StrCat("no dataset '", dataset, "' in the catalogue"));
    }
    Removed removed;
    sqlite3_stmt* s = nullptr;
    auto run = [&](const char* sql, bool collect) -> absl::Status {
      if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return Error("prepare");
      sqlite3_bind_int64(s, 1, ds->id);
      if (!track_id.empty()) BindText(s, 2, track_id);
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (collect) {
          removed.keys.push_back(sqlite3_column_int64(s, 0));
          removed.seconds += sqlite3_column_double(s, 1);
        }
      }
      sqlite3_finalize(s);
      return rc == SQLITE_DONE ? absl::OkStatus() : Error("delete");
    };
    if (!track_id.empty()) {
      TS_RETURN_IF_ERROR(run(
          "SELECT id, duration FROM tracks WHERE dataset_id = ?1 AND track_id = ?2", true));
      if (removed.keys.empty()) {
        return absl::NotFoundError(
            absl::StrCat("no track '", track_id, "' in dataset '", dataset, "'"));
      }
      TS_RETURN_IF_ERROR(run("DELETE FROM fingerprints WHERE track_rowid = (SELECT id FROM tracks "
                             "WHERE dataset_id = ?1 AND track_id = ?2)",
                             false));
      TS_RETURN_IF_ERROR(run("DELETE FROM narrowband WHERE track_rowid = (SELECT id FROM tracks "
                             "WHERE dataset_id = ?1 AND track_id = ?2)",
                             false));
      TS_RETURN_IF_ERROR(
          run("DELETE FROM tracks WHERE dataset_id = ?1 AND track_id = ?2", false));
    } else {
      TS_RETURN_IF_ERROR(run("SELECT id, duration FROM tracks WHERE dataset_id = ?1", true));
      TS_RETURN_IF_ERROR(run("DELETE FROM fingerprints WHERE track_rowid IN (SELECT id FROM "
                             "tracks WHERE dataset_id = ?1)",
                             false));
      TS_RETURN_IF_ERROR(run("DELETE FROM narrowband WHERE track_rowid IN (SELECT id FROM "
                             "tracks WHERE dataset_id = ?1)",
                             false));
      TS_RETURN_IF_ERROR(run("DELETE FROM tracks WHERE dataset_id = ?1", false));
      TS_RETURN_IF_ERROR(run("DELETE FROM datasets WHERE id = ?1", false));
    }
    return removed;
  };
  absl::StatusOr<Removed> removed = body();
  if (!removed.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return removed.status();
  }
  absl::Status st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return removed;
}

absl::Status CatalogStore::Totals(int64_t* tracks, double* seconds) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT count(*), total(duration) FROM tracks", -1, &s, nullptr) !=
          SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW) {
    absl::Status st = Error("count tracks");
    sqlite3_finalize(s);
    return st;
  }
  *tracks = sqlite3_column_int64(s, 0);
  *seconds = sqlite3_column_double(s, 1);
  sqlite3_finalize(s);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CatalogStore::TotalItems() {
  int64_t total = 0;
  // length() of a BLOB reads its size from the record header, not the fingerprint itself.
  for (const char* sql : {"SELECT total(num_items) FROM tracks",
                          "SELECT total(length(items)) / 4 FROM narrowband"}) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
      // Only the narrowband table can be missing: a catalogue from before twins, read-only.
      sqlite3_finalize(s);
      continue;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
      absl::Status st = Error("count items");
      sqlite3_finalize(s);
      return st;
    }
    total += static_cast<int64_t>(sqlite3_column_double(s, 0));
    sqlite3_finalize(s);
  }
  return total;
}

absl::Status CatalogStore::CheckIntegrity() {
  std::vector<std::string> problems;
  auto collect = [&](const char* sql, const char* what) -> absl::Status {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return Error("prepare");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::string row = ColumnText(s, 0);
      if (row != "ok") problems.push_back(absl::StrCat(what, ": ", row));
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? absl::OkStatus() : Error(what);
  };
  TS_RETURN_IF_ERROR(collect("PRAGMA integrity_check", "integrity_check"));
  TS_RETURN_IF_ERROR(collect("SELECT \"table\" || ' row ' || rowid FROM pragma_foreign_key_check",
                             "foreign key"));
  TS_RETURN_IF_ERROR(
      collect("SELECT 'track ' || t.id || ' (' || t.track_id || ') has ' || "
              "CASE WHEN f.track_rowid IS NULL THEN 'no fingerprint' "
              "ELSE 'a fingerprint of the wrong length' END "
              "FROM tracks t LEFT JOIN fingerprints f ON f.track_rowid = t.id "
              "WHERE f.track_rowid IS NULL OR length(f.items) != 4 * t.num_items",
              "consistency"));
  TS_RETURN_IF_ERROR(collect("SELECT 'fingerprint ' || track_rowid || ' has no track' "
                             "FROM fingerprints WHERE track_rowid NOT IN (SELECT id FROM tracks)",
                             "consistency"));
  if (!problems.empty()) {
    if (problems.size() > 20) problems.resize(20);
    return absl::DataLossError(
        absl::StrCat("catalogue ", path_, " is damaged: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

absl::Status CatalogStore::Vacuum() {
  TS_RETURN_IF_ERROR(CheckWritable());
  TS_RETURN_IF_ERROR(Checkpoint());
  // VACUUM rewrites the whole file (minutes for a 1M-track catalogue): only worth it when
  // deletes left at least 1% of the pages free.
  int64_t pages[2] = {0, 0};
  const char* pragmas[2] = {"PRAGMA page_count", "PRAGMA freelist_count"};
  for (int i = 0; i < 2; ++i) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, pragmas[i], -1, &s, nullptr) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      absl::Status st = Error("count pages");
      sqlite3_finalize(s);
      return st;
    }
    pages[i] = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
  }
  if (pages[1] * 100 < pages[0]) return absl::OkStatus();
  TS_RETURN_IF_ERROR(Exec("VACUUM"));
  return Checkpoint();
}

absl::Status CatalogStore::Checkpoint() {
  if (read_only_) return absl::OkStatus();
  return Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace trainspotter
