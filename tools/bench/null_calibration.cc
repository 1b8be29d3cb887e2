// Validates the decision's false-match probability on non-member audio: cuts every clip of the
// given lengths (at a stride) out of audio files that are NOT in the catalogue, queries each
// against the catalogue, and compares how often the best alignment's false_match_probability
// falls below p with p itself. A calibrated (or conservative) model has observed <= expected at
// every level; the member decision threshold is only trustworthy where that holds.
//
// --scores FILE also writes every query's best alignment as a tab-separated line
// "items log10_chance fmp file item track_id", so that a change of the decision's constants can
// be checked against the same non-member set offline.
//
// --noise-reduced checks the query's noise-reduced version instead (the last phase variant
// `trainspotter query` sends, fingerprint/noise_reduction.h): each clip's PCM is cut out,
// noise-reduced on its own as a query of that length would be, and fingerprinted. Its
// alignments are another version of the query, whose chance matches the union bound counts
// like the plain query's, so its tail must be calibrated too. ~10x slower per query.
//
//   null_calibration --catalog DIR [--stride-items 4] [--lengths 19,59,222] [--scores F]
//                    [--noise-reduced] FILE...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/audio_source.h"
#include "fingerprint/bit_weights.h"
#include "fingerprint/ffmpeg_audio_source.h"
#include "fingerprint/fingerprinter.h"
#include "fingerprint/noise_reduction.h"
#include "matcher/catalog.h"

namespace trainspotter {
namespace {

// The whole file as mono PCM at the Chromaprint rate.
absl::StatusOr<std::vector<int16_t>> DecodeAll(const std::string& path) {
  auto source = OpenFfmpegAudioFile(path, DecodeLimits());
  if (!source.ok()) return source.status();
  std::vector<int16_t> pcm, chunk(1 << 16);
  for (;;) {
    auto n = (*source)->Read(absl::MakeSpan(chunk));
    if (!n.ok()) return n.status();
    if (*n == 0) return pcm;
    pcm.insert(pcm.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(*n));
  }
}

// Items [at, at + len) of `pcm`'s fingerprint, computed from that clip's samples alone after
// noise reduction (as a query of the clip would be); fewer at the end of the file.
absl::StatusOr<WeightedItems> NoiseReducedClip(const std::vector<int16_t>& pcm, size_t at, int len,
                                               bool weights) {
  const size_t begin = at * kItemHopSamples;
  const size_t samples = static_cast<size_t>(len - 1) * kItemHopSamples + kItemSpanSamples;
  if (begin >= pcm.size()) return WeightedItems();
  absl::Span<const int16_t> clip(pcm.data() + begin, std::min(samples, pcm.size() - begin));
  auto reduced = ReduceStationaryNoise(clip);
  if (!reduced.ok()) return reduced.status();
  WeightedItems out;
  TS_ASSIGN_OR_RETURN(out.items, FingerprintPcm(*reduced, kFingerprintSampleRate, 1));
  if (out.items.size() > static_cast<size_t>(len)) out.items.resize(static_cast<size_t>(len));
  if (weights) {
    TS_ASSIGN_OR_RETURN(out.weights, ComputeBitWeights(*reduced, out.items));
  }
  return out;
}

int Main(int argc, char** argv) {
  CLI::App app{"Empirical check of false_match_probability on non-member audio"};
  std::string catalog_dir;
  int stride = 4;
  std::vector<int> lengths = {19, 59, 222};  // items of a 5, 10 and 30 s clip
  std::vector<std::string> files;
  std::string scores_path;
  bool noise_reduced = false;
  bool unweighted = false;
  app.add_option("--catalog", catalog_dir, "catalogue (must not contain the files' audio)")
      ->required();
  app.add_option("--stride-items", stride, "items between consecutive clips")
      ->check(CLI::Range(1, 1000));
  app.add_option("--lengths", lengths, "clip lengths in items")->delimiter(',');
  app.add_option("--scores", scores_path,
                 "also write 'items log10_chance fmp file item track_id' per query here");
  app.add_flag("--noise-reduced", noise_reduced,
               "query each clip's noise-reduced fingerprint instead of the plain one");
  app.add_flag("--unweighted", unweighted,
               "query without bit weights (as a --fingerprint query is), not with them");
  app.add_option("FILE", files, "non-member audio files")->required();
  CLI11_PARSE(app, argc, argv);

  Catalog::OpenOptions open;
  auto catalog = Catalog::Open(catalog_dir, open);
  if (!catalog.ok()) {
    std::fprintf(stderr, "%s\n", std::string(catalog.status().message()).c_str());
    return 1;
  }
  std::FILE* scores = nullptr;
  if (!scores_path.empty() && (scores = std::fopen(scores_path.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", scores_path.c_str());
    return 1;
  }
  const std::vector<double> levels = {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6};
  // Each file is decoded once and cut into clips of every length.
  std::vector<std::vector<double>> best(lengths.size());
  for (const std::string& f : files) {
    auto pcm = DecodeAll(f);
    auto items = pcm.ok() ? FingerprintPcm(*pcm, kFingerprintSampleRate, 1)
                          : absl::StatusOr<std::vector<uint32_t>>(pcm.status());
    if (!items.ok()) {
      std::fprintf(stderr, "%s: %s\n", f.c_str(), std::string(items.status().message()).c_str());
      continue;
    }
    // The whole file's bit weights: a clip's items and weights are its slice of the file's,
    // both computed from the same frames.
    std::vector<uint8_t> weights;
    if (!unweighted) {
      auto w = ComputeBitWeights(*pcm, *items);
      if (!w.ok()) {
        std::fprintf(stderr, "%s: %s\n", f.c_str(), std::string(w.status().message()).c_str());
        continue;
      }
      weights = *std::move(w);
    }
    for (size_t l = 0; l < lengths.size(); ++l) {
      const int len = lengths[l];
      for (size_t at = 0; at + static_cast<size_t>(len) <= items->size(); at += stride) {
        CatalogQuery q;
        if (noise_reduced) {
          auto clip = NoiseReducedClip(*pcm, at, len, !unweighted);
          if (!clip.ok()) {
            std::fprintf(stderr, "%s: %s\n", f.c_str(),
                         std::string(clip.status().message()).c_str());
            continue;
          }
          if (clip->items.size() < static_cast<size_t>(len) / 2) continue;
          q.items = std::move(clip->items);
          q.weights = std::move(clip->weights);
        } else {
          q.items.assign(items->begin() + at, items->begin() + at + len);
          if (!weights.empty()) {
            q.weights.assign(weights.begin() + 32 * at, weights.begin() + 32 * (at + len));
          }
        }
        q.include_non_members = true;
        q.max_matches = 1;
        auto r = (*catalog)->Match(q);
        if (!r.ok()) continue;
        best[l].push_back(r->matches.empty() ? 1.0 : r->matches[0].segment.false_match_probability);
        if (scores != nullptr) {
          std::fprintf(scores, "%d\t%.4f\t%.4g\t%s\t%zu\t%s\n", len,
                       r->matches.empty() ? 0.0 : r->matches[0].segment.log10_chance,
                       best[l].back(), f.c_str(), at,
                       r->matches.empty() ? "-" : r->matches[0].track.track_id.c_str());
        }
      }
    }
  }
  for (size_t l = 0; l < lengths.size(); ++l) {
    const std::vector<double>& v = best[l];
    std::printf("clips of %d items (%.1f s of audio): %zu non-member queries\n", lengths[l],
                ItemToSeconds(lengths[l] - 1) + kItemSpanSeconds, v.size());
    for (double p : levels) {
      const auto below = std::count_if(v.begin(), v.end(), [p](double x) { return x <= p; });
      std::printf("  fmp <= %-6g observed %5ld (%.2e of queries), expected at most %.2e\n", p,
                  static_cast<long>(below), v.empty() ? 0.0 : static_cast<double>(below) / v.size(),
                  p);
    }
  }
  if (scores != nullptr) std::fclose(scores);
  return 0;
}

}  // namespace
}  // namespace trainspotter

int main(int argc, char** argv) { return trainspotter::Main(argc, argv); }
