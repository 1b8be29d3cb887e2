#include "service/ingest_paths.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"

namespace trainspotter {
namespace {

absl::StatusOr<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&::free)> resolved(::realpath(path.c_str(), nullptr), &::free);
  if (resolved == nullptr) return ErrnoToStatus(errno, path);
  return std::string(resolved.get());
}

bool IsInside(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return absl::StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/';
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CanonicalizeIngestRoots(
    const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const std::string& root : roots) {
    absl::StatusOr<std::string> real = RealPath(root);
    if (!real.ok()) {
      return absl::Status(real.status().code(),
                          absl::StrCat("--ingest-root: ", real.status().message()));
    }
    struct stat st;
    if (::stat(real->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ingest-root ", root, " is not a directory"));
    }
    out.push_back(*std::move(real));
  }
  return out;
}

absl::StatusOr<std::string> ResolveIngestPath(const std::vector<std::string>& canonical_roots,
                                              const std::string& requested) {
  if (canonical_roots.empty()) {
    return absl::PermissionDeniedError(
        "server-side paths are disabled: the server was started without --ingest-root");
  }
  if (requested.empty()) return absl::InvalidArgumentError("empty server_path");
  if (requested.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("server_path contains a NUL byte");
  }
  for (absl::string_view part : absl::StrSplit(requested, '/')) {
    if (part == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat("server_path '", requested, "' contains '..'"));
    }
  }
  std::string joined =
      requested.front() == '/' ? requested : absl::StrCat(canonical_roots.front(), "/", requested);
  // realpath resolves every symlink, so a link inside a root that points outside is caught by
  // the prefix check below.
  absl::StatusOr<std::string> real = RealPath(joined);
  if (!real.ok()) {
    if (absl::IsNotFound(real.status())) {
      return absl::NotFoundError(absl::StrCat("server_path '", requested, "' does not exist"));
    }
    return absl::Status(real.status().code(),
                        absl::StrCat("server_path '", requested, "': cannot resolve"));
  }
  bool inside = false;
  for (const std::string& root : canonical_roots) inside = inside || IsInside(*real, root);
  if (!inside) {
    return absl::PermissionDeniedError(
        absl::StrCat("server_path '", requested, "' is outside the server's ingest roots"));
  }
  struct stat st;
  if (::stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("server_path '", requested, "' is not a regular file"));
  }
  return *std::move(real);
}

}  // namespace trainspotter
