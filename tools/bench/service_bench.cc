// service_bench: what the gRPC edge costs on top of the catalogue, and how fast it answers.
//
//   service_bench [--tracks N] [--queries Q]          latency/throughput report (stdout)
//   service_bench --make-catalog DIR [--tracks N]     a catalogue for tools/bench-service.sh
//   service_bench --write-wavs DIR --count N          synthetic music files to scan
//   service_bench --fingerprint-dir DIR [--jobs J]    local decode+fingerprint rate (files/s)
//
// Reference fingerprints are pseudo-random (what is measured is the service's overhead and
// throughput, not the index: tools/bench-scale.sh measures that on realistic fingerprints);
// queries are 10 s excerpts with ~5 % of bits flipped, half of them from tracks not in the
// catalogue.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "matcher/catalog.h"
#include "service/client.h"
#include "service/server.h"
#include "tests/testing/audio_synth.h"

namespace trainspotter {
namespace {

constexpr int kClipItems = 81;  // ~10 s

std::vector<uint32_t> TrackItems(int track, int items) {
  std::mt19937 rng(1000003u * static_cast<uint32_t>(track) + 7);
  std::vector<uint32_t> out(items);
  for (uint32_t& item : out) item = rng();
  return out;
}

struct Query {
  std::vector<uint32_t> items;
  bool from_catalogue;
};

std::vector<Query> MakeQueries(int count, int tracks, int track_items) {
  std::mt19937 rng(42);
  std::vector<Query> out;
  for (int q = 0; q < count; ++q) {
    bool member = q % 2 == 0;
    int track = member ? static_cast<int>(rng() % tracks) : tracks + 100000 + q;
    std::vector<uint32_t> items = TrackItems(track, track_items);
    int start = static_cast<int>(rng() % (track_items - kClipItems));
    Query query{{items.begin() + start, items.begin() + start + kClipItems}, member};
    for (uint32_t& v : query.items) {
      for (int k = 0; k < 2; ++k) v ^= 1u << (rng() % 32);  // ~6 % bit errors
    }
    out.push_back(std::move(query));
  }
  return out;
}

absl::Status BuildCatalog(Catalog* catalog, int tracks, int track_items) {
  absl::Status s = catalog->EnsureDataset("bench", "1", "service_bench pseudo-random tracks");
  if (!s.ok()) return s;
  std::vector<TrackInput> batch;
  for (int t = 0; t < tracks; ++t) {
    TrackInput input;
    input.track_id = absl::StrCat("t", t);
    input.metadata.title = absl::StrCat("Track ", t);
    input.metadata.duration_seconds = ItemToSeconds(track_items);
    input.items = TrackItems(t, track_items);
    input.content_hash = absl::StrCat("bench:", t);
    batch.push_back(std::move(input));
    if (batch.size() == 500 || t + 1 == tracks) {
      s = catalog->AddTracks("bench", batch);
      if (!s.ok()) return s;
      batch.clear();
    }
  }
  return absl::OkStatus();
}

// A catalogue that answers at once (one fixed match): isolates the cost of the gRPC edge
// (serialisation, auth, metrics, request log, thread hops) from the matcher's.
class InstantCatalog : public Catalog {
 public:
  absl::Status EnsureDataset(const std::string&, const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<bool> HasTrack(const std::string&, const std::string&,
                                const std::string&) const override {
    return false;
  }
  absl::Status AddTracks(const std::string&, absl::Span<const TrackInput>) override {
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> Delete(const std::string&, const std::string&) override { return 0; }
  absl::StatusOr<std::vector<DatasetInfo>> ListDatasets() const override {
    return std::vector<DatasetInfo>{};
  }
  absl::StatusOr<TrackInfo> GetTrack(const std::string&, const std::string&) const override {
    return absl::NotFoundError("none");
  }
  absl::StatusOr<CatalogMatchResult> Match(const CatalogQuery& query) const override {
    CatalogMatchResult result;
    result.member = true;
    CatalogMatch m;
    m.track.dataset = "bench";
    m.track.version = "1";
    m.track.track_id = "t1";
    m.track.metadata.title = "Track";
    m.track.metadata.extra = {{"genre", "jazz"}};
    m.segment.member = true;
    m.segment.confidence = 1;
    m.segment.false_match_probability = 1e-12;
    m.segment.query_end = ItemToSeconds(static_cast<double>(query.items.size()));
    result.matches.push_back(m);
    return result;
  }
  int64_t num_tracks() const override { return 0; }
  double hours() const override { return 0; }
  int64_t num_unindexed() const override { return 0; }
  absl::Status CheckIntegrity() const override { return absl::OkStatus(); }
  absl::Status Compact() override { return absl::OkStatus(); }
};

std::string LoadAverage() {
  FILE* f = std::fopen("/proc/loadavg", "r");
  char buf[64] = {0};
  if (f != nullptr) {
    if (std::fgets(buf, sizeof(buf), f) == nullptr) buf[0] = 0;
    std::fclose(f);
  }
  std::string s(buf);
  return s.substr(0, s.find(' '));
}

struct Stats {
  double p50_ms, p90_ms, p99_ms;
};
Stats Percentiles(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))];
  };
  return {at(0.50), at(0.90), at(0.99)};
}

int RunLatencyReport(int tracks, int track_items, int queries, int window, bool instant) {
  std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/service_bench_", ::getpid());
  absl::StatusOr<std::unique_ptr<Catalog>> catalog;
  if (instant) {
    catalog = std::unique_ptr<Catalog>(new InstantCatalog());
    std::printf("catalogue: instant (answers without matching: the gRPC edge alone)\n");
  } else {
    catalog = Catalog::Open(dir, Catalog::Mode::kReadWrite);
    if (!catalog.ok()) {
      std::fprintf(stderr, "%s\n", catalog.status().ToString().c_str());
      return 1;
    }
    absl::Time t0 = absl::Now();
    if (absl::Status s = BuildCatalog(catalog->get(), tracks, track_items); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("catalogue: %d tracks x %.0f s (%.1f h), built in %.1f s\n", tracks,
                ItemToSeconds(track_items), (*catalog)->hours(),
                absl::ToDoubleSeconds(absl::Now() - t0));
  }
  std::vector<Query> qs = MakeQueries(queries, tracks, track_items);

  // 1. The catalogue alone, in process.
  std::vector<double> local_ms;
  int local_members = 0;
  for (const Query& q : qs) {
    CatalogQuery query;
    query.items = q.items;
    absl::Time start = absl::Now();
    auto result = (*catalog)->Match(query);
    local_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (result.ok() && result->member) ++local_members;
  }

  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.log_sink = [](absl::string_view) {};  // lines are still formatted, just not written
  auto server = Server::Start(options, catalog->get());
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  ClientOptions client_options;
  client_options.address = (*server)->address();
  auto client = TrainspotterClient::Connect(client_options);
  (void)(*client)->WaitForConnected(absl::Seconds(5));

  // 2. The same queries through MatchFingerprint, one at a time over loopback TCP.
  std::vector<double> grpc_ms;
  int grpc_members = 0;
  for (const Query& q : qs) {
    RemoteQuery query;
    query.fingerprint.items = q.items;
    absl::Time start = absl::Now();
    auto outcome = (*client)->MatchFingerprint(query);
    grpc_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (outcome.ok() && outcome->result.member) ++grpc_members;
  }

  // 3. Throughput on MatchStream (as `scan` uses it).
  std::atomic<int> answered{0};
  absl::Time stream_start = absl::Now();
  {
    BulkMatcher bulk(client->get(), window,
                     [&](uint64_t, absl::StatusOr<QueryOutcome>) { ++answered; });
    for (size_t i = 0; i < qs.size(); ++i) {
      RemoteQuery query;
      query.fingerprint.items = qs[i].items;
      (void)bulk.Submit(i, std::move(query));
    }
    (void)bulk.Finish();
  }
  double stream_qps = answered / absl::ToDoubleSeconds(absl::Now() - stream_start);

  // 4. Throughput of concurrent unary calls (4 client threads).
  std::atomic<size_t> next{0};
  absl::Time unary_start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < qs.size(); i = next++) {
        RemoteQuery query;
        query.fingerprint.items = qs[i].items;
        (void)(*client)->MatchFingerprint(query);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double unary_qps = qs.size() / absl::ToDoubleSeconds(absl::Now() - unary_start);

  Stats local = Percentiles(local_ms), remote = Percentiles(grpc_ms);
  std::printf("queries: %d (10 s clips, ~6%% bit errors; half from the catalogue)\n", queries);
  std::printf("%-34s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  members %d\n",
              "Catalog::Match (in process)", local.p50_ms, local.p90_ms, local.p99_ms,
              local_members);
  std::printf("%-34s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  members %d\n",
              "MatchFingerprint (gRPC, loopback)", remote.p50_ms, remote.p90_ms, remote.p99_ms,
              grpc_members);
  std::printf("service overhead at p50: %.3f ms\n", remote.p50_ms - local.p50_ms);
  std::printf("MatchStream throughput (window %d): %.0f queries/s\n", window, stream_qps);
  std::printf("MatchFingerprint throughput (4 client threads): %.0f queries/s\n", unary_qps);
  std::printf("cores: %u, load average at start: %s\n", std::thread::hardware_concurrency(),
              LoadAverage().c_str());
  (*server)->Shutdown(absl::Seconds(5));
  server->reset();
  catalog->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

int MakeCatalog(const std::string& dir, int tracks, int track_items) {
  auto catalog = Catalog::Open(dir, Catalog::Mode::kReadWrite);
  absl::Status s =
      catalog.ok() ? BuildCatalog(catalog->get(), tracks, track_items) : catalog.status();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

int WriteWavs(const std::string& dir, int count, double seconds) {
  std::filesystem::create_directories(dir);
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        auto samples = testing::SynthesizeMusic(seconds, 22050, 1, 5000 + i);
        (void)testing::WriteBytes(absl::StrFormat("%s/song%05d.wav", dir, i),
                                  testing::EncodeWav(samples, 22050, 1));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return 0;
}

int FingerprintDir(const std::string& dir, int jobs) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < files.size(); i = next++) {
        FingerprintOptions options;
        options.max_seconds = 0;
        if (!FingerprintFile(files[i], options).ok()) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("local decode+fingerprint: %zu files in %.2f s = %.1f files/s (%d jobs, %d failed)\n",
              files.size(), seconds, files.size() / seconds, jobs, failed.load());
  return 0;
}

}  // namespace
}  // namespace trainspotter

int main(int argc, char** argv) {
  CLI::App app{"Benchmark of trainspotter's gRPC service"};
  int tracks = 2000, queries = 1000, window = 32, count = 1000, jobs = 2;
  double track_seconds = 180, wav_seconds = 10;
  std::string make_catalog, write_wavs, fingerprint_dir;
  bool instant = false;
  app.add_flag("--instant", instant, "Use a catalogue that answers at once (edge cost only)");
  app.add_option("--tracks", tracks, "Reference tracks")->capture_default_str();
  app.add_option("--track-seconds", track_seconds, "Length of each reference")
      ->capture_default_str();
  app.add_option("--queries", queries, "Queries per measurement")->capture_default_str();
  app.add_option("--window", window, "MatchStream window")->capture_default_str();
  app.add_option("--make-catalog", make_catalog, "Only build a catalogue in DIR");
  app.add_option("--write-wavs", write_wavs, "Only write --count synthetic WAV files to DIR");
  app.add_option("--count", count, "Files for --write-wavs")->capture_default_str();
  app.add_option("--wav-seconds", wav_seconds, "Length of each file")->capture_default_str();
  app.add_option("--fingerprint-dir", fingerprint_dir, "Only time local fingerprinting of DIR");
  app.add_option("--jobs", jobs, "Threads for --fingerprint-dir")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  int items = static_cast<int>(track_seconds * trainspotter::kItemsPerSecond);
  if (!make_catalog.empty()) return trainspotter::MakeCatalog(make_catalog, tracks, items);
  if (!write_wavs.empty()) return trainspotter::WriteWavs(write_wavs, count, wav_seconds);
  if (!fingerprint_dir.empty()) return trainspotter::FingerprintDir(fingerprint_dir, jobs);
  return trainspotter::RunLatencyReport(tracks, items, queries, window, instant);
}
