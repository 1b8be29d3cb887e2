// `trainspotter synth` run as a subprocess over the real-music fixture: the catalogue it writes,
// the labelled query set, the ingest manifest, determinism. Skips when the fixture is absent.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"
#include "tests/testing/temp_dir.h"

namespace trainspotter {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::vector<nlohmann::json> Lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

class SynthCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::error_code ec;
    int audio = 0;
    for (const auto& e : std::filesystem::directory_iterator(TRAINSPOTTER_TEST_MUSIC_DIR, ec)) {
      audio += e.is_regular_file();
    }
    if (audio < 20) GTEST_SKIP() << "no real-music fixture (tools/fetch-test-music.sh)";
  }
  int Run(std::vector<std::string> args) {
    std::vector<std::string> full = {TRAINSPOTTER_BIN, "synth", "--fixture",
                                     TRAINSPOTTER_TEST_MUSIC_DIR, "--quiet"};
    full.insert(full.end(), args.begin(), args.end());
    std::string cmd;
    for (const std::string& a : full) absl::StrAppend(&cmd, "'", a, "' ");
    absl::StrAppend(&cmd, "2>", dir_.Join("err.txt"));
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  TempDir dir_;
};

TEST_F(SynthCliTest, CatalogueQueriesAndManifest) {
  const std::string cat = dir_.Join("cat"), q = dir_.Join("q.jsonl"), m = dir_.Join("m.jsonl");
  ASSERT_EQ(Run({"--catalog", cat, "--tracks", "120", "--seed", "7", "--batch-size", "50",
                 "--queries-out", q, "--queries", "20", "--manifest-out", m}),
            0)
      << Slurp(dir_.Join("err.txt"));
  Catalog::OpenOptions oo;
  oo.build_index = false;
  auto c = Catalog::Open(cat, oo);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->num_tracks(), 120);
  // Log-normal lengths, mean ~4 min, clipped to 30 s..15 min.
  const double mean_s = (*c)->hours() * 3600 / 120;
  EXPECT_GT(mean_s, 170);
  EXPECT_LT(mean_s, 320);
  std::set<std::vector<uint32_t>> distinct;
  for (const nlohmann::json& row : Lines(m)) {
    const double d = row["duration"];
    EXPECT_GE(d, 29.9);
    EXPECT_LE(d, 903);
    auto fp = DecodeFingerprint(row["fingerprint"].get<std::string>());
    ASSERT_TRUE(fp.ok()) << fp.status();
    auto t = (*c)->GetTrack("synth", row["track_id"]);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->num_items, static_cast<int64_t>(fp->items.size()));
    distinct.insert(std::vector<uint32_t>(fp->items.begin(), fp->items.begin() + 40));
  }
  EXPECT_EQ(distinct.size(), 120u) << "tracks must differ";

  std::vector<nlohmann::json> queries = Lines(q);
  ASSERT_EQ(queries.size(), 40u);
  int members = 0, silence = 0;
  for (const nlohmann::json& j : queries) {
    auto fp = DecodeFingerprint(j["fingerprint"].get<std::string>());
    ASSERT_TRUE(fp.ok());
    EXPECT_EQ(fp->items.size(), 59u);
    if (j["expected_track_id"].is_string()) {
      ++members;
      EXPECT_TRUE((*c)->GetTrack("synth", j["expected_track_id"]).ok()) << j.dump();
      EXPECT_GE(j["ber"].get<double>(), 0.05);
      EXPECT_LE(j["ber"].get<double>(), 0.25);
    } else {
      silence += j["kind"] == "silence";
    }
  }
  EXPECT_EQ(members, 20);
  EXPECT_EQ(silence, 2);

  // Same seed, same everything; the manifest feeds ingest.
  const std::string m2 = dir_.Join("m2.jsonl");
  ASSERT_EQ(Run({"--tracks", "120", "--seed", "7", "--manifest-out", m2}), 0);
  EXPECT_EQ(Slurp(m), Slurp(m2));
  const std::string cmd =
      absl::StrCat("'", TRAINSPOTTER_BIN, "' ingest --quiet --catalog '", dir_.Join("cat2"),
                   "' --dataset d --manifest '", m2, "' > /dev/null 2>&1");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  // A re-run into the same catalogue finds every batch stored and adds nothing.
  ASSERT_EQ(Run({"--catalog", cat, "--tracks", "120", "--seed", "7", "--batch-size", "50"}), 0);
  EXPECT_NE(Slurp(dir_.Join("err.txt")).find("120 already stored"), std::string::npos)
      << Slurp(dir_.Join("err.txt"));
}

TEST_F(SynthCliTest, UsageErrors) {
  EXPECT_EQ(Run({"--tracks", "10"}), 2);             // nothing to write
  EXPECT_EQ(Run({"--catalog", dir_.Join("c")}), 2);  // no --tracks
}

}  // namespace
}  // namespace trainspotter
