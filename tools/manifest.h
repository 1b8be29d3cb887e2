// Dataset manifests for `trainspotter ingest --manifest`: one row per track, as CSV with a header
// (RFC 4180 quoting) or JSON Lines.
//
// Columns (CSV header names / JSON keys; case-insensitive, surrounding spaces ignored):
//   track_id     required, unique within the manifest
//   path         audio file, relative to the manifest's folder or absolute
//   fingerprint  compressed Chromaprint fingerprint as fpcalc/AcoustID print it ("AQAD...")
//   duration     seconds of audio; required with `fingerprint`
//   title, artist, album, source_url, license (or licence)   optional metadata
//   anything else: kept as extra metadata (key = column name), in column order
// Each row needs `path` or `fingerprint`; with both, the fingerprint is used (no decoding).
// A row with a non-empty `error` and no `fingerprint` (a failure record written by
// `trainspotter fingerprint --manifest`) is a bad row: reported with that error, never decoded.
//
// The reader streams: it holds one record at a time (plus the set of track_ids seen, to catch
// duplicates), so manifests of millions of rows need little memory. A bad row is returned as an
// entry with an error naming the file and line; reading goes on with the next row. A `.json`
// file holding one JSON array (rather than JSON Lines) is read whole.
#ifndef TRAINSPOTTER_TOOLS_MANIFEST_H_
#define TRAINSPOTTER_TOOLS_MANIFEST_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "matcher/catalog.h"

namespace trainspotter::cli {

struct ManifestRow {
  std::string track_id;
  std::string path;         // resolved against the manifest's folder; empty if none given
  std::string fingerprint;  // compressed form; empty if none given
  std::optional<double> duration_seconds;
  TrackMetadata metadata;   // duration_seconds filled from `duration` when given
};

struct ManifestEntry {
  int64_t line = 0;   // 1-based line where the record starts (JSON array: entry number)
  std::string where;  // "<manifest>:<line>" (or "<manifest>: entry <n>"), for messages
  absl::Status status;  // not OK: the row is bad (the message says why, without `where`)
  ManifestRow row;      // valid when status is OK
};

class ManifestReader {
 public:
  enum class Format { kCsv, kJsonLines, kJsonArray };

  // Opens `path` (.csv, .jsonl/.ndjson, or .json = JSON Lines or one array) and reads the CSV
  // header. INVALID_ARGUMENT for an unknown extension, a CSV header without `track_id` or without
  // either `path` or `fingerprint`, or a repeated column; NOT_FOUND etc. if unreadable.
  static absl::StatusOr<std::unique_ptr<ManifestReader>> Open(const std::string& path);
  ~ManifestReader();
  ManifestReader(const ManifestReader&) = delete;
  ManifestReader& operator=(const ManifestReader&) = delete;

  // The next record, or nullopt at the end. A non-OK StatusOr is a fatal read error.
  absl::StatusOr<std::optional<ManifestEntry>> Next();

  Format format() const { return format_; }
  const std::string& path() const { return path_; }

 private:
  ManifestReader(std::string path, Format format, std::FILE* file);
  absl::Status ReadCsvHeader();
  // Reads one CSV record into fields; false at end of file.
  absl::StatusOr<bool> ReadCsvRecord(std::vector<std::string>* fields, int64_t* start_line,
                                     std::string* syntax_error);
  absl::StatusOr<bool> ReadLine(std::string* line);
  int GetChar();
  void Finish(ManifestEntry* entry);
  void SetField(const std::string& name, std::string value, ManifestEntry* entry);

  std::string path_;
  std::string folder_;  // manifest's folder, for relative paths
  Format format_;
  std::FILE* file_;
  std::vector<char> buffer_;
  size_t buffer_pos_ = 0, buffer_len_ = 0;
  bool eof_ = false;
  int64_t line_ = 1;  // line of the next unread character
  std::vector<std::string> columns_;  // CSV header, as written
  std::vector<std::string> entries_;  // JSON array elements, dumped (kJsonArray)
  size_t next_entry_ = 0;
  absl::flat_hash_map<std::string, int64_t> seen_;  // track_id -> line first seen
};

// Counts a manifest's records cheaply (no field parsing), for progress totals.
absl::StatusOr<int64_t> CountManifestRecords(const std::string& path);

}  // namespace trainspotter::cli

#endif  // TRAINSPOTTER_TOOLS_MANIFEST_H_
