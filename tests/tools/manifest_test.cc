#include "tools/manifest.h"

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace trainspotter::cli {
namespace {

class ManifestTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_.Join(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::vector<ManifestEntry> ReadAll(const std::string& path) {
    std::vector<ManifestEntry> out;
    auto reader = ManifestReader::Open(path);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) return out;
    while (true) {
      auto e = (*reader)->Next();
      EXPECT_TRUE(e.ok()) << e.status();
      if (!e.ok() || !e->has_value()) break;
      out.push_back(**e);
    }
    return out;
  }
  TempDir dir_;
};

TEST_F(ManifestTest, CsvWithRfc4180Quoting) {
  std::string path = Write("m.csv",
                           "\xEF\xBB\xBFtrack_id, Path ,title,Licence,genre,notes\r\n"
                           "t1,a/1.mp3,\"Hello, World\",CC0,rock,\r\n"
                           "t2,/abs/2.flac,\"She said \"\"hi\"\"\",,\"\",\"two\nlines\"\r\n"
                           "\r\n"
                           "t3,3.wav,plain,,,x\n");
  std::vector<ManifestEntry> rows = ReadAll(path);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& e : rows) EXPECT_TRUE(e.status.ok()) << e.where << " " << e.status;
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[0].where, path + ":2");
  EXPECT_EQ(rows[0].row.track_id, "t1");
  EXPECT_EQ(rows[0].row.path, dir_.path() + "/a/1.mp3");
  EXPECT_EQ(rows[0].row.metadata.title, "Hello, World");
  EXPECT_EQ(rows[0].row.metadata.license, "CC0");
  ASSERT_EQ(rows[0].row.metadata.extra.size(), 1u);  // empty 'notes' is not kept
  EXPECT_EQ(rows[0].row.metadata.extra[0], (std::pair<std::string, std::string>{"genre", "rock"}));

  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[1].row.path, "/abs/2.flac");
  EXPECT_EQ(rows[1].row.metadata.title, "She said \"hi\"");
  ASSERT_EQ(rows[1].row.metadata.extra.size(), 1u);
  EXPECT_EQ(rows[1].row.metadata.extra[0].second, "two\nlines");

  EXPECT_EQ(rows[2].line, 6);  // the quoted newline and the blank line are counted
  EXPECT_EQ(rows[2].row.track_id, "t3");
  EXPECT_EQ(*CountManifestRecords(path), 3);
}

TEST_F(ManifestTest, CsvRowErrorsNameTheirLine) {
  std::string path = Write("m.csv",
                           "track_id,fingerprint,duration,path\n"
                           ",AQAD,10,\n"              // 2: missing track_id
                           "a,AQAD,,\n"               // 3: fingerprint without duration
                           "b,,,\n"                   // 4: neither path nor fingerprint
                           "c,AQAD,ten,\n"            // 5: bad duration
                           "d,AQAD,10\n"              // 6: too few fields
                           "e,\"AQ\"AD,10,\n"         // 7: junk after closing quote
                           "f,AQAD,10,\n"             // 8: ok
                           "f,,,x.mp3\n"              // 9: duplicate
                           "g,\"AQAD,10,\n");         // 10: unterminated quote
  std::vector<ManifestEntry> rows = ReadAll(path);
  ASSERT_EQ(rows.size(), 9u);
  auto expect_error = [&](size_t i, int64_t line, const std::string& text) {
    EXPECT_EQ(rows[i].line, line);
    EXPECT_FALSE(rows[i].status.ok()) << "line " << line;
    EXPECT_NE(rows[i].status.message().find(text), std::string::npos)
        << "line " << line << ": " << rows[i].status;
  };
  expect_error(0, 2, "missing track_id");
  expect_error(1, 3, "needs the audio's 'duration'");
  expect_error(2, 4, "neither 'path' nor 'fingerprint'");
  expect_error(3, 5, "duration 'ten'");
  expect_error(4, 6, "has 3 fields, the header has 4");
  expect_error(5, 7, "after a closing quote");
  EXPECT_TRUE(rows[6].status.ok()) << rows[6].status;
  EXPECT_EQ(rows[6].row.fingerprint, "AQAD");
  EXPECT_DOUBLE_EQ(rows[6].row.metadata.duration_seconds, 10);
  expect_error(7, 9, "duplicate track_id 'f' (first on line 8)");
  expect_error(8, 10, "never closed");
}

TEST_F(ManifestTest, CsvHeaderProblemsFailOpen) {
  auto no_id = ManifestReader::Open(Write("a.csv", "id,path\n1,x.mp3\n"));
  ASSERT_FALSE(no_id.ok());
  EXPECT_NE(no_id.status().message().find("no 'track_id' column (columns: id, path)"),
            std::string::npos)
      << no_id.status();
  auto no_audio = ManifestReader::Open(Write("b.csv", "track_id,title\n1,x\n"));
  EXPECT_NE(no_audio.status().message().find("'path' or a 'fingerprint'"), std::string::npos);
  auto dup = ManifestReader::Open(Write("c.csv", "track_id,path,PATH\n"));
  EXPECT_NE(dup.status().message().find("appears twice"), std::string::npos);
  auto empty = ManifestReader::Open(Write("d.csv", ""));
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos);
  auto ext = ManifestReader::Open(Write("e.txt", "track_id,path\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(ext.status()));
  EXPECT_TRUE(absl::IsNotFound(ManifestReader::Open(dir_.Join("none.csv")).status()));
}

TEST_F(ManifestTest, JsonLines) {
  std::string path = Write(
      "m.jsonl",
      "{\"track_id\": \"a\", \"fingerprint\": \"AQAD\", \"duration\": 12.5, \"bpm\": 120, "
      "\"tags\": [\"x\"], \"live\": true, \"nothing\": null, \"Artist\": \"Z\"}\n"
      "\n"
      "{\"track_id\": 7, \"path\": \"sub/b.mp3\", \"duration\": \"3\"}\n"
      "not json\n"
      "[1, 2]\n"
      "{\"path\": \"c.mp3\"}\n"
      "{\"track_id\": \"a\", \"path\": \"d.mp3\"}\n");
  std::vector<ManifestEntry> rows = ReadAll(path);
  ASSERT_EQ(rows.size(), 6u);
  ASSERT_TRUE(rows[0].status.ok()) << rows[0].status;
  EXPECT_EQ(rows[0].row.track_id, "a");
  EXPECT_DOUBLE_EQ(rows[0].row.metadata.duration_seconds, 12.5);
  EXPECT_EQ(rows[0].row.metadata.artist, "Z");
  std::vector<std::pair<std::string, std::string>> extra = {
      {"bpm", "120"}, {"tags", "[\"x\"]"}, {"live", "true"}};
  EXPECT_EQ(rows[0].row.metadata.extra, extra);  // in manifest order
  ASSERT_TRUE(rows[1].status.ok()) << rows[1].status;
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[1].row.track_id, "7");
  EXPECT_EQ(rows[1].row.path, dir_.path() + "/sub/b.mp3");
  EXPECT_EQ(rows[2].line, 4);
  EXPECT_NE(rows[2].status.message().find("not valid JSON"), std::string::npos);
  EXPECT_NE(rows[3].status.message().find("not a JSON object"), std::string::npos);
  EXPECT_NE(rows[4].status.message().find("missing track_id"), std::string::npos);
  EXPECT_NE(rows[5].status.message().find("duplicate track_id 'a' (first on line 1)"),
            std::string::npos);
  EXPECT_EQ(*CountManifestRecords(path), 6);
}

TEST_F(ManifestTest, JsonArray) {
  std::string path =
      Write("m.json", "  [{\"track_id\": \"a\", \"path\": \"a.mp3\"}, {\"track_id\": \"\"}]");
  std::vector<ManifestEntry> rows = ReadAll(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].status.ok());
  EXPECT_EQ(rows[1].where, path + ": entry 2");
  EXPECT_FALSE(rows[1].status.ok());
  EXPECT_EQ(*CountManifestRecords(path), 2);
  EXPECT_FALSE(ManifestReader::Open(Write("bad.json", "[{\"a\": ")).ok());
}

}  // namespace
}  // namespace trainspotter::cli
