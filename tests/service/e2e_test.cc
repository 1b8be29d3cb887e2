// End to end: the real `trainspotter` binary serving on a free loopback port, ingest through the
// API, `trainspotter scan` over it (fingerprints and --upload), auth, limits, metrics, health,
// SIGTERM, and a server restart in the middle of a scan. Audio is synthesised (no fixture
// needed); the binary comes from the same build (TRAINSPOTTER_CLI).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "service/client.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/audio_synth.h"

namespace trainspotter {
namespace {

constexpr int kRate = 22050;
using Json = nlohmann::ordered_json;

std::string Cli() { return TRAINSPOTTER_CLI; }

// A child process; stdout goes to a pipe (serve) or a file, stderr to a file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& stdout_file,
        const std::string& stderr_file) {
    int fds[2] = {-1, -1};
    if (stdout_file.empty()) {
      EXPECT_EQ(::pipe(fds), 0);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = stdout_file.empty()
                    ? fds[1]
                    : ::open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (stdout_file.empty()) {
      ::close(fds[1]);
      stdout_fd_ = fds[0];
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  // The first stdout line, or "" after `timeout`.
  std::string ReadLine(absl::Duration timeout) {
    std::string line;
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char c;
      if (::read(stdout_fd_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line.push_back(c);
    }
    return "";
  }

  // Sends `sig` (0 = none) and waits up to `timeout` for the exit code (-1: killed / timeout).
  int Wait(int sig, absl::Duration timeout) {
    if (sig != 0) ::kill(pid_, sig);
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return -1;
  }
  bool Running() {
    int status;
    return !exited_ && ::waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  bool exited_ = false;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Json> ReadReport(const std::string& path) {
  std::vector<Json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(Json::parse(line));
  return lines;
}

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(Cli())) GTEST_SKIP() << "no trainspotter binary at " << Cli();
    namespace fs = std::filesystem;
    fs::create_directories(tmp_.File("refs"));
    fs::create_directories(tmp_.File("scan"));
    keys_ = WriteKeysFile(tmp_);
    std::ofstream(tmp_.File("query.key")) << kQueryKey << "\n";
    // Three reference tracks; the scan folder holds a clip of each (cut at 8 s), two unrelated
    // pieces and a file that is not audio.
    for (int i = 1; i <= 3; ++i) {
      std::vector<int16_t> music = testing::SynthesizeMusic(35, kRate, 1, 100 + i);
      ASSERT_TRUE(testing::WriteBytes(tmp_.File(absl::StrCat("refs/t", i, ".wav")),
                                      testing::EncodeWav(music, kRate, 1))
                      .ok());
      std::vector<int16_t> clip(music.begin() + 8 * kRate, music.begin() + 20 * kRate);
      ASSERT_TRUE(testing::WriteBytes(tmp_.File(absl::StrCat("scan/clip", i, ".wav")),
                                      testing::EncodeWav(clip, kRate, 1))
                      .ok());
    }
    for (int i = 1; i <= 2; ++i) {
      ASSERT_TRUE(testing::WriteBytes(
                      tmp_.File(absl::StrCat("scan/other", i, ".wav")),
                      testing::EncodeWav(testing::SynthesizeMusic(12, kRate, 1, 900 + i), kRate, 1))
                      .ok());
    }
    ASSERT_TRUE(testing::WriteBytes(tmp_.File("scan/broken.mp3"), std::string(5000, 'x')).ok());
  }

  std::unique_ptr<Child> StartServer(const std::vector<std::string>& extra = {},
                                     const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = {
        Cli(),    "serve", "--catalog",     tmp_.File("catalog"), "--listen", listen,
        "--keys", keys_,   "--ingest-root", tmp_.File("refs"),    "--grace",  "5"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = std::make_unique<Child>(args, "", tmp_.File("serve.log"));
    std::string line = child->ReadLine(absl::Seconds(30));
    EXPECT_TRUE(absl::StartsWith(line, "listening on 127.0.0.1:"))
        << line << "\n"
        << ReadAll(tmp_.File("serve.log"));
    address_ = line.substr(std::string("listening on ").size());
    return child;
  }

  std::shared_ptr<grpc::Channel> Channel() {
    if (tls_ca_.empty()) return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadAll(tls_ca_);
    return grpc::CreateChannel(address_, grpc::SslCredentials(ssl));
  }

  void IngestReferences() {
    auto channel = Channel();
    auto stub = v1::Catalog::NewStub(channel);
    v1::IngestTracksResponse response;
    auto context = Context(kAdminKey, absl::Seconds(60));
    auto writer = stub->IngestTracks(context.get(), &response);
    v1::IngestTracksRequest m;
    m.mutable_header()->set_dataset("synth");
    m.mutable_header()->set_version("1");
    ASSERT_TRUE(writer->Write(m));
    for (int i = 1; i <= 3; ++i) {
      v1::IngestTracksRequest t;
      t.mutable_track()->set_track_id(absl::StrCat("t", i));
      t.mutable_track()->mutable_metadata()->set_title(absl::StrCat("Title ", i));
      t.mutable_track()->mutable_metadata()->set_license("CC0");
      t.mutable_track()->set_server_path(absl::StrCat("t", i, ".wav"));
      ASSERT_TRUE(writer->Write(t));
    }
    v1::IngestTracksRequest escape;
    escape.mutable_track()->set_track_id("escape");
    escape.mutable_track()->set_server_path("../scan/clip1.wav");
    ASSERT_TRUE(writer->Write(escape));
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.added(), 3) << response.DebugString();
    ASSERT_EQ(response.errors_size(), 1);
    EXPECT_EQ(response.errors(0).code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  }

  int Scan(const std::vector<std::string>& extra, std::string* output) {
    std::string command = absl::StrCat(testing::ShellQuote(Cli()), " scan --server ", address_,
                                       " --key-file ", tmp_.File("query.key"), " -q");
    for (const std::string& a : extra) absl::StrAppend(&command, " ", testing::ShellQuote(a));
    absl::StrAppend(&command, " 2>&1");
    testing::CommandResult result = testing::RunCommand(command);
    *output = result.output;
    return result.exit_code;
  }

  void CheckReport(const std::vector<Json>& lines) {
    std::map<std::string, Json> by_file;
    for (const Json& line : lines) {
      std::vector<std::string> keys;
      for (const auto& item : line.items()) keys.push_back(item.key());
      EXPECT_EQ(keys, (std::vector<std::string>{"file", "duration", "member", "error", "matches"}));
      std::string name = std::filesystem::path(line["file"].get<std::string>()).filename();
      EXPECT_EQ(by_file.count(name), 0u) << "duplicate line for " << name;
      by_file[name] = line;
    }
    ASSERT_EQ(by_file.size(), 6u);
    for (int i = 1; i <= 3; ++i) {
      const Json& line = by_file[absl::StrCat("clip", i, ".wav")];
      EXPECT_EQ(line["member"], true) << line.dump();
      ASSERT_FALSE(line["matches"].empty());
      const Json& m = line["matches"][0];
      EXPECT_EQ(m["dataset"], "synth");
      EXPECT_EQ(m["track_id"], absl::StrCat("t", i));
      EXPECT_EQ(m["title"], absl::StrCat("Title ", i));
      EXPECT_EQ(m["metadata"]["license"], "CC0");
      EXPECT_NEAR(m["ref_start"].get<double>() - m["query_start"].get<double>(), 8.0, 0.5);
      EXPECT_NEAR(line["duration"].get<double>(), 12.0, 0.1);
      EXPECT_TRUE(line["error"].is_null());
    }
    for (int i = 1; i <= 2; ++i) {
      EXPECT_EQ(by_file[absl::StrCat("other", i, ".wav")]["member"], false);
    }
    const Json& broken = by_file["broken.mp3"];
    EXPECT_EQ(broken["member"], false);
    EXPECT_TRUE(absl::StartsWith(broken["error"].get<std::string>(), "INVALID_ARGUMENT: "))
        << broken.dump();
  }

  testing::ScopedTempDir tmp_;
  std::string keys_;
  std::string address_;
  std::string tls_ca_;
};

TEST_F(EndToEndTest, ServeIngestScanResumeUploadAndStop) {
  auto server = StartServer({"--metrics", "127.0.0.1:0", "--max-upload-mb", "1"});
  ClientOptions options;
  options.address = address_;
  auto client = TrainspotterClient::Connect(options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<bool> serving = (*client)->Serving();
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
  IngestReferences();

  // Fingerprints over MatchStream.
  std::string output;
  std::string report = tmp_.File("report.jsonl");
  int code = Scan({"--out", report, "--csv", tmp_.File("summary.csv"), tmp_.File("scan")}, &output);
  EXPECT_EQ(code, 1) << output;  // broken.mp3 is unreadable
  EXPECT_NE(output.find("files scanned: 6"), std::string::npos) << output;
  EXPECT_NE(output.find("members: 3"), std::string::npos) << output;
  EXPECT_NE(output.find("  synth: 3"), std::string::npos) << output;
  EXPECT_NE(output.find("unreadable: 1"), std::string::npos) << output;
  CheckReport(ReadReport(report));
  std::string csv = ReadAll(tmp_.File("summary.csv"));
  EXPECT_TRUE(absl::StartsWith(csv, "file,member,duration,error,dataset"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);

  // A report that exists is not clobbered; --resume adds nothing when all is done.
  code = Scan({"--out", report, tmp_.File("scan")}, &output);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("--resume"), std::string::npos);
  code = Scan({"--out", report, "--resume", tmp_.File("scan")}, &output);
  EXPECT_NE(output.find("files scanned: 6"), std::string::npos) << output;
  EXPECT_EQ(ReadReport(report).size(), 6u);

  // A report cut short by a crash: the partial line is dropped and its file redone.
  {
    std::string text = ReadAll(report);
    size_t cut = text.rfind('\n', text.size() - 2);
    std::ofstream(report, std::ios::trunc) << text.substr(0, cut + 1) << "{\"file\": \"trunc";
  }
  code = Scan({"--out", report, "--resume", tmp_.File("scan")}, &output);
  CheckReport(ReadReport(report));

  // --upload sends the files; the server decodes them.
  std::string uploaded = tmp_.File("upload.jsonl");
  code = Scan({"--upload", "--out", uploaded, tmp_.File("scan")}, &output);
  EXPECT_EQ(code, 1) << output;
  CheckReport(ReadReport(uploaded));

  // Oversized upload: RESOURCE_EXHAUSTED in the report, the scan goes on.
  ASSERT_TRUE(
      testing::WriteBytes(tmp_.File("big.wav"),
                          testing::EncodeWav(testing::SynthesizeMusic(30, 44100, 2, 5), 44100, 2))
          .ok());
  code = Scan({"--upload", "--out", tmp_.File("big.jsonl"), tmp_.File("big.wav")}, &output);
  std::vector<Json> big = ReadReport(tmp_.File("big.jsonl"));
  ASSERT_EQ(big.size(), 1u) << output;
  EXPECT_TRUE(absl::StartsWith(big[0]["error"].get<std::string>(), "RESOURCE_EXHAUSTED"))
      << big[0].dump();

  // A wrong key stops the scan with a clear message and leaves the report empty.
  std::ofstream(tmp_.File("bad.key")) << "not-a-valid-key-0123456789\n";
  std::string bad_command = absl::StrCat(testing::ShellQuote(Cli()), " scan -q --server ", address_,
                                         " --key-file ", tmp_.File("bad.key"), " --out ",
                                         tmp_.File("bad.jsonl"), " ", tmp_.File("scan"), " 2>&1");
  testing::CommandResult bad = testing::RunCommand(bad_command);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("UNAUTHENTICATED"), std::string::npos) << bad.output;

  // Metrics over HTTP, and a JSON log line per call on stderr.
  std::string log = ReadAll(tmp_.File("serve.log"));
  size_t at = log.find("metrics on port ");
  ASSERT_NE(at, std::string::npos) << log;
  int metrics_port = std::atoi(log.c_str() + at + 16);
  std::string metrics = HttpGet(metrics_port, "/metrics");
  EXPECT_NE(metrics.find("trainspotter_requests_total{code=\"OK\",method=\"MatchStream\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("trainspotter_stream_queries_total"), std::string::npos);
  EXPECT_NE(metrics.find("trainspotter_catalog_tracks 3"), std::string::npos);
  bool saw_stream = false;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StartsWith(line, "{")) continue;
    Json parsed = Json::parse(line);
    EXPECT_TRUE(parsed.contains("method") && parsed.contains("peer") && parsed.contains("key") &&
                parsed.contains("code") && parsed.contains("latency_ms"));
    if (parsed["method"] == "MatchStream" && parsed["code"] == "OK") {
      saw_stream = true;
      EXPECT_EQ(parsed["key"], "label-a");
    }
    EXPECT_EQ(std::string(line).find(kQueryKey), std::string::npos);
  }
  EXPECT_TRUE(saw_stream);

  // SIGTERM: clean exit 0.
  EXPECT_EQ(server->Wait(SIGTERM, absl::Seconds(20)), 0)
      << ReadAll(tmp_.File("serve.log")).substr(0, 20000);
  EXPECT_NE(ReadAll(tmp_.File("serve.log")).find("stopped"), std::string::npos);
}

// Audio played `speed` times as fast (pitch and tempo together, as a resampled copy), by
// linear interpolation.
std::vector<int16_t> ChangeSpeed(const std::vector<int16_t>& in, double speed) {
  std::vector<int16_t> out;
  for (double t = 0; t + 1 < static_cast<double>(in.size()); t += speed) {
    const size_t i = static_cast<size_t>(t);
    const double f = t - static_cast<double>(i);
    out.push_back(static_cast<int16_t>(std::lround((1 - f) * in[i] + f * in[i + 1])));
  }
  return out;
}

// `trainspotter scan` (fingerprints, and --upload) gives every file exactly the JSON line
// `trainspotter query --json` gives it on the server's catalogue: same variants, same answers.
// The folder holds a slowed-down clip that only the query's speed variants find, so a scan that
// sent the plain fingerprint alone would differ.
TEST_F(EndToEndTest, ScanAnswersAsQueryDoes) {
  std::filesystem::create_directories(tmp_.File("variants"));
  std::vector<int16_t> music = testing::SynthesizeMusic(35, kRate, 1, 103);  // refs/t3.wav
  // 6 s: a longer slowed clip has enough evidence in segments short enough to hold alignment.
  std::vector<int16_t> clip(music.begin() + 8 * kRate, music.begin() + 14 * kRate);
  ASSERT_TRUE(testing::WriteBytes(tmp_.File("variants/slow.wav"),
                                  testing::EncodeWav(ChangeSpeed(clip, 0.98), kRate, 1))
                  .ok());
  for (const char* name : {"clip1.wav", "clip2.wav", "other1.wav", "broken.mp3"}) {
    std::filesystem::copy_file(tmp_.File(absl::StrCat("scan/", name)),
                               tmp_.File(absl::StrCat("variants/", name)));
  }
  auto server = StartServer();
  IngestReferences();

  std::string output;
  Scan({"--out", tmp_.File("variants.jsonl"), tmp_.File("variants")}, &output);
  std::vector<Json> scanned = ReadReport(tmp_.File("variants.jsonl"));
  Scan({"--upload", "--out", tmp_.File("uploaded.jsonl"), tmp_.File("variants")}, &output);
  std::vector<Json> uploaded = ReadReport(tmp_.File("uploaded.jsonl"));
  ASSERT_EQ(scanned.size(), 5u) << output;
  ASSERT_EQ(uploaded.size(), 5u) << output;

  // The catalogue the server writes may be read by `query` at the same time.
  std::string command =
      absl::StrCat(testing::ShellQuote(Cli()), " query --json --catalog ", tmp_.File("catalog"));
  for (const Json& line : scanned) {
    absl::StrAppend(&command, " ", testing::ShellQuote(line["file"].get<std::string>()));
  }
  testing::CommandResult queried = testing::RunCommand(absl::StrCat(command, " 2>/dev/null"));
  std::map<std::string, Json> expected;
  for (absl::string_view line : absl::StrSplit(queried.output, '\n', absl::SkipEmpty())) {
    Json parsed = Json::parse(line);
    expected[parsed["file"].get<std::string>()] = parsed;
  }
  ASSERT_EQ(expected.size(), 5u) << queried.output;
  for (const std::vector<Json>* report : {&scanned, &uploaded}) {
    for (const Json& line : *report) {
      std::string file = line["file"].get<std::string>();
      ASSERT_EQ(expected.count(file), 1u) << file;
      if (report == &uploaded && absl::EndsWith(file, "broken.mp3")) {
        // The same failure; the message is the server's decoder's.
        EXPECT_FALSE(line["error"].is_null());
        EXPECT_EQ(line["member"], false);
        continue;
      }
      EXPECT_EQ(line, expected[file]) << (report == &scanned ? "scan" : "scan --upload");
    }
  }
  // The premise: the plain fingerprint alone (`query --fingerprint` has no audio to make
  // variants from) does not find the slowed clip. If a stronger decision ever finds it, make
  // the clip harder (shorter, or further from 1.0) rather than drop this.
  testing::CommandResult plain = testing::RunCommand(
      absl::StrCat(testing::ShellQuote(Cli()), " fingerprint --json ",
                   testing::ShellQuote(tmp_.File("variants/slow.wav")), " 2>/dev/null"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  testing::CommandResult plain_answer = testing::RunCommand(
      absl::StrCat(testing::ShellQuote(Cli()), " query --json --catalog ", tmp_.File("catalog"),
                   " --fingerprint ",
                   testing::ShellQuote(Json::parse(plain.output)["fingerprint"].get<std::string>()),
                   " 2>/dev/null"));
  ASSERT_EQ(Json::parse(plain_answer.output)["member"], false) << plain_answer.output;

  const Json& slow = expected[tmp_.File("variants/slow.wav")];
  ASSERT_EQ(slow["member"], true) << slow.dump();
  EXPECT_EQ(slow["matches"][0]["track_id"], "t3");
  EXPECT_NE(slow["matches"][0]["speed"].get<double>(), 1.0) << "found without a variant";
  EXPECT_EQ(server->Wait(SIGTERM, absl::Seconds(20)), 0);
}

TEST_F(EndToEndTest, ScanSurvivesServerRestart) {
  // Many copies of the clips, and a rate limit, so that the scan is still running when the
  // server goes down.
  for (int copy = 0; copy < 6; ++copy) {
    for (const char* name : {"clip1.wav", "clip2.wav", "clip3.wav", "other1.wav"}) {
      std::filesystem::copy_file(tmp_.File(absl::StrCat("scan/", name)),
                                 tmp_.File(absl::StrCat("scan/copy", copy, "-", name)));
    }
  }
  const std::vector<std::string> limited = {"--rate-limit", "8", "--rate-burst", "1"};
  auto server = StartServer(limited);
  IngestReferences();
  std::string port = address_.substr(address_.rfind(':') + 1);

  std::string report = tmp_.File("restart.jsonl");
  Child scan({Cli(), "scan", "-q", "--server", address_, "--key-file", tmp_.File("query.key"),
              "--out", report, "--retry-for", "60", "--jobs", "2", tmp_.File("scan")},
             tmp_.File("scan.out"), tmp_.File("scan.err"));
  // Wait for some answers, then restart the server on the same port.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (ReadReport(report).size() < 4 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  ASSERT_GE(ReadReport(report).size(), 4u);
  EXPECT_EQ(server->Wait(SIGTERM, absl::Seconds(20)), 0);
  size_t during = ReadReport(report).size();
  EXPECT_LT(during, 30u) << "scan finished before the restart; the test proves nothing";
  absl::SleepFor(absl::Milliseconds(700));
  server = StartServer(limited, absl::StrCat("127.0.0.1:", port));

  int code = scan.Wait(0, absl::Seconds(120));
  EXPECT_EQ(code, 1) << ReadAll(tmp_.File("scan.err"));  // broken.mp3
  std::vector<Json> lines = ReadReport(report);
  std::set<std::string> files;
  int members = 0;
  for (const Json& line : lines) {
    EXPECT_TRUE(files.insert(line["file"].get<std::string>()).second)
        << "duplicate: " << line.dump();
    if (line["member"] == true) ++members;
  }
  EXPECT_EQ(lines.size(), 30u);
  EXPECT_EQ(members, 3 + 6 * 3);
  EXPECT_NE(ReadAll(tmp_.File("scan.out")).find("files scanned: 30"), std::string::npos);
  EXPECT_EQ(server->Wait(SIGTERM, absl::Seconds(20)), 0);
}

TEST_F(EndToEndTest, KeyToolsAndRefusals) {
  testing::CommandResult hashed =
      testing::RunCommand(absl::StrCat("echo ", kAdminKey, " | ", testing::ShellQuote(Cli()),
                                       " serve --hash-key - --key-name ops --key-role admin"));
  EXPECT_EQ(hashed.exit_code, 0);
  EXPECT_EQ(hashed.output, absl::StrCat(*FormatKeyLine("ops", "admin", kAdminKey), "\n"));

  testing::CommandResult fresh = testing::RunCommand(
      absl::StrCat(testing::ShellQuote(Cli()), " serve --new-key alice --key-role query 2>",
                   tmp_.File("newkey.err")));
  EXPECT_EQ(fresh.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(fresh.output, "alice query ")) << fresh.output;
  EXPECT_TRUE(KeyStore::Parse(fresh.output, "new").ok());

  // No keys on a non-loopback address: refused, with the reason.
  testing::CommandResult open =
      testing::RunCommand(absl::StrCat(testing::ShellQuote(Cli()), " serve --catalog ",
                                       tmp_.File("cat2"), " --listen 0.0.0.0:0 2>&1"));
  EXPECT_EQ(open.exit_code, 1);
  EXPECT_NE(open.output.find("without API keys"), std::string::npos) << open.output;

  // No keys on loopback: allowed, and it says so loudly.
  Child loopback({Cli(), "serve", "--catalog", tmp_.File("cat3"), "--listen", "127.0.0.1:0"}, "",
                 tmp_.File("open.log"));
  EXPECT_TRUE(absl::StartsWith(loopback.ReadLine(absl::Seconds(30)), "listening on 127.0.0.1:"));
  EXPECT_EQ(loopback.Wait(SIGINT, absl::Seconds(20)), 0) << ReadAll(tmp_.File("open.log"));
  EXPECT_NE(ReadAll(tmp_.File("open.log")).find("WARNING: no --keys"), std::string::npos);
}

TEST_F(EndToEndTest, TlsWithSelfSignedCertificate) {
  if (!testing::HaveProgram("openssl")) GTEST_SKIP() << "openssl CLI not installed";
  testing::CommandResult made = testing::RunCommand(
      absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
                   "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ",
                   tmp_.File("tls.key"), " -out ", tmp_.File("tls.pem"), " 2>&1"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto server =
      StartServer({"--tls-cert", tmp_.File("tls.pem"), "--tls-key", tmp_.File("tls.key")});
  tls_ca_ = tmp_.File("tls.pem");
  IngestReferences();

  ClientOptions options;
  options.address = address_;
  options.retry_for = absl::ZeroDuration();
  auto plaintext = TrainspotterClient::Connect(options);
  EXPECT_FALSE((*plaintext)->Serving("", absl::Seconds(3)).ok());  // TLS only
  options.tls_ca_file = tls_ca_;
  auto secure = TrainspotterClient::Connect(options);
  absl::StatusOr<bool> serving = (*secure)->Serving();
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);

  std::string output;
  int code = Scan(
      {"--tls-ca", tls_ca_, "--out", tmp_.File("tls.jsonl"), tmp_.File("scan/clip2.wav")}, &output);
  EXPECT_EQ(code, 0) << output;
  std::vector<Json> lines = ReadReport(tmp_.File("tls.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["member"], true);
  EXPECT_EQ(server->Wait(SIGTERM, absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace trainspotter
