#include "tools/manifest.h"

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace trainspotter::cli {
namespace {

constexpr size_t kBufferSize = 1 << 20;

std::string NormalizeName(absl::string_view name) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
}

absl::StatusOr<ManifestReader::Format> FormatOf(const std::string& path) {
  std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  if (ext == ".csv") return ManifestReader::Format::kCsv;
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") {
    return ManifestReader::Format::kJsonLines;  // .json may turn out to be an array (see Open)
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "manifest ", path, ": unknown format '", ext,
      "' (use .csv with a header row, or .jsonl / .json with one JSON object per line)"));
}

// A JSON value as manifest text: strings as they are, numbers and booleans as JSON writes them.
std::optional<std::string> JsonToText(const nlohmann::ordered_json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

ManifestReader::ManifestReader(std::string path, Format format, std::FILE* file)
    : path_(std::move(path)), format_(format), file_(file), buffer_(kBufferSize) {
  std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  folder_ = parent.empty() ? "." : parent.string();
}

ManifestReader::~ManifestReader() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::StatusOr<std::unique_ptr<ManifestReader>> ManifestReader::Open(const std::string& path) {
  TS_ASSIGN_OR_RETURN(Format format, FormatOf(path));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("manifest ", path, " is a directory"));
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoToStatus(errno, absl::StrCat("manifest ", path));
  std::unique_ptr<ManifestReader> reader(new ManifestReader(path, format, f));
  if (format == Format::kCsv) {
    TS_RETURN_IF_ERROR(reader->ReadCsvHeader());
    return reader;
  }
  // .json: JSON Lines unless the first non-blank character opens an array.
  int c;
  while ((c = reader->GetChar()) != EOF && absl::ascii_isspace(static_cast<unsigned char>(c))) {
  }
  if (std::ferror(f)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path));
  if (c == '[') {
    std::string text = "[";
    while ((c = reader->GetChar()) != EOF) text.push_back(static_cast<char>(c));
    if (std::ferror(f)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path));
    nlohmann::ordered_json all = nlohmann::ordered_json::parse(text, nullptr, false);
    if (all.is_discarded() || !all.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "manifest ", path, ": not valid JSON (expected an array of objects, or JSON Lines)"));
    }
    reader->format_ = Format::kJsonArray;
    for (const auto& e : all) {
      reader->entries_.push_back(
          e.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
    }
    return reader;
  }
  // Not an array: rewind and read line by line.
  std::rewind(f);
  reader->buffer_pos_ = reader->buffer_len_ = 0;
  reader->eof_ = false;
  reader->line_ = 1;
  return reader;
}

int ManifestReader::GetChar() {
  if (buffer_pos_ == buffer_len_) {
    if (eof_) return EOF;
    buffer_len_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    buffer_pos_ = 0;
    if (buffer_len_ == 0) {
      eof_ = true;
      return EOF;
    }
  }
  char c = buffer_[buffer_pos_++];
  if (c == '\n') ++line_;
  return static_cast<unsigned char>(c);
}

absl::StatusOr<bool> ManifestReader::ReadCsvRecord(std::vector<std::string>* fields,
                                                   int64_t* start_line,
                                                   std::string* syntax_error) {
  fields->clear();
  syntax_error->clear();
  int c;
  // Blank lines between records are skipped.
  do {
    c = GetChar();
  } while (c == '\n' || c == '\r');
  if (c == EOF) {
    if (std::ferror(file_)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path_));
    return false;
  }
  *start_line = line_;
  enum State { kFieldStart, kUnquoted, kQuoted, kAfterQuote } state = kFieldStart;
  std::string field;
  int64_t quote_line = 0;
  auto end_field = [&] {
    fields->push_back(std::move(field));
    field.clear();
    state = kFieldStart;
  };
  for (;; c = GetChar()) {
    if (state == kQuoted) {
      if (c == EOF) {
        if (syntax_error->empty()) {
          *syntax_error = absl::StrCat("quoted field opened on line ", quote_line,
                                       " is never closed");
        }
        end_field();
        break;
      }
      if (c == '"') {
        state = kAfterQuote;
      } else {
        field.push_back(static_cast<char>(c));
      }
      continue;
    }
    if (c == EOF || c == '\n') {
      end_field();
      break;
    }
    if (c == '\r') {
      // CRLF (or a lone CR) ends the record.
      if (buffer_pos_ < buffer_len_ || !eof_) {
        int next = GetChar();
        if (next != '\n' && next != EOF) --buffer_pos_;  // not LF: push back (same buffer)
      }
      end_field();
      break;
    }
    if (c == ',') {
      end_field();
      continue;
    }
    switch (state) {
      case kFieldStart:
        if (c == '"') {
          state = kQuoted;
          quote_line = line_;
        } else {
          field.push_back(static_cast<char>(c));
          state = kUnquoted;
        }
        break;
      case kUnquoted:
        field.push_back(static_cast<char>(c));  // a stray quote mid-field is kept literally
        break;
      case kAfterQuote:
        if (c == '"') {  // "" inside quotes is one quote
          field.push_back('"');
          state = kQuoted;
        } else {
          if (syntax_error->empty()) {
            *syntax_error = absl::StrCat("unexpected '", std::string(1, static_cast<char>(c)),
                                         "' after a closing quote (quotes inside a quoted "
                                         "field are written \"\")");
          }
          field.push_back(static_cast<char>(c));
          state = kUnquoted;
        }
        break;
      case kQuoted:
        break;
    }
  }
  if (std::ferror(file_)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path_));
  return true;
}

absl::Status ManifestReader::ReadCsvHeader() {
  std::vector<std::string> fields;
  int64_t line = 0;
  std::string syntax_error;
  TS_ASSIGN_OR_RETURN(bool found, ReadCsvRecord(&fields, &line, &syntax_error));
  if (!found) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", path_, " is empty (expected a header row naming the columns)"));
  }
  if (!syntax_error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": header: ", syntax_error));
  }
  if (!fields.empty() && absl::StartsWith(fields[0], "\xEF\xBB\xBF")) fields[0].erase(0, 3);
  absl::flat_hash_map<std::string, int> index;
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string name = NormalizeName(fields[i]);
    if (name == "licence") name = "license";
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ":", line, ": header column ", i + 1, " has no name"));
    }
    if (!index.emplace(name, static_cast<int>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ":", line, ": column '", name, "' appears twice in the header"));
    }
    columns_.push_back(std::string(absl::StripAsciiWhitespace(fields[i])));
  }
  if (!index.contains("track_id")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ":", line, ": the header has no 'track_id' column (columns: ",
        absl::StrJoin(columns_, ", "), ")"));
  }
  if (!index.contains("path") && !index.contains("fingerprint")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ":", line, ": the header needs a 'path' or a 'fingerprint' column (columns: ",
        absl::StrJoin(columns_, ", "), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ManifestReader::ReadLine(std::string* line) {
  line->clear();
  int c = GetChar();
  if (c == EOF) {
    if (std::ferror(file_)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path_));
    return false;
  }
  for (; c != EOF && c != '\n'; c = GetChar()) line->push_back(static_cast<char>(c));
  if (std::ferror(file_)) return ErrnoToStatus(errno, absl::StrCat("read manifest ", path_));
  return true;
}

void ManifestReader::SetField(const std::string& raw_name, std::string value,
                              ManifestEntry* entry) {
  std::string name = NormalizeName(raw_name);
  ManifestRow& row = entry->row;
  TrackMetadata& m = row.metadata;
  if (name == "track_id") {
    row.track_id = std::string(absl::StripAsciiWhitespace(value));
  } else if (name == "path") {
    row.path = std::string(absl::StripAsciiWhitespace(value));
  } else if (name == "fingerprint") {
    row.fingerprint = std::string(absl::StripAsciiWhitespace(value));
  } else if (name == "duration") {
    absl::string_view v = absl::StripAsciiWhitespace(value);
    if (v.empty()) return;
    double d = 0;
    if (!absl::SimpleAtod(v, &d) || !std::isfinite(d) || d < 0) {
      if (entry->status.ok()) {
        entry->status = absl::InvalidArgumentError(
            absl::StrCat("duration '", v, "' is not a number of seconds"));
      }
      return;
    }
    row.duration_seconds = d;
  } else if (name == "title") {
    m.title = std::move(value);
  } else if (name == "artist") {
    m.artist = std::move(value);
  } else if (name == "album") {
    m.album = std::move(value);
  } else if (name == "source_url") {
    m.source_url = std::move(value);
  } else if (name == "license" || name == "licence") {
    m.license = std::move(value);
  } else if (!value.empty()) {
    m.extra.emplace_back(std::string(absl::StripAsciiWhitespace(raw_name)), std::move(value));
  }
}

void ManifestReader::Finish(ManifestEntry* entry) {
  if (!entry->status.ok()) return;
  ManifestRow& row = entry->row;
  if (row.track_id.empty()) {
    entry->status = absl::InvalidArgumentError("missing track_id");
    return;
  }
  // A failure record of `trainspotter fingerprint --manifest` (tools/fingerprint_batch.h): the
  // part files feed ingest as they are, so such a row is reported as failed, never decoded.
  if (row.fingerprint.empty()) {
    for (const auto& [key, value] : row.metadata.extra) {
      if (NormalizeName(key) == "error") {
        entry->status = absl::InvalidArgumentError(
            absl::StrCat("track '", row.track_id, "': fingerprinting failed: ", value));
        return;
      }
    }
  }
  if (row.path.empty() && row.fingerprint.empty()) {
    entry->status = absl::InvalidArgumentError(absl::StrCat(
        "track '", row.track_id, "': neither 'path' nor 'fingerprint' is given"));
    return;
  }
  if (!row.fingerprint.empty() && !row.duration_seconds.has_value()) {
    entry->status = absl::InvalidArgumentError(absl::StrCat(
        "track '", row.track_id,
        "': a 'fingerprint' needs the audio's 'duration' in seconds"));
    return;
  }
  auto [it, inserted] = seen_.emplace(row.track_id, entry->line);
  if (!inserted) {
    entry->status = absl::InvalidArgumentError(
        absl::StrCat("duplicate track_id '", row.track_id, "' (first on ",
                     format_ == Format::kJsonArray ? "entry " : "line ", it->second, ")"));
    return;
  }
  if (!row.path.empty() && row.path[0] != '/') row.path = absl::StrCat(folder_, "/", row.path);
  row.metadata.duration_seconds = row.duration_seconds.value_or(0);
}

absl::StatusOr<std::optional<ManifestEntry>> ManifestReader::Next() {
  ManifestEntry entry;
  if (format_ == Format::kCsv) {
    std::vector<std::string> fields;
    std::string syntax_error;
    TS_ASSIGN_OR_RETURN(bool found, ReadCsvRecord(&fields, &entry.line, &syntax_error));
    if (!found) return std::optional<ManifestEntry>();
    entry.where = absl::StrCat(path_, ":", entry.line);
    if (!syntax_error.empty()) {
      entry.status = absl::InvalidArgumentError(syntax_error);
    } else if (fields.size() != columns_.size()) {
      entry.status = absl::InvalidArgumentError(
          absl::StrCat("has ", fields.size(), " field", fields.size() == 1 ? "" : "s",
                       ", the header has ", columns_.size()));
    } else {
      for (size_t i = 0; i < fields.size(); ++i) {
        SetField(columns_[i], std::move(fields[i]), &entry);
      }
    }
    Finish(&entry);
    return std::optional<ManifestEntry>(std::move(entry));
  }

  std::string text;
  if (format_ == Format::kJsonArray) {
    if (next_entry_ == entries_.size()) return std::optional<ManifestEntry>();
    text = std::move(entries_[next_entry_++]);
    entry.line = static_cast<int64_t>(next_entry_);
    entry.where = absl::StrCat(path_, ": entry ", entry.line);
  } else {
    while (true) {
      int64_t line = line_;
      TS_ASSIGN_OR_RETURN(bool found, ReadLine(&text));
      if (!found) return std::optional<ManifestEntry>();
      if (!absl::StripAsciiWhitespace(text).empty()) {
        entry.line = line;
        break;
      }
    }
    entry.where = absl::StrCat(path_, ":", entry.line);
  }
  nlohmann::ordered_json obj = nlohmann::ordered_json::parse(text, nullptr, false);
  if (obj.is_discarded()) {
    entry.status = absl::InvalidArgumentError("not valid JSON");
  } else if (!obj.is_object()) {
    entry.status = absl::InvalidArgumentError("not a JSON object");
  } else {
    for (const auto& [key, value] : obj.items()) {
      std::optional<std::string> v = JsonToText(value);
      if (v.has_value()) SetField(key, *std::move(v), &entry);
    }
  }
  Finish(&entry);
  return std::optional<ManifestEntry>(std::move(entry));
}

absl::StatusOr<int64_t> CountManifestRecords(const std::string& path) {
  TS_ASSIGN_OR_RETURN(ManifestReader::Format format, FormatOf(path));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoToStatus(errno, absl::StrCat("manifest ", path));
  std::vector<char> buf(kBufferSize);
  int64_t records = 0;
  bool at_start = true, in_quotes = false, first_char = true, array = false;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0 && !array) {
    for (size_t i = 0; i < n; ++i) {
      char c = buf[i];
      if (format != ManifestReader::Format::kCsv && first_char &&
          !absl::ascii_isspace(static_cast<unsigned char>(c))) {
        first_char = false;
        if (c == '[') {
          array = true;
          break;
        }
      }
      if (format == ManifestReader::Format::kCsv) {
        if (c == '"') in_quotes = !in_quotes;
        if (in_quotes) {
          if (at_start) {
            ++records;
            at_start = false;
          }
          continue;
        }
        if (c == '\n' || c == '\r') {
          at_start = true;
        } else if (at_start) {
          ++records;
          at_start = false;
        }
      } else {
        if (c == '\n') {
          at_start = true;
        } else if (at_start && !absl::ascii_isspace(static_cast<unsigned char>(c))) {
          ++records;
          at_start = false;
        }
      }
    }
  }
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return ErrnoToStatus(err, absl::StrCat("read manifest ", path));
  if (array) {
    // A JSON array is read whole anyway; count its elements the same way.
    TS_ASSIGN_OR_RETURN(auto reader, ManifestReader::Open(path));
    int64_t count = 0;
    while (true) {
      TS_ASSIGN_OR_RETURN(std::optional<ManifestEntry> e, reader->Next());
      if (!e.has_value()) break;
      ++count;
    }
    return count;
  }
  if (format == ManifestReader::Format::kCsv && records > 0) --records;  // the header
  return records;
}

}  // namespace trainspotter::cli
