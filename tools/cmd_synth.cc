// `trainspotter synth`: a synthetic catalogue of N tracks made from real music fingerprints, and a
// labelled query set, for scale benchmarks (tools/bench-scale.sh) without terabytes of audio.
//
// Why recombine real fingerprints rather than draw random bits: Chromaprint items of music are far
// from uniform (neighbouring items share most bits, some bits are biased), and index structures
// behave very differently on uniform noise. Every synthetic track is a concatenation of 5-40 s
// segments of the real fixture tracks, with a per-track bit rotation and XOR mask (bit biases keep
// their magnitude, neighbour correlation is kept exactly, but two tracks sharing a source segment
// are ~16 bits apart per item, as unrelated audio is) and ~2 % of bits flipped.
//
// Everything derives from --seed: track t is regenerated from (seed, t) alone, which is how the
// query set finds its clips without keeping the catalogue in memory.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/fingerprinter.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"
#include "tools/content_hash.h"
#include "tools/progress.h"

namespace trainspotter::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr double kMinTrackSeconds = 30, kMaxTrackSeconds = 900;
constexpr double kMeanTrackSeconds = 240, kLogSigma = 0.55;
constexpr double kMinSegmentSeconds = 5, kMaxSegmentSeconds = 40;
constexpr double kTrackBitFlipRate = 0.02;
// A 10 s clip yields (10 s - item span) / hop + 1 items.
constexpr int kQueryItems = 59;

constexpr char kSynthFooter[] = R"(
Tracks: log-normal lengths (mean ~4 min, clipped to 30 s..15 min), each a concatenation of
5-40 s segments of real fixture fingerprints with a per-track bit rotation + XOR mask and 2 % of
bits flipped. --holdout fixture tracks are never used, so clips of them are true non-members.
Fixture fingerprints (whole files) are computed once and cached in --fixture-cache.

Query set (--queries-out, JSON Lines; --queries M members + M non-members):
  {"id": "m000001", "fingerprint": "AQAD...", "expected_track_id": "synth-00000042",
   "ber": 0.13, "offset_seconds": 61.2, "kind": "member"}
  kind "holdout" (recombined held-out music) and "silence": "expected_track_id": null.

Examples:
  trainspotter synth --catalog /scratch/cat-100k --tracks 100000 --seed 1 \
      --queries-out /scratch/q-100k.jsonl --queries 500
  trainspotter synth --tracks 2000 --manifest-out m.jsonl   # an ingest manifest only)";

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint32_t Rotl(uint32_t x, int r) { return r == 0 ? x : (x << r) | (x >> (32 - r)); }

// Flips each bit of `items` with probability p (geometric skips: cost ~ number of flips).
void FlipBits(double p, std::mt19937_64* rng, std::vector<uint32_t>* items) {
  if (p <= 0 || items->empty()) return;
  std::geometric_distribution<int64_t> skip(p);
  const int64_t bits = static_cast<int64_t>(items->size()) * 32;
  for (int64_t pos = skip(*rng); pos < bits; pos += 1 + skip(*rng)) {
    (*items)[static_cast<size_t>(pos / 32)] ^= uint32_t{1} << (pos % 32);
  }
}

struct Source {
  std::string name;
  std::vector<uint32_t> items;
};

// The catalogue's generator: pure function of (seed, index) and the source fingerprints.
class TrackGenerator {
 public:
  TrackGenerator(uint64_t seed, const std::vector<Source>* sources)
      : seed_(seed), sources_(sources) {}

  static std::string TrackId(int64_t t) { return absl::StrFormat("synth-%08d", t); }

  TrackInput Make(int64_t t) const {
    std::mt19937_64 rng(SplitMix64(seed_ ^ SplitMix64(static_cast<uint64_t>(t))));
    std::lognormal_distribution<double> length(
        std::log(kMeanTrackSeconds) - kLogSigma * kLogSigma / 2, kLogSigma);
    const double seconds = std::clamp(length(rng), kMinTrackSeconds, kMaxTrackSeconds);
    TrackInput in;
    in.track_id = TrackId(t);
    in.items = Recombine(seconds, &rng);
    Disguise(&rng, &in.items);
    FlipBits(kTrackBitFlipRate, &rng, &in.items);
    in.metadata.title = absl::StrCat("Synthetic track ", t);
    in.metadata.duration_seconds =
        std::round((ItemToSeconds(static_cast<double>(in.items.size()) - 1) + kItemSpanSeconds) *
                   1000) /
        1000;
    in.content_hash = HashItems(in.items);
    return in;
  }

  // Concatenated random segments of the sources, `seconds` of audio long.
  std::vector<uint32_t> Recombine(double seconds, std::mt19937_64* rng) const {
    const size_t n = static_cast<size_t>(std::max<int64_t>(SecondsToItem(seconds), 1));
    std::vector<uint32_t> items;
    items.reserve(n);
    std::uniform_int_distribution<size_t> pick(0, sources_->size() - 1);
    std::uniform_real_distribution<double> seg_seconds(kMinSegmentSeconds, kMaxSegmentSeconds);
    while (items.size() < n) {
      const std::vector<uint32_t>& src = (*sources_)[pick(*rng)].items;
      size_t len = std::min<size_t>(
          {static_cast<size_t>(SecondsToItem(seg_seconds(*rng))), src.size(), n - items.size()});
      len = std::max<size_t>(len, 1);
      std::uniform_int_distribution<size_t> start(0, src.size() - len);
      const size_t s = start(*rng);
      items.insert(items.end(), src.begin() + static_cast<std::ptrdiff_t>(s),
                   src.begin() + static_cast<std::ptrdiff_t>(s + len));
    }
    return items;
  }

  // Per-track bit rotation and XOR mask: same statistics, different track.
  static void Disguise(std::mt19937_64* rng, std::vector<uint32_t>* items) {
    const int rot = static_cast<int>((*rng)() % 32);
    const uint32_t mask = static_cast<uint32_t>((*rng)());
    for (uint32_t& x : *items) x = Rotl(x, rot) ^ mask;
  }

 private:
  uint64_t seed_;
  const std::vector<Source>* sources_;
};

bool IsAudioName(const std::filesystem::path& p) {
  const std::string ext = absl::AsciiStrToLower(p.extension().string());
  for (const char* e : {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a"}) {
    if (ext == e) return true;
  }
  return false;
}

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg != '\0') return absl::StrCat(xdg, "/trainspotter");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/tmp", "/.cache/trainspotter");
}

// Whole-file fingerprints of the fixture's audio files (sorted by name), from `cache_path` when
// it lists the same files with the same size and modification time, else computed and cached.
absl::StatusOr<std::vector<Source>> LoadFixture(const std::string& dir,
                                                const std::string& cache_path, int jobs) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && IsAudioName(e.path())) files.push_back(e.path());
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("fixture folder ", dir));
  std::sort(files.begin(), files.end());
  if (files.size() < 4) {
    return absl::FailedPreconditionError(
        absl::StrCat("fixture folder ", dir, " has ", files.size(),
                     " audio files; run tools/fetch-test-music.sh (34 tracks) or pass --fixture"));
  }
  auto stamp = [](const std::filesystem::path& p) {
    std::error_code e;
    return absl::StrCat(std::filesystem::file_size(p, e), ":",
                        std::filesystem::last_write_time(p, e).time_since_epoch().count());
  };
  std::vector<Source> sources(files.size());
  std::vector<bool> have(files.size(), false);
  if (absl::StatusOr<std::string> cached = ReadFile(cache_path); cached.ok()) {
    std::istringstream in(*cached);
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      for (size_t i = 0; i < files.size(); ++i) {
        if (have[i] || j.value("file", "") != files[i].filename().string() ||
            j.value("stamp", "") != stamp(files[i])) {
          continue;
        }
        absl::StatusOr<Fingerprint> fp = DecodeFingerprint(j.value("fingerprint", ""));
        if (fp.ok() && !fp->items.empty()) {
          sources[i] = {files[i].filename().string(), std::move(fp->items)};
          have[i] = true;
        }
      }
    }
  }
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!have[i]) todo.push_back(i);
  }
  if (!todo.empty()) {
    std::fprintf(stderr, "trainspotter synth: fingerprinting %zu fixture files (cached in %s)\n",
                 todo.size(), cache_path.c_str());
    std::atomic<size_t> next{0};
    std::vector<absl::Status> errors(files.size());
    auto work = [&] {
      for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
        const size_t i = todo[k];
        FingerprintOptions fo;
        fo.max_seconds = 0;  // whole files
        absl::StatusOr<FingerprintResult> r = FingerprintFile(files[i].string(), fo);
        if (!r.ok()) {
          errors[i] = r.status();
        } else {
          sources[i] = {files[i].filename().string(), std::move(r->fingerprint.items)};
        }
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < std::max(jobs, 1); ++t) threads.emplace_back(work);
    for (std::thread& t : threads) t.join();
    for (const absl::Status& s : errors) TS_RETURN_IF_ERROR(s);
    std::string text;
    for (size_t i = 0; i < files.size(); ++i) {
      TS_ASSIGN_OR_RETURN(std::string fp, EncodeFingerprint(sources[i].items));
      Json j;
      j["file"] = sources[i].name;
      j["stamp"] = stamp(files[i]);
      j["fingerprint"] = fp;
      absl::StrAppend(&text, j.dump(), "\n");
    }
    std::filesystem::create_directories(std::filesystem::path(cache_path).parent_path(), ec);
    if (absl::Status s = WriteFileAtomically(cache_path, text); !s.ok()) {
      std::fprintf(stderr, "trainspotter synth: warning: cannot cache fixture fingerprints: %s\n",
                   std::string(s.message()).c_str());
    }
  }
  // Segments need room: drop fixture files shorter than the longest segment.
  std::vector<Source> usable;
  for (Source& s : sources) {
    if (s.items.size() >= static_cast<size_t>(SecondsToItem(kMaxSegmentSeconds))) {
      usable.push_back(std::move(s));
    }
  }
  return usable;
}

absl::Status WriteQueries(const std::string& path, int64_t m, uint64_t seed, int64_t tracks,
                          const TrackGenerator& catalogue, const std::vector<Source>& holdout) {
  std::mt19937_64 rng(SplitMix64(seed ^ 0x51E5C0DEULL));
  std::uniform_real_distribution<double> ber_dist(0.05, 0.25);
  std::string text;
  auto emit = [&](const std::string& id, const std::vector<uint32_t>& items, const Json& expected,
                  double ber, double offset, const char* kind) -> absl::Status {
    TS_ASSIGN_OR_RETURN(std::string fp, EncodeFingerprint(items));
    Json j;
    j["id"] = id;
    j["fingerprint"] = fp;
    j["expected_track_id"] = expected;
    j["ber"] = std::round(ber * 1e4) / 1e4;
    j["offset_seconds"] = std::round(offset * 1e3) / 1e3;
    j["kind"] = kind;
    absl::StrAppend(&text, j.dump(), "\n");
    return absl::OkStatus();
  };
  // Members: 10 s clips of catalogued tracks at random offsets, bits flipped at rate `ber`.
  if (tracks > 0) {
    std::uniform_int_distribution<int64_t> pick(0, tracks - 1);
    for (int64_t q = 0; q < m; ++q) {
      const int64_t t = pick(rng);
      TrackInput track = catalogue.Make(t);
      const size_t len = std::min<size_t>(kQueryItems, track.items.size());
      std::uniform_int_distribution<size_t> start(0, track.items.size() - len);
      const size_t s = start(rng);
      std::vector<uint32_t> clip(track.items.begin() + static_cast<std::ptrdiff_t>(s),
                                 track.items.begin() + static_cast<std::ptrdiff_t>(s + len));
      const double ber = ber_dist(rng);
      FlipBits(ber, &rng, &clip);
      TS_RETURN_IF_ERROR(emit(absl::StrFormat("m%06d", q), clip, TrackGenerator::TrackId(t), ber,
                              ItemToSeconds(static_cast<double>(s)), "member"));
    }
  }
  // Non-members: recombined held-out music (disguised like a catalogue track), and silence.
  absl::StatusOr<std::vector<uint32_t>> silence =
      FingerprintPcm(std::vector<int16_t>(11025 * 10, 0), 11025, 1);
  if (!silence.ok() || silence->empty()) silence = std::vector<uint32_t>(kQueryItems, 0);
  TrackGenerator holdout_gen(seed ^ 0xB01D0B7ULL, &holdout);
  for (int64_t q = 0; q < m; ++q) {
    const double ber = ber_dist(rng);
    if (q % 10 == 9) {
      std::vector<uint32_t> clip(kQueryItems, (*silence)[silence->size() / 2]);
      FlipBits(ber / 10, &rng, &clip);  // dither: near-constant, as quiet rooms are
      TS_RETURN_IF_ERROR(emit(absl::StrFormat("n%06d", q), clip, nullptr, ber / 10, 0, "silence"));
      continue;
    }
    std::vector<uint32_t> clip = holdout_gen.Recombine(ItemToSeconds(kQueryItems), &rng);
    clip.resize(std::min<size_t>(clip.size(), kQueryItems));
    TrackGenerator::Disguise(&rng, &clip);
    FlipBits(ber, &rng, &clip);
    TS_RETURN_IF_ERROR(emit(absl::StrFormat("n%06d", q), clip, nullptr, ber, 0, "holdout"));
  }
  return WriteFileAtomically(path, text);
}

int DefaultJobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

int RunSynth(int argc, char** argv) {
  CLI::App app(
      "Build a synthetic catalogue of N tracks from real fingerprints, and a labelled "
      "query set, for scale benchmarks.",
      "trainspotter synth");
  app.footer(kSynthFooter);
  app.get_formatter()->column_width(30);
  std::string catalog_dir, dataset = "synth", queries_out, manifest_out;
  std::string fixture = DefaultCacheDir() + "/music";
  std::string fixture_cache = DefaultCacheDir() + "/synth-fixture-fingerprints.jsonl";
  int64_t tracks = 0, queries = 200, manifest_tracks = 0;
  uint64_t seed = 1;
  int holdout = 6, batch_size = 1000, jobs = DefaultJobs();
  bool quiet = false;
  app.add_option("--catalog", catalog_dir, "catalogue to write the tracks into (created if new)")
      ->type_name("DIR");
  app.add_option("--tracks", tracks, "number of tracks")
      ->type_name("N")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  app.add_option("--seed", seed, "everything derives from it")->capture_default_str();
  app.add_option("--dataset", dataset, "dataset name in the catalogue")->capture_default_str();
  app.add_option("--queries-out", queries_out, "write the query set here (JSON Lines)")
      ->type_name("FILE");
  app.add_option("--queries", queries, "member clips, and as many non-member clips")
      ->type_name("M")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}))
      ->capture_default_str();
  app.add_option("--manifest-out", manifest_out,
                 "also write an ingest manifest (track_id, fingerprint, duration, title)")
      ->type_name("FILE");
  app.add_option("--manifest-tracks", manifest_tracks,
                 "only the first K tracks go to --manifest-out (0 = all)")
      ->type_name("K");
  app.add_option("--fixture", fixture, "real-music folder (tools/fetch-test-music.sh)")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--fixture-cache", fixture_cache, "cache of the fixture's fingerprints")
      ->type_name("FILE");
  app.add_option("--holdout", holdout, "fixture tracks kept out of the catalogue (non-members)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--batch-size", batch_size, "tracks per catalogue transaction")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("-j,--jobs", jobs, "threads fingerprinting the fixture")
      ->check(CLI::Range(1, 256));
  app.add_flag("-q,--quiet", quiet, "no progress display");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (catalog_dir.empty() && queries_out.empty() && manifest_out.empty()) {
    std::fprintf(stderr,
                 "trainspotter synth: nothing to write: give --catalog, --queries-out and/or "
                 "--manifest-out (see --help)\n");
    return 2;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "trainspotter synth: %s\n", std::string(s.message()).c_str());
    return 1;
  };

  absl::StatusOr<std::vector<Source>> fixture_sources = LoadFixture(fixture, fixture_cache, jobs);
  if (!fixture_sources.ok()) return fail(fixture_sources.status());
  // Hold out a seeded choice of fixture tracks: the catalogue never sees them.
  std::vector<Source> all = *std::move(fixture_sources);
  std::shuffle(all.begin(), all.end(), std::mt19937_64(SplitMix64(seed ^ 0x401D07ULL)));
  if (static_cast<size_t>(holdout) + 2 > all.size()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "--holdout ", holdout, " leaves fewer than 2 of ", all.size(), " fixture tracks")));
  }
  std::vector<Source> holdout_sources(std::make_move_iterator(all.end() - holdout),
                                      std::make_move_iterator(all.end()));
  all.resize(all.size() - static_cast<size_t>(holdout));
  const TrackGenerator gen(seed, &all);

  const absl::Time start = absl::Now();
  double hours = 0;
  int64_t items = 0;
  if (!catalog_dir.empty()) {
    Catalog::OpenOptions oo;
    oo.mode = Catalog::Mode::kReadWrite;
    oo.build_index = false;  // writing only: no need to load the existing tracks
    absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Open(catalog_dir, oo);
    if (!catalog.ok()) return fail(catalog.status());
    if (absl::Status s = (*catalog)->EnsureDataset(
            dataset, absl::StrCat("seed-", seed),
            absl::StrCat("synthetic: ", tracks, " tracks recombined from ", all.size(),
                         " fixture tracks (trainspotter synth)"));
        !s.ok()) {
      return fail(s);
    }
    Progress progress(stderr, Progress::StyleFor(stderr, quiet), "tracks");
    ProgressCounts counts;
    counts.total = tracks;
    auto make_batch = [&gen, tracks, batch_size](int64_t first) {
      std::vector<TrackInput> batch;
      for (int64_t t = first; t < std::min(tracks, first + batch_size); ++t) {
        batch.push_back(gen.Make(t));
      }
      return batch;
    };
    // The next batch is generated while this one commits.
    std::future<std::vector<TrackInput>> next = std::async(std::launch::async, make_batch, 0);
    int64_t skipped = 0;
    for (int64_t first = 0; first < tracks; first += batch_size) {
      std::vector<TrackInput> batch = next.get();
      if (first + batch_size < tracks) {
        next = std::async(std::launch::async, make_batch, first + batch_size);
      }
      // Resuming an interrupted run: a batch whose last track is stored unchanged is done.
      absl::StatusOr<bool> stored =
          (*catalog)->HasTrack(dataset, batch.back().track_id, batch.back().content_hash);
      if (!stored.ok()) return fail(stored.status());
      if (*stored) {
        skipped += static_cast<int64_t>(batch.size());
      } else if (absl::Status s = (*catalog)->AddTracks(dataset, batch); !s.ok()) {
        return fail(s);
      }
      for (const TrackInput& t : batch) {
        counts.audio_seconds += t.metadata.duration_seconds;
        items += static_cast<int64_t>(t.items.size());
      }
      counts.done += static_cast<int64_t>(batch.size());
      progress.Update(counts);
    }
    progress.Finish();
    hours = counts.audio_seconds / 3600;
    std::fprintf(stderr,
                 "trainspotter synth: %lld tracks (%lld already stored), %.0f h of audio, %lld "
                 "items (%.2f GB raw) in %s -> %s\n",
                 static_cast<long long>(tracks), static_cast<long long>(skipped), hours,
                 static_cast<long long>(items), static_cast<double>(items) * 4 / 1e9,
                 FormatElapsed(absl::Now() - start).c_str(), catalog_dir.c_str());
  }
  if (!manifest_out.empty()) {
    const int64_t k = manifest_tracks > 0 ? std::min(manifest_tracks, tracks) : tracks;
    std::string tmp = manifest_out + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    for (int64_t t = 0; t < k && out; ++t) {
      TrackInput in = gen.Make(t);
      absl::StatusOr<std::string> fp = EncodeFingerprint(in.items);
      if (!fp.ok()) return fail(fp.status());
      Json j;
      j["track_id"] = in.track_id;
      j["fingerprint"] = *fp;
      j["duration"] = in.metadata.duration_seconds;
      j["title"] = in.metadata.title;
      out << j.dump() << "\n";
    }
    out.close();
    if (!out || std::rename(tmp.c_str(), manifest_out.c_str()) != 0) {
      return fail(ErrnoToStatus(errno, absl::StrCat("write ", manifest_out)));
    }
    std::fprintf(stderr, "trainspotter synth: manifest of %lld tracks -> %s\n",
                 static_cast<long long>(k), manifest_out.c_str());
  }
  if (!queries_out.empty()) {
    if (absl::Status s = WriteQueries(queries_out, queries, seed, tracks, gen, holdout_sources);
        !s.ok()) {
      return fail(s);
    }
    std::fprintf(stderr, "trainspotter synth: %lld member + %lld non-member queries -> %s\n",
                 static_cast<long long>(queries), static_cast<long long>(queries),
                 queries_out.c_str());
  }
  return 0;
}

}  // namespace trainspotter::cli
