#include "tools/content_hash.h"

#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace trainspotter::cli {
namespace {

TEST(Xxh64Test, MatchesReferenceDigests) {
  // Published XXH64 test vectors (seed 0).
  EXPECT_EQ(HashBytes(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(HashBytes("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(HashBytes("abc"), 0x44BC2CF5AD770999ULL);
}

TEST(Xxh64Test, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  uint64_t whole = HashBytes(data);
  for (size_t chunk : {1u, 3u, 31u, 32u, 33u, 100u}) {
    Xxh64 h;
    for (size_t i = 0; i < data.size(); i += chunk) {
      h.Update(absl::string_view(data).substr(i, chunk));
    }
    EXPECT_EQ(h.Digest(), whole) << chunk;
  }
}

TEST(ContentHashTest, FileHashFollowsBytes) {
  TempDir dir;
  std::string path = dir.Join("a.bin");
  { std::ofstream(path, std::ios::binary) << "hello"; }
  auto h1 = HashFileContent(path);
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(*h1, "file:" + absl::StrFormat("%016x", HashBytes("hello")) + ":5");
  { std::ofstream(path, std::ios::binary) << "hellO"; }
  EXPECT_NE(*HashFileContent(path), *h1);
  absl::Status missing = HashFileContent(dir.Join("none")).status();
  EXPECT_TRUE(absl::IsNotFound(missing));
  EXPECT_NE(missing.message().find(dir.Join("none")), std::string::npos);
}

TEST(ContentHashTest, ItemsAndMetadata) {
  EXPECT_EQ(HashItems({1, 2, 3}), HashItems({1, 2, 3}));
  EXPECT_NE(HashItems({1, 2, 3}), HashItems({1, 2, 4}));
  TrackMetadata a, b;
  a.title = "x";
  b.title = "x";
  EXPECT_EQ(HashMetadata(a, true), HashMetadata(b, true));
  b.duration_seconds = 3;
  EXPECT_NE(HashMetadata(a, true), HashMetadata(b, true));
  EXPECT_EQ(HashMetadata(a, false), HashMetadata(b, false));
  // Field boundaries count: ("ab", "") differs from ("a", "b").
  TrackMetadata c, d;
  c.title = "ab";
  d.title = "a";
  d.artist = "b";
  EXPECT_NE(HashMetadata(c, false), HashMetadata(d, false));
  b.extra = {{"k", "v"}};
  EXPECT_NE(HashMetadata(a, false), HashMetadata(b, false));
}

}  // namespace
}  // namespace trainspotter::cli
