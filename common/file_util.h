// Filesystem helpers with crash-safe semantics.
#ifndef TRAINSPOTTER_COMMON_FILE_UTIL_H_
#define TRAINSPOTTER_COMMON_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trainspotter {

// Writes `contents` to `path` atomically: a temporary file in the same directory is written,
// fsync'ed and renamed over `path`, then the directory is fsync'ed. After a crash, `path` holds
// either the old or the new contents, never a mix. Errors name the path and the reason.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Fsyncs an existing file or directory.
absl::Status SyncPath(const std::string& path);

// Reads a whole file (refuses files over `max_bytes`).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 30);

// Returns an absl::Status for errno `err` (ENOENT -> NotFound, EACCES -> PermissionDenied, ...)
// with "<what>: <strerror>" as message.
absl::Status ErrnoToStatus(int err, absl::string_view what);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_COMMON_FILE_UTIL_H_
