// trainspotter query: is this audio (or any part of it) in the catalogue, and where?
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "fingerprint/fingerprinter.h"
#include "fingerprint/query_variants.h"
#include "matcher/catalog.h"
#include "tools/commands.h"
#include "tools/match_json.h"

namespace trainspotter::cli {
namespace {

struct Outcome {
  std::string file;
  double duration = 0;
  absl::StatusOr<CatalogMatchResult> result = absl::UnknownError("not run");
};

// The answer for one input as a person reads it: members, and with `near_misses` the best
// alignments that did not pass, marked so (a look-alike says it sounds alike).
std::string HumanReadable(const Outcome& o, bool near_misses) {
  if (!o.result.ok()) return absl::StrCat(o.file, ": error: ", o.result.status().message(), "\n");
  const CatalogMatchResult& r = *o.result;
  std::string out = absl::StrFormat("%s: %s (%.1f s)\n", o.file,
                                    r.member ? "MEMBER of a training set" : "not in the catalogue",
                                    o.duration);
  for (const CatalogMatch& m : r.matches) {
    if (!m.segment.member && !near_misses) continue;
    const TrackMetadata& md = m.track.metadata;
    out += absl::StrFormat("  %s%s/%s  %s",
                           m.segment.member         ? ""
                           : m.segment.sounds_alike ? "sounds alike, not the same audio: "
                                                    : "near miss: ",
                           m.track.dataset, m.track.version, m.track.track_id);
    if (!md.title.empty() || !md.artist.empty()) {
      out += absl::StrFormat("  \"%s\"%s", md.title,
                             md.artist.empty() ? "" : absl::StrCat(" by ", md.artist));
    }
    out += absl::StrFormat(
        "\n    query %.1f-%.1f s = reference %.1f-%.1f s, false-match probability %.2g, bit error "
        "rate %.3f%s\n",
        m.segment.query_start, m.segment.query_end, m.segment.ref_start, m.segment.ref_end,
        m.segment.false_match_probability, m.segment.bit_error_rate,
        m.segment.speed != 1.0 ? absl::StrFormat(", speed %+.0f%%", (1 / m.segment.speed - 1) * 100)
                               : "");
  }
  return out;
}

}  // namespace

int RunQuery(int argc, char** argv) {
  CLI::App app{
      "Asks whether audio files (or any part of them) are in the catalogue's training datasets,\n"
      "and where: which dataset and track, at which offsets, and how sure the answer is.\n"
      "A clip of 5 s or more from anywhere in a reference is found, also after transcoding,\n"
      "resampling, gain changes, background noise, band limiting and +-2% speed changes.\n"
      "\n"
      "'member' is true only when a match is too strong to be chance: its\n"
      "false_match_probability (the chance that unrelated audio agrees this well with anything\n"
      "in the catalogue) is below --max-fmp. Silence, steady tones and noise never match.\n"
      "Music that only sounds alike (the same tempo and drums, a re-arranged theme) can agree\n"
      "better than chance, but worse than a copy: a match whose bit errors the query's own\n"
      "noise does not explain, at any speed within 0.5% of the one that matched, is not a\n"
      "member (--near-misses lists it with \"sounds_alike\": true; docs/decision.md).\n"
      "\n"
      "Examples:\n"
      "  trainspotter query --catalog cat song.mp3 clip.ogg\n"
      "  trainspotter query --catalog cat --json --dataset fma uploads/*.mp3 > answers.jsonl\n"
      "  trainspotter query --catalog cat --fingerprint AQADtE...\n"
      "\n"
      "Exit status: 0 all inputs answered (member or not), 1 some input could not be read,\n"
      "2 usage error or unusable catalogue.",
      "trainspotter query"};
  std::string catalog_dir = "catalog";
  std::vector<std::string> files;
  std::vector<std::string> fingerprints;
  std::vector<std::string> datasets;
  bool json = false;
  bool near_misses = false;
  int max_matches = 10;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double max_fmp = MatcherOptions().max_false_match_probability;
  app.add_option("--catalog", catalog_dir, "catalogue directory")->capture_default_str();
  app.add_flag("--json", json,
               "one JSON object per input (JSON Lines): file, duration, member, error, matches");
  app.add_option("--fingerprint", fingerprints,
                 "a compressed AcoustID/fpcalc fingerprint to query instead of a file "
                 "(repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--near-misses", near_misses,
               "also list the best alignments that did not pass the decision (member: false in "
               "each match; \"sounds_alike\" where the look-alike screen demoted it), to see how "
               "close a non-member came");
  app.add_option("--dataset", datasets, "only match this dataset (repeatable; default all)")
      ->allow_extra_args(false);
  app.add_option("--max-matches", max_matches, "matches listed per input")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--max-fmp", max_fmp,
                 "decision threshold: largest false-match probability called a member")
      ->capture_default_str()
      ->check(CLI::Range(1e-300, 0.5));
  app.add_option("-j,--jobs", jobs, "files decoded in parallel")->check(CLI::Range(1, 256));
  app.add_option("FILE", files, "audio files to query");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (files.empty() && fingerprints.empty()) {
    std::fprintf(stderr, "trainspotter query: give audio FILEs or --fingerprint (see --help)\n");
    return 2;
  }

  Catalog::OpenOptions open;
  open.mode = Catalog::Mode::kReadOnly;
  open.matcher.max_false_match_probability = max_fmp;
  auto catalog = Catalog::Open(catalog_dir, open);
  if (!catalog.ok()) {
    std::fprintf(stderr, "trainspotter query: catalogue %s: %s\n", catalog_dir.c_str(),
                 std::string(catalog.status().message()).c_str());
    return 2;
  }

  const size_t n = fingerprints.size() + files.size();
  std::vector<Outcome> outcomes(n);
  auto run_one = [&](size_t i) {
    Outcome& o = outcomes[i];
    CatalogQuery q;
    q.datasets = datasets;
    q.max_matches = max_matches;
    q.include_non_members = near_misses;
    if (i < fingerprints.size()) {
      o.file = "--fingerprint";
      auto fp = DecodeFingerprint(fingerprints[i]);
      if (!fp.ok()) {
        o.result = fp.status();
        return;
      }
      q.items = std::move(fp->items);
      o.duration = ItemToSeconds(static_cast<double>(q.items.size()));
    } else {
      o.file = files[i - fingerprints.size()];
      FingerprintOptions fo;
      fo.max_seconds = 0;  // the whole file: any part of it may be in a dataset
      // Sub-item phases and speeds, tried when the query as given matches nothing (the same
      // variants `trainspotter scan` and the server's MatchAudio use), and computed only then.
      RequestQueryVariants(&fo);
      fo.defer_variants = true;
      auto fp = FingerprintFile(o.file, fo);
      if (!fp.ok()) {
        o.result = fp.status();
        return;
      }
      o.duration = fp->fingerprint.duration_seconds;
      q.items = std::move(fp->fingerprint.items);
      q.weights = std::move(fp->weights);
      if (fp->variants_deferred()) {
        q.deferred_versions = DeferredVariantCount(fo);
        q.deferred_variants = DeferVariants(o.file, fo, &*fp);
      } else {  // too long to hold: computed while it streamed
        q.phase_variants = TakePhaseVariants(fo, &*fp);
        q.speed_variants = TakeSpeedVariants(fo, &*fp);
      }
    }
    o.result = (*catalog)->Match(q);
  };

  // Decode in parallel; print in input order as soon as each answer is ready.
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  std::vector<bool> done(n, false);
  size_t printed = 0;
  int exit_code = 0;
  auto flush = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (printed < n && done[printed]) {
      const Outcome& o = outcomes[printed];
      if (!o.result.ok()) exit_code = 1;
      if (json) {
        nlohmann::ordered_json j = o.result.ok()
                                       ? MatchResultToJson(o.file, o.duration, *o.result)
                                       : MatchErrorToJson(o.file, o.result.status());
        std::fputs((j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str(),
                   stdout);
      } else {
        std::fputs(HumanReadable(o, near_misses).c_str(), stdout);
        if (!o.result.ok()) {
          std::fprintf(stderr, "trainspotter query: %s\n",
                       std::string(o.result.status().message()).c_str());
        }
      }
      std::fflush(stdout);
      ++printed;
    }
  };
  auto worker = [&]() {
    for (size_t i = next++; i < n; i = next++) {
      run_one(i);
      absl::MutexLock lock(&mu);
      done[i] = true;
      flush();
    }
  };
  std::vector<std::thread> threads;
  const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(jobs), n));
  for (int t = 1; t < workers; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return exit_code;
}

}  // namespace trainspotter::cli
