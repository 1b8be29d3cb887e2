#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/ts_file_util_XXXXXX";
  char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d;
}

TEST(FileUtilTest, AtomicWriteReplacesContentsAndLeavesNoTemp) {
  std::string dir = TempDir();
  std::string path = dir + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer").ok());
  auto got = ReadFile(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "second, longer");
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  struct stat st;
  EXPECT_NE(stat(tmp.c_str(), &st), 0);
}

TEST(FileUtilTest, ReadFileErrorsNameThePath) {
  auto missing = ReadFile("/nonexistent/trainspotter/x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/trainspotter/x"), std::string::npos);

  std::string dir = TempDir();
  auto is_dir = ReadFile(dir);
  ASSERT_FALSE(is_dir.ok());
  EXPECT_EQ(is_dir.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FileUtilTest, ReadFileRefusesOversize) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomically(dir + "/big", std::string(1000, 'x')).ok());
  auto got = ReadFile(dir + "/big", 999);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(FileUtilTest, StreamedAtomicWriteIsAllOrNothing) {
  const std::string dir = TempDir();
  const std::string path = dir + "/snapshot";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append("half", 4).ok());
    // Abandoned before Commit (as by an error or a crash): the old file stays, no temp left.
  }
  EXPECT_EQ(*ReadFile(path), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);
  auto w = AtomicFileWriter::Create(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("new ", 4).ok());
  ASSERT_TRUE((*w)->Append("contents", 8).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_FALSE((*w)->Append("x", 1).ok());
  EXPECT_EQ(*ReadFile(path), "new contents");

  auto r = FileReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->size(), 12);
  char buf[8];
  ASSERT_TRUE((*r)->Read(buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "new ");
  absl::Status past_end = (*r)->Read(buf, 8);  // 8 wanted, 8 left: fine
  EXPECT_TRUE(past_end.ok()) << past_end;
  absl::Status truncated = (*r)->Read(buf, 1);
  EXPECT_TRUE(absl::IsDataLoss(truncated)) << truncated;
  EXPECT_NE(truncated.message().find(path), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(FileReader::Open(dir + "/missing").status()));
}

TEST(FileUtilTest, AtomicWriteIntoMissingDirectoryFails) {
  auto s = WriteFileAtomically("/nonexistent/trainspotter/dir/f", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/trainspotter/dir/f"), std::string::npos);
}

}  // namespace
}  // namespace trainspotter
