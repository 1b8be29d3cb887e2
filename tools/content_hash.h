// Content hashes for `ingest`'s resumability: a stable 64-bit hash (XXH64, seed 0) of what a
// track is made of. Stable across runs, builds and machines (unlike absl::Hash), because the
// hashes are stored in the catalogue and compared on the next run.
#ifndef TRAINSPOTTER_TOOLS_CONTENT_HASH_H_
#define TRAINSPOTTER_TOOLS_CONTENT_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "matcher/catalog.h"

namespace trainspotter::cli {

// Streaming XXH64 (the published algorithm; same digests as the reference implementation).
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void Update(const void* data, size_t len);
  void Update(absl::string_view s) { Update(s.data(), s.size()); }
  uint64_t Digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  unsigned char buf_[32];
  size_t buffered_ = 0;
};

uint64_t HashBytes(absl::string_view bytes);

// "file:<xxh64 hex>:<size>" of the file's bytes (read in 1 MiB chunks). Errors name the path.
absl::StatusOr<std::string> HashFileContent(const std::string& path);
// "fp:<xxh64 hex>:<count>" of fingerprint items (little-endian bytes).
std::string HashItems(absl::Span<const uint32_t> items);
// Hash of every metadata field (title ... extra, and the duration when `with_duration`), so that
// a corrected manifest row counts as a change. Field boundaries are length-prefixed.
uint64_t HashMetadata(const TrackMetadata& metadata, bool with_duration);
// The content hash stored per track: the audio part, then the metadata hash.
std::string CombineContentHash(const std::string& audio_hash, uint64_t metadata_hash);

}  // namespace trainspotter::cli

#endif  // TRAINSPOTTER_TOOLS_CONTENT_HASH_H_
