// Filesystem helpers with crash-safe semantics.
#ifndef TRAINSPOTTER_COMMON_FILE_UTIL_H_
#define TRAINSPOTTER_COMMON_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trainspotter {

// Writes `contents` to `path` atomically: a temporary file in the same directory is written,
// fsync'ed and renamed over `path`, then the directory is fsync'ed. After a crash, `path` holds
// either the old or the new contents, never a mix. Errors name the path and the reason.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Streams a large file into place atomically, as WriteFileAtomically does: Append() to a
// temporary file, then Commit() fsyncs and renames it over the path. Destroyed without a
// successful Commit(), it removes the temporary file and leaves the path untouched.
class AtomicFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  absl::Status Append(const void* data, size_t n);
  absl::Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  std::string path_, tmp_;
  int fd_;
};

// Reads a file front to back in exact-size pieces; errors name the file.
class FileReader {
 public:
  static absl::StatusOr<std::unique_ptr<FileReader>> Open(const std::string& path);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Exactly `n` bytes, or DATA_LOSS if the file ends first.
  absl::Status Read(void* data, size_t n);
  int64_t size() const { return size_; }

 private:
  FileReader(std::string path, int fd, int64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  int64_t size_;
};

// Fsyncs an existing file or directory.
absl::Status SyncPath(const std::string& path);

// Reads a whole file (refuses files over `max_bytes`).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 30);

// Returns an absl::Status for errno `err` (ENOENT -> NotFound, EACCES -> PermissionDenied, ...)
// with "<what>: <strerror>" as message.
absl::Status ErrnoToStatus(int err, absl::string_view what);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_COMMON_FILE_UTIL_H_
