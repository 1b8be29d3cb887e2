#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
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

TEST(FileUtilTest, AtomicWriteIntoMissingDirectoryFails) {
  auto s = WriteFileAtomically("/nonexistent/trainspotter/dir/f", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/trainspotter/dir/f"), std::string::npos);
}

}  // namespace
}  // namespace trainspotter
