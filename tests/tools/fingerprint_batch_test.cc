// `trainspotter fingerprint --manifest` (tools/fingerprint_batch.h): shard arithmetic, and the real
// binary run as several shard processes at once over synthesised WAVs -- every row exactly once,
// markers, error records, exit codes 0/3/4, idempotent re-runs, parts that `ingest` reads as they
// are -- plus the examples of docs/batch.md (manifests parsed, Slurm and Spark scripts run).
#include "tools/fingerprint_batch.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"
#include "tests/testing/audio_synth.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_env.h"
#include "tools/manifest.h"

extern char** environ;

namespace trainspotter::cli {
namespace {

using Env = std::map<std::string, std::string>;

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    out.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_TRUE(out.back().is_object()) << path << ": " << line;
  }
  return out;
}

// Starts `program args...` with `env` added to (and overriding) ours, shard variables removed.
pid_t Spawn(const std::string& program, const std::vector<std::string>& args, const Env& env,
            const std::string& out_path, const std::string& err_path,
            const std::string& stdin_path = "/dev/null") {
  std::vector<std::string> full = {program};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string s = *e;
    std::string name = s.substr(0, s.find('='));
    if (name == "JOB_COMPLETION_INDEX" || name == "SLURM_ARRAY_TASK_ID" || env.count(name)) {
      continue;
    }
    env_strings.push_back(std::move(s));
  }
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  const int pid = testing::SpawnProcess(full, &env_strings, stdin_path, out_path, err_path);
  EXPECT_GT(pid, 0) << "spawn " << program;
  return pid;
}

int Wait(pid_t pid) { return testing::WaitExitCode(pid); }

// ---- shard arithmetic ---------------------------------------------------------------------

std::function<const char*(const char*)> FakeEnv(Env env) {
  auto shared = std::make_shared<Env>(std::move(env));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(ResolveShardTest, FlagsAndEnvironment) {
  auto s = ResolveShard("3/8", 0, FakeEnv({}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, 3);
  EXPECT_EQ(s->count, 8);
  s = ResolveShard("3", 8, FakeEnv({{"JOB_COMPLETION_INDEX", "5"}}));  // the flag wins
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, 3);
  s = ResolveShard("", 8, FakeEnv({{"JOB_COMPLETION_INDEX", "5"}, {"SLURM_ARRAY_TASK_ID", "6"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, 5);
  s = ResolveShard("", 8, FakeEnv({{"SLURM_ARRAY_TASK_ID", "7"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, 7);
  EXPECT_EQ(s->count, 8);
  s = ResolveShard("0/1", 1, FakeEnv({}));
  ASSERT_TRUE(s.ok()) << s.status();
}

TEST(ResolveShardTest, RejectsMissingMalformedAndOutOfRange) {
  for (const auto& [flag, count, env] : std::vector<std::tuple<std::string, int64_t, Env>>{
           {"", 8, {}},                               // no index at all
           {"3", 0, {}},                              // no count
           {"", 0, {{"JOB_COMPLETION_INDEX", "1"}}},  // no count
           {"8/8", 0, {}},                            // out of range
           {"3/8", 4, {}},                            // disagreeing counts
           {"-1/8", 0, {}},
           {"a/8", 0, {}},
           {"1/0", 0, {}},
           {"1/2/3", 0, {}},
           {"", 8, {{"SLURM_ARRAY_TASK_ID", "x"}}},
       }) {
    auto s = ResolveShard(flag, count, FakeEnv(env));
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << flag << " " << count << ": " << s.status();
  }
}

TEST(ExpandShardPatternTest, ZeroPadsToTheLastIndex) {
  EXPECT_EQ(ExpandShardPattern("p/part-{shard}.jsonl", {7, 64}), "p/part-07.jsonl");
  EXPECT_EQ(ExpandShardPattern("part-{shard}.jsonl", {7, 10}), "part-7.jsonl");
  EXPECT_EQ(ExpandShardPattern("part-{shard}.jsonl", {7, 11}), "part-07.jsonl");
  EXPECT_EQ(ExpandShardPattern("{shard}-{shard}", {42, 1000}), "042-042");
  EXPECT_EQ(ExpandShardPattern("fixed.jsonl", {1, 2}), "fixed.jsonl");
}

TEST(BatchErrorsTest, RetryableAndPermanent) {
  EXPECT_TRUE(IsRetryableFileError(absl::InternalError("read: Input/output error")));
  EXPECT_TRUE(IsRetryableFileError(absl::DeadlineExceededError("slow")));
  EXPECT_TRUE(IsRetryableFileError(absl::ResourceExhaustedError("ENOMEM")));
  EXPECT_FALSE(IsRetryableFileError(absl::InvalidArgumentError("not audio")));
  EXPECT_FALSE(IsRetryableFileError(absl::NotFoundError("gone")));
  EXPECT_EQ(ExitCodeForShardError(absl::NotFoundError("manifest")), kBatchExitPermanent);
  EXPECT_EQ(ExitCodeForShardError(absl::InvalidArgumentError("header")), kBatchExitPermanent);
  EXPECT_EQ(ExitCodeForShardError(absl::InternalError("EIO")), kBatchExitRetryable);
  EXPECT_EQ(ExitCodeForShardError(absl::ResourceExhaustedError("ENOSPC")), kBatchExitRetryable);
  EXPECT_EQ(ExitCodeForShardError(absl::UnavailableError("NFS")), kBatchExitRetryable);
}

// ---- the binary ---------------------------------------------------------------------------

class FingerprintBatchCliTest : public ::testing::Test {
 protected:
  struct Result {
    int exit_code = -1;
    std::string out, err;
  };

  Result Run(const std::vector<std::string>& args, const Env& env = {}) {
    return Finish(Start(args, env));
  }
  std::pair<pid_t, int> Start(const std::vector<std::string>& args, const Env& env = {}) {
    const int n = ++spawned_;
    return {Spawn(TRAINSPOTTER_BIN, args, env, dir_.Join(absl::StrCat("out", n, ".txt")),
                  dir_.Join(absl::StrCat("err", n, ".txt"))),
            n};
  }
  Result Finish(std::pair<pid_t, int> started) {
    Result r;
    r.exit_code = Wait(started.first);
    r.out = Slurp(dir_.Join(absl::StrCat("out", started.second, ".txt")));
    r.err = Slurp(dir_.Join(absl::StrCat("err", started.second, ".txt")));
    return r;
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = dir_.Join(name);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  void WriteWav(const std::string& name, double seconds, uint32_t seed) {
    std::vector<int16_t> pcm = testing::SynthesizeMusic(seconds, 11025, 1, seed);
    std::filesystem::create_directories(std::filesystem::path(dir_.Join(name)).parent_path());
    ASSERT_TRUE(testing::WriteBytes(dir_.Join(name), testing::EncodeWav(pcm, 11025, 1)).ok());
  }

  // A CSV manifest of `good` synthesised WAVs (relative paths, metadata columns), with a file
  // that is not audio at row 3 and a missing file at row 7. Returns the track ids by row.
  std::vector<std::string> MakeManifest(int good, std::string* manifest) {
    std::vector<std::string> ids;
    std::string csv = "track_id,path,title,genre\n";
    int wav = 0;
    for (int row = 0; row < good + 2; ++row) {
      std::string id = absl::StrCat("t", row);
      std::string path;
      if (row == 3) {
        path = "audio/notes.txt";
        WriteFile(path, "this is not audio\n");
      } else if (row == 7) {
        path = "audio/missing.wav";
      } else {
        path = absl::StrCat("audio/", wav, ".wav");
        WriteWav(path, 6 + wav % 5, static_cast<uint32_t>(100 + wav));
        ++wav;
      }
      absl::StrAppend(&csv, id, ",", path, ",\"Song ", row, ", live\",genre-", row % 3, "\n");
      ids.push_back(id);
    }
    *manifest = WriteFile("m.csv", csv);
    return ids;
  }

  TempDir dir_;
  int spawned_ = 0;
};

TEST_F(FingerprintBatchCliTest, ParallelShardsCoverEveryRowOnceAndFeedIngest) {
  std::string manifest;
  const std::vector<std::string> ids = MakeManifest(12, &manifest);
  const int kShards = 3;
  const std::string pattern = dir_.Join("parts/part-{shard}.jsonl");
  // Three processes at once, each naming its shard another way.
  std::vector<std::pair<pid_t, int>> running;
  running.push_back(Start(
      {"fingerprint", "--manifest", manifest, "--shard", "0/3", "--out", pattern, "--jobs", "2"}));
  running.push_back(Start({"fingerprint", "--manifest", manifest, "--shard-count", "3", "--out",
                           pattern, "--jobs", "1"},
                          {{"JOB_COMPLETION_INDEX", "1"}}));
  running.push_back(Start(
      {"fingerprint", "--manifest=" + manifest, "--shard-count=3", "--out=" + pattern, "-j", "1"},
      {{"SLURM_ARRAY_TASK_ID", "2"}}));
  for (auto& r : running) {
    Result res = Finish(r);
    EXPECT_EQ(res.exit_code, 0) << res.err;
    EXPECT_TRUE(absl::StrContains(res.err, "done")) << res.err;
  }

  std::map<std::string, int> seen;
  for (int shard = 0; shard < kShards; ++shard) {
    const std::string part = dir_.Join(absl::StrCat("parts/part-", shard, ".jsonl"));
    ASSERT_TRUE(std::filesystem::exists(part)) << part;
    ASSERT_TRUE(std::filesystem::exists(part + ".done")) << part;
    nlohmann::json done = nlohmann::json::parse(Slurp(part + ".done"), nullptr, false);
    ASSERT_TRUE(done.is_object());
    EXPECT_EQ(done["shard"], shard);
    EXPECT_EQ(done["shard_count"], kShards);
    EXPECT_EQ(done["manifest_rows"], ids.size());
    std::vector<nlohmann::json> records = ReadJsonLines(part);
    EXPECT_EQ(done["records"], records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      const nlohmann::json& r = records[i];
      const std::string id = r["track_id"];
      ++seen[id];
      const int row = std::stoi(id.substr(1));
      EXPECT_EQ(row % kShards, shard) << id << " is in the wrong shard";
      EXPECT_EQ(row, shard + kShards * static_cast<int>(i)) << "manifest order";
      if (row == 3 || row == 7) {
        EXPECT_TRUE(r.contains("error")) << r.dump();
        EXPECT_EQ(r["retryable"], false) << r.dump();
        EXPECT_FALSE(r.contains("fingerprint"));
        EXPECT_TRUE(absl::StrContains(r["path"].get<std::string>(),
                                      row == 3 ? "notes.txt" : "missing.wav"));
        continue;
      }
      ASSERT_TRUE(r.contains("fingerprint")) << r.dump();
      EXPECT_EQ(r["title"], absl::StrCat("Song ", row, ", live"));
      EXPECT_EQ(r["genre"], absl::StrCat("genre-", row % 3));
      EXPECT_GT(r["duration"].get<double>(), 5.9);
      // The whole file, exactly as a direct FingerprintFile computes it.
      FingerprintOptions fo;
      fo.max_seconds = 0;
      auto direct = FingerprintFile(r["path"].get<std::string>(), fo);
      ASSERT_TRUE(direct.ok()) << direct.status();
      auto decoded = DecodeFingerprint(r["fingerprint"].get<std::string>());
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(decoded->items, direct->fingerprint.items) << id;
    }
  }
  EXPECT_EQ(seen.size(), ids.size());
  for (const std::string& id : ids) EXPECT_EQ(seen[id], 1) << id;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.Join("parts"))) {
    EXPECT_FALSE(absl::StrContains(entry.path().filename().string(), ".tmp"))
        << "temporary file left: " << entry.path();
  }

  // The parts feed ingest as they are: error records are reported and skipped.
  const std::string catalog = dir_.Join("cat");
  for (int shard = 0; shard < kShards; ++shard) {
    Result r = Run({"ingest", "--catalog", catalog, "--dataset", "ds", "--manifest",
                    dir_.Join(absl::StrCat("parts/part-", shard, ".jsonl"))});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (shard == 0) {
      EXPECT_TRUE(absl::StrContains(r.err, "fingerprinting failed")) << r.err;
    }
  }
  Catalog::OpenOptions oo;
  oo.build_index = false;
  auto cat = Catalog::Open(catalog, oo);
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ((*cat)->num_tracks(), static_cast<int64_t>(ids.size()) - 2);
  auto t5 = (*cat)->GetTrack("ds", "t5");
  ASSERT_TRUE(t5.ok()) << t5.status();
  EXPECT_EQ(t5->metadata.title, "Song 5, live");
  ASSERT_EQ(t5->metadata.extra.size(), 1u);
  EXPECT_EQ(t5->metadata.extra[0], std::make_pair(std::string("genre"), std::string("genre-2")));
  EXPECT_TRUE(absl::IsNotFound((*cat)->GetTrack("ds", "t3").status()));
}

TEST_F(FingerprintBatchCliTest, RerunOfADoneShardIsANoOpUnlessForced) {
  std::string manifest;
  MakeManifest(3, &manifest);
  const std::string part = dir_.Join("p.jsonl");
  Result r = Run({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", part});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first = Slurp(part);
  EXPECT_EQ(ReadJsonLines(part).size(), 5u);
  const auto mtime = std::filesystem::last_write_time(part);
  r = Run({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", part});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "already done")) << r.err;
  EXPECT_EQ(std::filesystem::last_write_time(part), mtime);
  r = Run({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", part, "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Slurp(part), first) << "deterministic output";
  // A part without its marker is incomplete: it is redone.
  std::filesystem::remove(part + ".done");
  WriteFile("p.jsonl", "garbage\n");
  r = Run({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", part});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Slurp(part), first);
}

TEST_F(FingerprintBatchCliTest, PermanentFailuresExit4) {
  std::string manifest;
  MakeManifest(2, &manifest);
  const std::string bad_header = WriteFile("bad.csv", "id,file\n1,a.wav\n");
  const std::string out = dir_.Join("o.jsonl");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--manifest", dir_.Join("nope.csv"), "--shard", "0/2", "--out", out},  // missing
           {"--manifest", bad_header, "--shard", "0/2", "--out", out},             // bad header
           {"--manifest", dir_.Join("m.txt"), "--shard", "0/2", "--out", out},     // bad format
           {"--manifest", manifest, "--shard", "2/2", "--out", out},               // out of range
           {"--manifest", manifest, "--out", out},                                 // no shard
           {"--manifest", manifest, "--shard", "0/2"},                             // no --out
           {"--manifest", manifest, "--shard", "0/2", "--out", out, "--bogus"},
       }) {
    std::vector<std::string> full = {"fingerprint"};
    full.insert(full.end(), args.begin(), args.end());
    Result r = Run(full);
    EXPECT_EQ(r.exit_code, kBatchExitPermanent) << absl::StrJoin(full, " ") << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(out + ".done"));
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  Result help = Run({"fingerprint", "--manifest", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "JOB_COMPLETION_INDEX")) << help.out;
  // The plain fingerprint command is unchanged and points at the batch mode.
  EXPECT_TRUE(absl::StrContains(Run({"fingerprint", "--help"}).out, "--manifest"));
}

TEST_F(FingerprintBatchCliTest, SigtermIsRetryableAndLeavesNothing) {
  // Long files, one core: still busy when the signal comes.
  WriteWav("long.wav", 600, 7);
  std::string jsonl;
  for (int i = 0; i < 40; ++i) {
    absl::StrAppend(&jsonl, "{\"track_id\": \"x", i, "\", \"path\": \"long.wav\"}\n");
  }
  const std::string manifest = WriteFile("m.jsonl", jsonl);
  const std::string out = dir_.Join("parts/p.jsonl");
  auto started = Start({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", out,
                        "--jobs", "1", "--quiet"});
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  bool tmp_seen = false;
  while (!tmp_seen && absl::Now() < give_up) {
    if (std::filesystem::exists(dir_.Join("parts"))) {
      for (const auto& e : std::filesystem::directory_iterator(dir_.Join("parts"))) {
        tmp_seen |= absl::StrContains(e.path().string(), ".tmp.");
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(tmp_seen);
  absl::SleepFor(absl::Milliseconds(200));
  ::kill(started.first, SIGTERM);
  Result r = Finish(started);
  EXPECT_EQ(r.exit_code, kBatchExitRetryable) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "re-run")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".done"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Join("parts"))) << "temporary file left";
}

TEST_F(FingerprintBatchCliTest, JsonLinesManifestPassesFingerprintsThrough) {
  WriteWav("a.wav", 8, 1);
  FingerprintOptions fo;
  fo.max_seconds = 0;
  auto fp = FingerprintFile(dir_.Join("a.wav"), fo);
  ASSERT_TRUE(fp.ok()) << fp.status();
  auto encoded = EncodeFingerprint(fp->fingerprint.items);
  ASSERT_TRUE(encoded.ok());
  const std::string manifest = WriteFile(
      "m.jsonl", absl::StrCat("{\"track_id\": \"a\", \"path\": \"a.wav\", \"bpm\": 120}\n",
                              "{\"track_id\": \"b\", \"fingerprint\": \"", *encoded,
                              "\", \"duration\": 8.0, \"artist\": \"X\"}\n",
                              "{\"track_id\": \"a\", \"path\": \"a.wav\"}\n",  // duplicate
                              "{\"path\": \"a.wav\"}\n"));                     // no track_id
  const std::string out = dir_.Join("p.jsonl");
  Result r = Run({"fingerprint", "--manifest", manifest, "--shard", "0/1", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> recs = ReadJsonLines(out);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0]["fingerprint"], *encoded);
  EXPECT_EQ(recs[0]["bpm"], "120");
  EXPECT_EQ(recs[1]["fingerprint"], *encoded);
  EXPECT_EQ(recs[1]["artist"], "X");
  EXPECT_EQ(recs[1]["duration"], 8.0);
  EXPECT_TRUE(absl::StrContains(recs[2]["error"].get<std::string>(), "duplicate")) << recs[2];
  EXPECT_TRUE(absl::StrContains(recs[3]["error"].get<std::string>(), "track_id")) << recs[3];
}

// ---- docs/batch.md examples ---------------------------------------------------------------

std::string ExampleDir() { return std::string(TRAINSPOTTER_SOURCE_DIR) + "/docs/examples/batch"; }

TEST(BatchDocsExamplesTest, ManifestsParse) {
  for (const char* name : {"manifest.csv", "manifest.jsonl"}) {
    auto reader = ManifestReader::Open(ExampleDir() + "/" + name);
    ASSERT_TRUE(reader.ok()) << name << ": " << reader.status();
    int rows = 0;
    while (true) {
      auto next = (*reader)->Next();
      ASSERT_TRUE(next.ok()) << next.status();
      if (!next->has_value()) break;
      EXPECT_TRUE((**next).status.ok()) << (**next).where << ": " << (**next).status;
      EXPECT_FALSE((**next).row.path.empty());
      ++rows;
    }
    EXPECT_GE(rows, 3) << name;
  }
}

TEST(BatchDocsExamplesTest, KubernetesJobIsConsistent) {
  const std::string yaml = Slurp(ExampleDir() + "/fingerprint-job.yaml");
  ASSERT_FALSE(yaml.empty());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(yaml, m, std::regex(R"(\n  completions: (\d+))")));
  const std::string completions = m[1];
  EXPECT_TRUE(absl::StrContains(yaml, "--shard-count=" + completions));
  EXPECT_TRUE(absl::StrContains(yaml, "completionMode: Indexed"));
  EXPECT_TRUE(absl::StrContains(yaml, "values: [4]"));  // permanent -> FailIndex
  EXPECT_TRUE(absl::StrContains(yaml, "--out=/data/parts/part-{shard}.jsonl"));
  EXPECT_EQ(yaml.find('\t'), std::string::npos) << "YAML forbids tabs";
  // Every option it passes is one the command accepts (a dry run: the manifest is missing).
  std::vector<std::string> args = {TRAINSPOTTER_BIN, "fingerprint"};
  std::regex item(R"(\n            - (--[^\n]+))");
  for (auto it = std::sregex_iterator(yaml.begin(), yaml.end(), item); it != std::sregex_iterator();
       ++it) {
    args.push_back((*it)[1]);
  }
  ASSERT_GE(args.size(), 6u);
  TempDir dir;
  const pid_t pid = Spawn(args[0], {args.begin() + 1, args.end()}, {{"JOB_COMPLETION_INDEX", "3"}},
                          dir.Join("out"), dir.Join("err"));
  EXPECT_EQ(Wait(pid), kBatchExitPermanent);
  const std::string err = Slurp(dir.Join("err"));
  EXPECT_TRUE(absl::StrContains(err, "/data/manifests/fma.csv")) << err;  // parsed, then NOT_FOUND
  EXPECT_TRUE(absl::StrContains(err, "shard 3/" + completions)) << err;
}

// The Slurm script and Spark's pipe script, run as the schedulers would, over real WAVs.
TEST_F(FingerprintBatchCliTest, SlurmAndSparkScriptsRun) {
  std::string manifest;
  const std::vector<std::string> ids = MakeManifest(4, &manifest);
  const std::string bin_dir = std::filesystem::path(TRAINSPOTTER_BIN).parent_path().string();
  const std::string path = bin_dir + ":" + std::getenv("PATH");
  for (int shard = 0; shard < 2; ++shard) {
    const pid_t pid = Spawn("bash", {ExampleDir() + "/fingerprint-slurm.sh"},
                            {{"SLURM_ARRAY_TASK_ID", absl::StrCat(shard)},
                             {"MANIFEST", manifest},
                             {"PARTS", dir_.Join("slurm")},
                             {"SHARDS", "2"},
                             {"PATH", path}},
                            dir_.Join("slurm.out"), dir_.Join("slurm.err"));
    EXPECT_EQ(Wait(pid), 0) << Slurp(dir_.Join("slurm.err"));
  }
  const std::string shards_in = WriteFile("shards.txt", "0\n1\n2\n");
  const pid_t pid = Spawn(
      "bash", {ExampleDir() + "/spark-pipe-shard.sh"},
      {{"MANIFEST", manifest}, {"PARTS", dir_.Join("spark")}, {"SHARDS", "3"}, {"PATH", path}},
      dir_.Join("spark.out"), dir_.Join("spark.err"), shards_in);
  EXPECT_EQ(Wait(pid), 0) << Slurp(dir_.Join("spark.err"));
  std::vector<nlohmann::json> reported = ReadJsonLines(dir_.Join("spark.out"));
  ASSERT_EQ(reported.size(), 3u);
  for (const auto& [folder, shards] : {std::pair<std::string, int>{"slurm", 2}, {"spark", 3}}) {
    std::set<std::string> all;
    size_t records = 0;
    for (int s = 0; s < shards; ++s) {
      const std::string part = dir_.Join(absl::StrCat(folder, "/part-", s, ".jsonl"));
      EXPECT_TRUE(std::filesystem::exists(part + ".done")) << part;
      for (const nlohmann::json& r : ReadJsonLines(part)) {
        all.insert(r["track_id"].get<std::string>());
        ++records;
      }
      if (folder == "spark") {
        EXPECT_EQ(reported[static_cast<size_t>(s)]["exit"], 0);
        EXPECT_EQ(reported[static_cast<size_t>(s)]["part"], part);
      }
    }
    EXPECT_EQ(records, ids.size()) << folder;
    EXPECT_EQ(all, std::set<std::string>(ids.begin(), ids.end())) << folder;
  }
}

}  // namespace
}  // namespace trainspotter::cli
