#include "tools/content_hash.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"

namespace trainspotter::cli {
namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kP5 = 0x27D4EB2F165667C5ULL;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t Read64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint32_t Read32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kP2;
  acc = Rotl(acc, 31);
  return acc * kP1;
}
inline uint64_t MergeRound(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * kP1 + kP4;
}

}  // namespace

Xxh64::Xxh64(uint64_t seed) : seed_(seed) {
  v_[0] = seed + kP1 + kP2;
  v_[1] = seed + kP2;
  v_[2] = seed;
  v_[3] = seed - kP1;
}

void Xxh64::Update(const void* data, size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += len;
  if (buffered_ + len < 32) {
    if (len > 0) std::memcpy(buf_ + buffered_, p, len);
    buffered_ += len;
    return;
  }
  if (buffered_ > 0) {
    size_t fill = 32 - buffered_;
    std::memcpy(buf_ + buffered_, p, fill);
    for (int i = 0; i < 4; ++i) v_[i] = Round(v_[i], Read64(buf_ + 8 * i));
    p += fill;
    len -= fill;
    buffered_ = 0;
  }
  while (len >= 32) {
    for (int i = 0; i < 4; ++i) v_[i] = Round(v_[i], Read64(p + 8 * i));
    p += 32;
    len -= 32;
  }
  if (len > 0) std::memcpy(buf_, p, len);
  buffered_ = len;
}

uint64_t Xxh64::Digest() const {
  uint64_t h;
  if (total_ >= 32) {
    h = Rotl(v_[0], 1) + Rotl(v_[1], 7) + Rotl(v_[2], 12) + Rotl(v_[3], 18);
    for (int i = 0; i < 4; ++i) h = MergeRound(h, v_[i]);
  } else {
    h = seed_ + kP5;
  }
  h += total_;
  const unsigned char* p = buf_;
  size_t len = buffered_;
  while (len >= 8) {
    h ^= Round(0, Read64(p));
    h = Rotl(h, 27) * kP1 + kP4;
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    h ^= uint64_t{Read32(p)} * kP1;
    h = Rotl(h, 23) * kP2 + kP3;
    p += 4;
    len -= 4;
  }
  while (len > 0) {
    h ^= uint64_t{*p} * kP5;
    h = Rotl(h, 11) * kP1;
    ++p;
    --len;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t HashBytes(absl::string_view bytes) {
  Xxh64 h;
  h.Update(bytes);
  return h.Digest();
}

absl::StatusOr<std::string> HashFileContent(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  // Sequential read-ahead; the decoder reads the same bytes right after, from the page cache.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(1 << 20);
  Xxh64 h;
  uint64_t size = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoToStatus(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return absl::StrFormat("file:%016x:%d", h.Digest(), size);
}

std::string HashItems(absl::Span<const uint32_t> items) {
  Xxh64 h;
  unsigned char le[4];
  for (uint32_t x : items) {
    le[0] = x & 0xff;
    le[1] = (x >> 8) & 0xff;
    le[2] = (x >> 16) & 0xff;
    le[3] = x >> 24;
    h.Update(le, 4);
  }
  return absl::StrFormat("fp:%016x:%d", h.Digest(), items.size());
}

uint64_t HashMetadata(const TrackMetadata& m, bool with_duration) {
  Xxh64 h;
  auto field = [&h](absl::string_view s) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t{s.size()} >> (8 * i));
    h.Update(len, sizeof(len));
    h.Update(s);
  };
  field(m.title);
  field(m.artist);
  field(m.album);
  field(m.source_url);
  field(m.license);
  if (with_duration) field(absl::StrFormat("%.3f", m.duration_seconds));
  for (const auto& [k, v] : m.extra) {
    field(k);
    field(v);
  }
  return h.Digest();
}

std::string CombineContentHash(const std::string& audio_hash, uint64_t metadata_hash) {
  return absl::StrFormat("%s:meta:%016x", audio_hash, metadata_hash);
}

}  // namespace trainspotter::cli
