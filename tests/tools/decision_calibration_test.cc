// The decision's false-match probability on real non-member music: a quick version of
// tools/null-calibration.sh (the real fingerprinter and matcher, no CLI). A calibrated model puts
// at most a fraction p of non-member queries at or below p; the shipped one has a 5x margin.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "matcher/matcher.h"
#include "tests/testing/test_env.h"

namespace trainspotter {
namespace {

std::vector<uint32_t> WholeTrack(const std::string& path) {
  FingerprintOptions options;
  options.max_seconds = 0;
  absl::StatusOr<FingerprintResult> r = FingerprintFile(path, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->fingerprint.items : std::vector<uint32_t>{};
}

TEST(DecisionCalibrationTest, NonMemberRealMusicScoresAsRarelyAsClaimed) {
  const std::vector<std::string> files = testing::TestMusicFiles();
  if (files.size() < 16) GTEST_SKIP() << testing::MissingMusicMessage();
  absl::StatusOr<std::unique_ptr<Matcher>> matcher = Matcher::Create(MatcherOptions());
  ASSERT_TRUE(matcher.ok()) << matcher.status();
  // The first 16 tracks: every other one is a reference, the rest are queried against them.
  std::vector<std::vector<uint32_t>> queries;
  for (size_t i = 0; i < 16; ++i) {
    std::vector<uint32_t> items = WholeTrack(files[i]);
    if (items.size() < 100) continue;  // a jingle of a few seconds
    if (i % 2 == 0) {
      ASSERT_TRUE((*matcher)->Add(static_cast<int64_t>(i), items).ok());
    } else {
      queries.push_back(std::move(items));
    }
  }
  ASSERT_TRUE((*matcher)->FinishLoading().ok());

  int64_t total = 0, at_most_1e2 = 0, at_most_1e3 = 0, members = 0, skipped = 0;
  for (const std::vector<uint32_t>& track : queries) {
    // A track that shares audio with a reference (the fixture has reprises) is no non-member.
    MatchQuery whole;
    whole.items = track;
    absl::StatusOr<std::vector<SegmentMatch>> shared = (*matcher)->Match(whole);
    ASSERT_TRUE(shared.ok()) << shared.status();
    if (!shared->empty()) {
      ++skipped;
      continue;
    }
    for (size_t length : {19, 59}) {  // items of a 5 and a 10 s clip
      for (size_t at = 0; at + length <= track.size(); at += 4) {
        MatchQuery q;
        q.items.assign(track.begin() + at, track.begin() + at + length);
        q.include_non_members = true;
        q.max_matches = 1;
        absl::StatusOr<std::vector<SegmentMatch>> r = (*matcher)->Match(q);
        ASSERT_TRUE(r.ok()) << r.status();
        const double fmp = r->empty() ? 1.0 : (*r)[0].false_match_probability;
        ++total;
        at_most_1e2 += fmp <= 1e-2;
        at_most_1e3 += fmp <= 1e-3;
        members += !r->empty() && (*r)[0].member;
      }
    }
  }
  EXPECT_LE(skipped, 2);
  ASSERT_GT(total, 3000);
  EXPECT_EQ(members, 0);
  EXPECT_LE(at_most_1e2, total / 100) << "of " << total;
  EXPECT_LE(at_most_1e3, std::max<int64_t>(1, total / 1000)) << "of " << total;
}

}  // namespace
}  // namespace trainspotter
