// scale_bench: how a catalogue behaves at size (tools/bench-scale.sh runs it on 10k, 100k, ...
// track catalogues made by `trainspotter synth`).
//
// Measures: time to open with the index (Catalog::Open builds the Matcher from the database),
// resident memory after open (VmRSS, and per indexed hour of audio), bytes on disk; then runs a
// labelled query set (`synth --queries-out`): Catalog::Match latency per query on one thread
// (p50/p90/p99/max), throughput on --threads threads, hit rate (members whose top match is the
// expected track) and false positives (non-members answered `member`).
//
// Prints a human summary on stderr and one JSON object on stdout.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fingerprint/fingerprinter.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"

namespace trainspotter {
namespace {

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if unavailable.
int64_t ProcStatusKib(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      int64_t v = -1;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      return absl::SimpleAtoi(digits, &v) ? v : -1;
    }
  }
  return -1;
}

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

struct Query {
  std::string id, kind, expected;  // expected empty: non-member
  std::vector<uint32_t> items;
  double ber = 0;
};

// CPU seconds of the whole process (all threads, FAISS's OpenMP workers too): on a shared machine
// wall-clock latency includes waiting for a core, CPU time does not.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Outcome {
  double ms = 0;
  double cpu_ms = 0;  // valid when run alone (single-thread pass)
  bool ok = false, member = false, top_is_expected = false;
};

Outcome RunQuery(const Catalog& catalog, const Query& q, bool exhaustive = false) {
  CatalogQuery cq;
  cq.items = q.items;
  cq.exhaustive = exhaustive;
  cq.max_matches = 5;
  Outcome o;
  const absl::Time t0 = absl::Now();
  const double cpu0 = ProcessCpuSeconds();
  absl::StatusOr<CatalogMatchResult> r = catalog.Match(cq);
  o.cpu_ms = (ProcessCpuSeconds() - cpu0) * 1000;
  o.ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!r.ok()) {
    std::fprintf(stderr, "query %s: %s\n", q.id.c_str(), std::string(r.status().message()).c_str());
    return o;
  }
  o.ok = true;
  o.member = r->member;
  o.top_is_expected = r->member && !r->matches.empty() && !q.expected.empty() &&
                      r->matches[0].track.track_id == q.expected;
  return o;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

int Main(int argc, char** argv) {
  CLI::App app(
      "scale_bench: open time, memory, disk, query latency/throughput/accuracy of a "
      "catalogue (see tools/bench-scale.sh)");
  std::string catalog_dir, queries_path;
  int threads = 2;
  int64_t max_queries = 0;
  app.add_option("--catalog", catalog_dir, "catalogue folder")->required();
  app.add_option("--queries", queries_path, "query set from `trainspotter synth --queries-out`");
  app.add_option("--threads", threads, "threads for the throughput run")->capture_default_str();
  app.add_option("--max-queries", max_queries,
                 "use only N queries, half members, half not (0 = all)");
  int64_t exhaustive_queries = 0;
  app.add_option("--exhaustive-queries", exhaustive_queries,
                 "also answer the first N member queries by exhaustive scan, and report how many "
                 "of its hits the approximate index found too");
  MatcherOptions matcher_options;
  app.add_option("--probe-fraction", matcher_options.approximate_probe_fraction,
                 "postings read per query window, as a fraction of the index")
      ->capture_default_str();
  app.add_option("--approximate-stride", matcher_options.approximate_stride,
                 "index one reference window every N items (4 or 8)")
      ->capture_default_str();
  app.add_option("--approximate-min-items", matcher_options.approximate_min_items,
                 "use the approximate index from this many items on")
      ->capture_default_str();
  bool no_snapshot = false;
  app.add_flag("--no-snapshot", no_snapshot,
               "index every fingerprint at open even if the catalogue has an index snapshot");
  CLI11_PARSE(app, argc, argv);

  nlohmann::ordered_json out;
  out["catalog"] = catalog_dir;
  out["disk_bytes"] = DirBytes(catalog_dir);

  std::vector<Query> queries;
  if (!queries_path.empty()) {
    std::ifstream f(queries_path);
    std::string line;
    while (std::getline(f, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      absl::StatusOr<Fingerprint> fp = DecodeFingerprint(j.value("fingerprint", ""));
      if (!fp.ok()) {
        std::fprintf(stderr, "bad query: %s\n", std::string(fp.status().message()).c_str());
        return 1;
      }
      Query q;
      q.id = j.value("id", "");
      q.kind = j.value("kind", "");
      if (j.contains("expected_track_id") && j["expected_track_id"].is_string()) {
        q.expected = j["expected_track_id"].get<std::string>();
      }
      q.ber = j.value("ber", 0.0);
      q.items = std::move(fp->items);
      queries.push_back(std::move(q));
    }
    if (max_queries > 0 && static_cast<int64_t>(queries.size()) > max_queries) {
      // As many members as non-members, in file order.
      std::vector<Query> members, others, kept;
      for (Query& q : queries) (q.expected.empty() ? others : members).push_back(std::move(q));
      for (size_t i = 0; static_cast<int64_t>(kept.size()) < max_queries; ++i) {
        if (i < members.size()) kept.push_back(std::move(members[i]));
        if (i < others.size() && static_cast<int64_t>(kept.size()) < max_queries) {
          kept.push_back(std::move(others[i]));
        }
        if (i >= members.size() && i >= others.size()) break;
      }
      queries = std::move(kept);
    }
  }

  const int64_t rss_before = ProcStatusKib("VmRSS");
  const absl::Time t0 = absl::Now();
  Catalog::OpenOptions oo;
  oo.mode = Catalog::Mode::kReadOnly;
  oo.build_index = true;
  oo.matcher = matcher_options;
  oo.use_index_snapshot = !no_snapshot;
  absl::StatusOr<std::unique_ptr<Catalog>> opened = Catalog::Open(catalog_dir, oo);
  if (!opened.ok()) {
    std::fprintf(stderr, "open %s: %s\n", catalog_dir.c_str(),
                 std::string(opened.status().message()).c_str());
    return 1;
  }
  const Catalog& catalog = **opened;
  const double open_s = absl::ToDoubleSeconds(absl::Now() - t0);
  const int64_t rss_after = ProcStatusKib("VmRSS");
  const double hours = catalog.hours();
  out["tracks"] = catalog.num_tracks();
  out["unindexed"] = catalog.num_unindexed();
  out["hours"] = hours;
  out["open_seconds"] = open_s;
  out["index_snapshot"] = !no_snapshot && std::filesystem::exists(catalog_dir + "/index.snapshot");
  out["rss_after_open_mib"] = static_cast<double>(rss_after) / 1024;
  out["rss_index_mib"] = static_cast<double>(rss_after - rss_before) / 1024;
  out["rss_mib_per_hour"] =
      hours > 0 ? static_cast<double>(rss_after - rss_before) / 1024 / hours : 0;
  out["peak_rss_mib"] = static_cast<double>(ProcStatusKib("VmHWM")) / 1024;

  if (!queries.empty()) {
    // Single thread: latency per query.
    std::vector<double> latencies, cpu;
    std::vector<Outcome> outcomes;
    int64_t members = 0, hits = 0, non_members = 0, false_positives = 0, errors = 0;
    for (const Query& q : queries) {
      Outcome o = RunQuery(catalog, q);
      outcomes.push_back(o);
      if (!o.ok) {
        ++errors;
        continue;
      }
      latencies.push_back(o.ms);
      cpu.push_back(o.cpu_ms);
      if (!q.expected.empty()) {
        ++members;
        hits += o.top_is_expected;
      } else {
        ++non_members;
        false_positives += o.member;
      }
    }
    // Hit rate by bit error rate band, where the accuracy question lives.
    nlohmann::ordered_json by_ber;
    for (double lo : {0.05, 0.10, 0.15, 0.20}) {
      int64_t n = 0, h = 0;
      for (size_t i = 0; i < queries.size(); ++i) {
        const Query& q = queries[i];
        if (q.expected.empty() || q.ber < lo || q.ber >= lo + 0.05) continue;
        ++n;
        h += outcomes[i].top_is_expected;
      }
      by_ber[absl::StrFormat("%.2f-%.2f", lo, lo + 0.05)] =
          n > 0 ? static_cast<double>(h) / static_cast<double>(n) : 0.0;
    }
    out["queries"] = queries.size();
    out["query_errors"] = errors;
    out["p50_ms"] = Percentile(latencies, 0.50);
    out["p90_ms"] = Percentile(latencies, 0.90);
    out["p99_ms"] = Percentile(latencies, 0.99);
    out["max_ms"] = Percentile(latencies, 1.0);
    out["p50_cpu_ms"] = Percentile(cpu, 0.50);
    out["p99_cpu_ms"] = Percentile(cpu, 0.99);
    out["members"] = members;
    out["hit_rate"] = members > 0 ? static_cast<double>(hits) / members : 0;
    out["hit_rate_by_ber"] = by_ber;
    out["non_members"] = non_members;
    out["false_positives"] = false_positives;

    // The approximate index against the exhaustive scan, on the same member queries.
    if (exhaustive_queries > 0) {
      int64_t asked = 0, exhaustive_hits = 0, both = 0;
      std::vector<double> exhaustive_cpu;
      for (size_t i = 0; i < queries.size() && asked < exhaustive_queries; ++i) {
        if (queries[i].expected.empty() || !outcomes[i].ok) continue;
        ++asked;
        Outcome e = RunQuery(catalog, queries[i], /*exhaustive=*/true);
        exhaustive_cpu.push_back(e.cpu_ms);
        if (e.top_is_expected) {
          ++exhaustive_hits;
          both += outcomes[i].top_is_expected;
        }
      }
      out["exhaustive_queries"] = asked;
      out["exhaustive_hits"] = exhaustive_hits;
      out["approximate_found_of_exhaustive"] =
          exhaustive_hits > 0 ? static_cast<double>(both) / static_cast<double>(exhaustive_hits)
                              : 0.0;
      out["exhaustive_p50_cpu_ms"] = Percentile(exhaustive_cpu, 0.5);
      std::fprintf(stderr,
                   "exhaustive scan on %lld member queries: %lld hits, of which the approximate "
                   "index found %lld; exhaustive p50 CPU %.0f ms\n",
                   static_cast<long long>(asked), static_cast<long long>(exhaustive_hits),
                   static_cast<long long>(both), Percentile(exhaustive_cpu, 0.5));
    }

    // Throughput: all queries over `threads` threads.
    std::atomic<size_t> next{0};
    const absl::Time t1 = absl::Now();
    std::vector<std::thread> pool;
    for (int t = 0; t < std::max(threads, 1); ++t) {
      pool.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < queries.size();) RunQuery(catalog, queries[i]);
      });
    }
    for (std::thread& t : pool) t.join();
    const double secs = absl::ToDoubleSeconds(absl::Now() - t1);
    out["threads"] = threads;
    out["qps"] = secs > 0 ? static_cast<double>(queries.size()) / secs : 0;
  }
  out["peak_rss_mib"] = static_cast<double>(ProcStatusKib("VmHWM")) / 1024;

  std::fprintf(stderr,
               "%s: %lld tracks, %.0f h; open %.1f s; RSS %.0f MiB (%.2f MiB per indexed hour); "
               "disk %.2f GB\n",
               catalog_dir.c_str(), static_cast<long long>(catalog.num_tracks()), hours, open_s,
               out["rss_after_open_mib"].get<double>(), out["rss_mib_per_hour"].get<double>(),
               static_cast<double>(out["disk_bytes"].get<int64_t>()) / 1e9);
  if (!queries.empty()) {
    std::fprintf(stderr,
                 "queries: p50 %.2f ms (CPU %.2f ms), p99 %.2f ms (1 thread); %.1f q/s on %d "
                 "threads; hit rate "
                 "%.3f of %lld members; %lld false positives of %lld non-members\n",
                 out["p50_ms"].get<double>(), out["p50_cpu_ms"].get<double>(),
                 out["p99_ms"].get<double>(), out["qps"].get<double>(), threads,
                 out["hit_rate"].get<double>(),
                 static_cast<long long>(out["members"].get<int64_t>()),
                 static_cast<long long>(out["false_positives"].get<int64_t>()),
                 static_cast<long long>(out["non_members"].get<int64_t>()));
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace trainspotter

int main(int argc, char** argv) { return trainspotter::Main(argc, argv); }
