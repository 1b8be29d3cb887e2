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
//   null_calibration --catalog DIR [--stride-items 4] [--lengths 19,59,222] [--scores F] FILE...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "matcher/catalog.h"

namespace trainspotter {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"Empirical check of false_match_probability on non-member audio"};
  std::string catalog_dir;
  int stride = 4;
  std::vector<int> lengths = {19, 59, 222};  // items of a 5, 10 and 30 s clip
  std::vector<std::string> files;
  std::string scores_path;
  app.add_option("--catalog", catalog_dir, "catalogue (must not contain the files' audio)")
      ->required();
  app.add_option("--stride-items", stride, "items between consecutive clips")
      ->check(CLI::Range(1, 1000));
  app.add_option("--lengths", lengths, "clip lengths in items")->delimiter(',');
  app.add_option("--scores", scores_path,
                 "also write 'items log10_chance fmp file item track_id' per query here");
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
  for (int len : lengths) {
    std::vector<double> best;
    for (const std::string& f : files) {
      FingerprintOptions fo;
      fo.max_seconds = 0;
      auto fp = FingerprintFile(f, fo);
      if (!fp.ok()) {
        std::fprintf(stderr, "%s\n", std::string(fp.status().message()).c_str());
        continue;
      }
      const auto& items = fp->fingerprint.items;
      for (size_t at = 0; at + static_cast<size_t>(len) <= items.size(); at += stride) {
        CatalogQuery q;
        q.items.assign(items.begin() + at, items.begin() + at + len);
        q.include_non_members = true;
        q.max_matches = 1;
        auto r = (*catalog)->Match(q);
        if (!r.ok()) continue;
        best.push_back(r->matches.empty() ? 1.0 : r->matches[0].segment.false_match_probability);
        if (scores != nullptr) {
          std::fprintf(scores, "%d\t%.4f\t%.4g\t%s\t%zu\t%s\n", len,
                       r->matches.empty() ? 0.0 : r->matches[0].segment.log10_chance, best.back(),
                       f.c_str(), at,
                       r->matches.empty() ? "-" : r->matches[0].track.track_id.c_str());
        }
      }
    }
    std::printf("clips of %d items (%.1f s of audio): %zu non-member queries\n", len,
                ItemToSeconds(len - 1) + kItemSpanSeconds, best.size());
    for (double p : levels) {
      const auto below = std::count_if(best.begin(), best.end(), [p](double x) { return x <= p; });
      std::printf("  fmp <= %-6g observed %5ld (%.2e of queries), expected at most %.2e\n", p,
                  static_cast<long>(below),
                  best.empty() ? 0.0 : static_cast<double>(below) / best.size(), p);
    }
  }
  if (scores != nullptr) std::fclose(scores);
  return 0;
}

}  // namespace
}  // namespace trainspotter

int main(int argc, char** argv) { return trainspotter::Main(argc, argv); }
