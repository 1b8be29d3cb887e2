// Confinement of server-side ingest paths to the configured roots (`serve --ingest-root`).
#ifndef TRAINSPOTTER_SERVICE_INGEST_PATHS_H_
#define TRAINSPOTTER_SERVICE_INGEST_PATHS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace trainspotter {

// Canonicalises each root (realpath; it must be an existing directory): INVALID_ARGUMENT or
// NOT_FOUND naming the root otherwise.
absl::StatusOr<std::vector<std::string>> CanonicalizeIngestRoots(
    const std::vector<std::string>& roots);

// Resolves a client-supplied path to the canonical path of a regular file inside one of
// `canonical_roots`. A relative path is taken relative to the first root. Refused with
// PERMISSION_DENIED: no roots configured, a ".." component, or a path that resolves (through
// symlinks) outside every root. NOT_FOUND if it does not exist, INVALID_ARGUMENT if it is not a
// regular file. Messages repeat the client's path, never the server's layout beyond it.
absl::StatusOr<std::string> ResolveIngestPath(const std::vector<std::string>& canonical_roots,
                                              const std::string& requested);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_INGEST_PATHS_H_
