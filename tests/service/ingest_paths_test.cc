#include "service/ingest_paths.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

class IngestPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(tmp_.File("root/sub"));
    std::filesystem::create_directories(tmp_.File("outside"));
    std::ofstream(tmp_.File("root/sub/a.wav")) << "x";
    std::ofstream(tmp_.File("outside/secret.wav")) << "x";
    // A link inside the root pointing out of it, and one pointing within.
    ASSERT_EQ(
        ::symlink(tmp_.File("outside/secret.wav").c_str(), tmp_.File("root/escape.wav").c_str()),
        0);
    ASSERT_EQ(::symlink(tmp_.File("outside").c_str(), tmp_.File("root/outdir").c_str()), 0);
    ASSERT_EQ(::symlink("sub/a.wav", tmp_.File("root/inside.wav").c_str()), 0);
    absl::StatusOr<std::vector<std::string>> roots = CanonicalizeIngestRoots({tmp_.File("root")});
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_ = *roots;
  }
  testing::ScopedTempDir tmp_;
  std::vector<std::string> roots_;
};

TEST_F(IngestPathsTest, AcceptsFilesInsideTheRoot) {
  absl::StatusOr<std::string> rel = ResolveIngestPath(roots_, "sub/a.wav");
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ(*rel, roots_[0] + "/sub/a.wav");
  EXPECT_TRUE(ResolveIngestPath(roots_, roots_[0] + "/sub/a.wav").ok());
  EXPECT_TRUE(ResolveIngestPath(roots_, "inside.wav").ok());
}

TEST_F(IngestPathsTest, RefusesEscapes) {
  EXPECT_TRUE(
      absl::IsPermissionDenied(ResolveIngestPath(roots_, "../outside/secret.wav").status()));
  EXPECT_TRUE(
      absl::IsPermissionDenied(ResolveIngestPath(roots_, "sub/../../outside/secret.wav").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveIngestPath(roots_, "escape.wav").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveIngestPath(roots_, "outdir/secret.wav").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      ResolveIngestPath(roots_, tmp_.File("outside/secret.wav")).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveIngestPath(roots_, "/etc/passwd").status()));
  // A sibling whose name starts like the root is not inside it.
  std::filesystem::create_directories(tmp_.File("root2"));
  std::ofstream(tmp_.File("root2/b.wav")) << "x";
  EXPECT_TRUE(
      absl::IsPermissionDenied(ResolveIngestPath(roots_, tmp_.File("root2/b.wav")).status()));
}

TEST_F(IngestPathsTest, OtherErrors) {
  EXPECT_TRUE(absl::IsNotFound(ResolveIngestPath(roots_, "missing.wav").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveIngestPath(roots_, "sub").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveIngestPath(roots_, "").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveIngestPath({}, "sub/a.wav").status()));
  EXPECT_FALSE(CanonicalizeIngestRoots({tmp_.File("nope")}).ok());
  EXPECT_FALSE(CanonicalizeIngestRoots({tmp_.File("root/sub/a.wav")}).ok());
}

}  // namespace
}  // namespace trainspotter
