#include "matcher/matcher.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "gtest/gtest.h"
#include "matcher/decision.h"
#include "tests/testing/random_items.h"
#include "tests/testing/temp_dir.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::RandomWalk;
using ::trainspotter::testing::WithBitErrors;
using ::trainspotter::testing::WithFragileBitErrors;

// The same audio in many datasets (one upload scraped into several sets, or re-uploaded many
// times): a clip of it lists every copy, up to max_matches. 40 copies are more than the
// nearest neighbours a query window looks up (24) and the alignments a pass verifies (16).
void ExpectEveryCopyListed(Matcher* matcher, bool exhaustive) {
  std::mt19937 rng(23);
  const std::vector<uint32_t> song = RandomWalk(rng, 400);
  constexpr int kCopies = 40;
  for (int c = 0; c < kCopies; ++c) {
    // Most copies identical, some re-encoded (a few bits off).
    ASSERT_TRUE(matcher->Add(5000 + c, c % 4 == 3 ? WithBitErrors(song, 0.03, rng) : song).ok());
  }
  MatchQuery q;
  q.items = WithBitErrors(std::vector<uint32_t>(song.begin() + 100, song.begin() + 180), 0.08, rng);
  q.max_matches = 100;
  q.exhaustive = exhaustive;
  auto r = matcher->Match(q);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<bool> seen(kCopies, false);
  for (const SegmentMatch& m : *r) {
    ASSERT_TRUE(m.member);
    ASSERT_GE(m.key, 5000);
    ASSERT_LT(m.key, 5000 + kCopies);
    EXPECT_NEAR(m.ref_start - m.query_start, ItemToSeconds(100.0), kSecondsPerItem * 1.01);
    seen[m.key - 5000] = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kCopies);
}

class MatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = Matcher::Create({});
    ASSERT_TRUE(m.ok()) << m.status();
    matcher_ = std::move(*m);
    std::mt19937 rng(42);
    for (int k = 0; k < 30; ++k) {
      refs_.push_back(RandomWalk(rng, 600 + 40 * k));  // ~75-220 s
      ASSERT_TRUE(matcher_->Add(1000 + k, refs_.back()).ok());
    }
  }
  std::unique_ptr<Matcher> matcher_;
  std::vector<std::vector<uint32_t>> refs_;
};

TEST_F(MatcherTest, FindsNoisyClipWithItsOffset) {
  std::mt19937 rng(7);
  int found = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const int k = static_cast<int>(rng() % refs_.size());
    const size_t len = 60;  // ~7.5 s of items
    const size_t start = rng() % (refs_[k].size() - len);
    MatchQuery q;
    q.items = WithBitErrors(
        std::vector<uint32_t>(refs_[k].begin() + start, refs_[k].begin() + start + len), 0.10, rng);
    auto r = matcher_->Match(q);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->empty());
    const SegmentMatch& top = (*r)[0];
    if (top.member && top.key == 1000 + k) ++found;
    EXPECT_NEAR(top.ref_start - top.query_start, ItemToSeconds(static_cast<double>(start)),
                kSecondsPerItem * 1.01);
    EXPECT_LT(top.false_match_probability, 1e-6);
    EXPECT_NEAR(top.confidence, 1 - top.false_match_probability, 1e-12);
  }
  EXPECT_EQ(found, 20);
}

TEST_F(MatcherTest, UnrelatedAudioIsNotAMember) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 50; ++trial) {
    MatchQuery q;
    q.include_non_members = true;
    q.items = RandomWalk(rng, 40 + trial * 4);
    auto r = matcher_->Match(q);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const SegmentMatch& m : *r) EXPECT_FALSE(m.member) << "trial " << trial;
  }
}

TEST_F(MatcherTest, SilenceMatchesNothingEvenAgainstSilence) {
  // A reference that contains a long stretch of "silence" (a constant item).
  std::vector<uint32_t> with_silence = refs_[0];
  std::fill(with_silence.begin() + 100, with_silence.begin() + 400, 0x5a5a5a5au);
  ASSERT_TRUE(matcher_->Add(1, with_silence).ok());
  MatchQuery q;
  q.include_non_members = true;
  q.items.assign(120, 0x5a5a5a5au);
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok());
  for (const SegmentMatch& m : *r) EXPECT_FALSE(m.member);
}

TEST_F(MatcherTest, RemoveTakesEffectAtOnce) {
  MatchQuery q;
  q.items.assign(refs_[3].begin() + 50, refs_[3].begin() + 150);
  auto before = matcher_->Match(q);
  ASSERT_TRUE(before.ok());
  ASSERT_FALSE(before->empty());
  EXPECT_EQ((*before)[0].key, 1003);
  ASSERT_TRUE(matcher_->Remove(1003).ok());
  EXPECT_TRUE(matcher_->Remove(1003).ok());  // absent key: OK
  auto after = matcher_->Match(q);
  ASSERT_TRUE(after.ok());
  for (const SegmentMatch& m : *after) EXPECT_NE(m.key, 1003);
  EXPECT_EQ(matcher_->num_tracks(), static_cast<int64_t>(refs_.size()) - 1);
}

TEST_F(MatcherTest, FilterRestrictsReferences) {
  MatchQuery q;
  q.items.assign(refs_[5].begin(), refs_[5].begin() + 100);
  q.filter = [](int64_t key) { return key != 1005; };
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok());
  for (const SegmentMatch& m : *r) EXPECT_NE(m.key, 1005);
}

TEST_F(MatcherTest, LongQueryContainingShortReferenceReportsTheSegment) {
  // A "full master": unrelated audio, then the whole of a short reference, then more audio.
  std::mt19937 rng(3);
  std::vector<uint32_t> short_ref = RandomWalk(rng, 200);
  ASSERT_TRUE(matcher_->Add(77, short_ref).ok());
  std::vector<uint32_t> master = RandomWalk(rng, 300);
  master.insert(master.end(), short_ref.begin(), short_ref.end());
  std::vector<uint32_t> tail = RandomWalk(rng, 300);
  master.insert(master.end(), tail.begin(), tail.end());
  MatchQuery q;
  q.items = WithBitErrors(master, 0.05, rng);
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->empty());
  const SegmentMatch& top = (*r)[0];
  EXPECT_EQ(top.key, 77);
  EXPECT_TRUE(top.member);
  EXPECT_NEAR(top.query_start, ItemToSeconds(300), 1.0);
  // The last matched item (499) summarises audio up to kItemSpanSeconds after its start.
  EXPECT_NEAR(top.query_end, ItemToSeconds(499) + kItemSpanSeconds, 1.0);
  EXPECT_NEAR(top.ref_start, 0.0, 1.0);
}

TEST_F(MatcherTest, ARepetitiveTrackDoesNotHideAnotherThatSharesItsAudio) {
  // A looped track (a 10 s loop played 12 times) and another track whose last 20 s are a noisy
  // copy of part of it. Querying the looped track must list both: the loop's repetitions vote
  // for many alignments of the track with itself, and those must not take every verification.
  std::mt19937 rng(11);
  const std::vector<uint32_t> loop = RandomWalk(rng, 80);
  std::vector<uint32_t> looped;
  for (int k = 0; k < 12; ++k) looped.insert(looped.end(), loop.begin(), loop.end());
  std::vector<uint32_t> other = RandomWalk(rng, 300);
  const std::vector<uint32_t> shared(looped.begin() + 400, looped.begin() + 560);
  const std::vector<uint32_t> noisy_copy = WithBitErrors(shared, 0.15, rng);
  other.insert(other.end(), noisy_copy.begin(), noisy_copy.end());
  ASSERT_TRUE(matcher_->Add(80, looped).ok());
  ASSERT_TRUE(matcher_->Add(81, other).ok());
  MatchQuery q;
  q.items = looped;
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto listed = [&](int64_t key) {
    return std::any_of(r->begin(), r->end(),
                       [&](const SegmentMatch& m) { return m.key == key && m.member; });
  };
  EXPECT_TRUE(listed(80));
  EXPECT_TRUE(listed(81));
}

TEST_F(MatcherTest, AWholeTrackListsEveryTrackThatSharesPartOfIt) {
  // A 5-minute track that opens with a 25 s loop played three times; four tracks that each loop
  // a clean copy of another 20 s of it four times; two that hold one noisier copy of a 20 s
  // each. The loops align in four places per track, and the track with itself in four more:
  // 20 alignments out-vote the two noisy copies, so 16 verifications would never reach them.
  std::mt19937 rng(12);
  const std::vector<uint32_t> loop = RandomWalk(rng, 200);
  std::vector<uint32_t> whole;
  for (int rep = 0; rep < 3; ++rep) whole.insert(whole.end(), loop.begin(), loop.end());
  const std::vector<uint32_t> rest = RandomWalk(rng, 1800);
  whole.insert(whole.end(), rest.begin(), rest.end());
  ASSERT_TRUE(matcher_->Add(90, whole).ok());
  for (int k = 0; k < 6; ++k) {
    const bool looped = k < 4;
    const size_t at = looped ? 700 + 300 * k : 2000 + 200 * (k - 4);
    const std::vector<uint32_t> part(whole.begin() + at, whole.begin() + at + 160);
    std::vector<uint32_t> other = RandomWalk(rng, 100);
    for (int rep = 0; rep < (looped ? 4 : 1); ++rep) {
      const std::vector<uint32_t> copy = WithBitErrors(part, looped ? 0.05 : 0.2, rng);
      other.insert(other.end(), copy.begin(), copy.end());
    }
    ASSERT_TRUE(matcher_->Add(91 + k, other).ok());
  }
  MatchQuery q;
  q.items = whole;
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int64_t key = 90; key <= 96; ++key) {
    EXPECT_TRUE(std::any_of(r->begin(), r->end(),
                            [&](const SegmentMatch& m) { return m.key == key && m.member; }))
        << "track " << key << " not listed";
  }
}

TEST_F(MatcherTest, TheSameAudioInManyReferencesIsListedInEveryOne) {
  ExpectEveryCopyListed(matcher_.get(), /*exhaustive=*/true);
}

// A noisy copy whose errors fall on its fragile bits: with the bit weights that say so, the
// match is far stronger than without. A query that shares only a passage with the reference
// (the rest is other audio) is judged unweighted, however its bits are weighted: inside the
// passage its strong bits agree as a copy's would, over the whole overlap they do not. A short
// copy is weighted only if its strong bits agree.
TEST_F(MatcherTest, BitWeightsStrengthenNoisyCopiesButNotSharedPassages) {
  std::mt19937 rng(41);
  const std::vector<uint32_t> ref(refs_[7].begin() + 100, refs_[7].begin() + 180);
  std::vector<uint8_t> weights;
  const std::vector<uint32_t> copy = WithFragileBitErrors(ref, 0.45, 0.03, rng, &weights);
  auto best = [&](const std::vector<uint32_t>& items, const std::vector<uint8_t>& w) {
    MatchQuery q;
    q.items = items;
    q.weights = w;
    q.include_non_members = true;
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && !r->empty() ? (*r)[0] : SegmentMatch();
  };
  const SegmentMatch unweighted = best(copy, {});
  const SegmentMatch weighted = best(copy, weights);
  EXPECT_EQ(weighted.key, 1007);
  EXPECT_TRUE(weighted.member);
  EXPECT_LT(weighted.log10_chance, unweighted.log10_chance - 3);

  // The middle 30 items shared, the rest other audio.
  std::vector<uint32_t> passage = RandomWalk(rng, ref.size());
  std::copy(copy.begin() + 25, copy.begin() + 55, passage.begin() + 25);
  const SegmentMatch shared_unweighted = best(passage, {});
  const SegmentMatch shared_weighted = best(passage, weights);
  ASSERT_EQ(shared_unweighted.key, 1007);
  EXPECT_EQ(shared_weighted.key, 1007);
  EXPECT_EQ(shared_weighted.log10_chance, shared_unweighted.log10_chance);
  EXPECT_EQ(shared_weighted.false_match_probability, shared_unweighted.false_match_probability);

  // A short query (under kMinWeightedOverlapItems) is weighted only if its strong bits agree
  // (kMaxShortStrongBitErrorRate): too few of them to tell a copy from similar music otherwise.
  // A few strong bits flipped leave it unweighted; a copy whose noise fell on fragile bits only
  // gains as the long one did.
  const size_t n = static_cast<size_t>(kMinWeightedOverlapItems) - 8;
  const std::vector<uint32_t> short_ref(ref.begin(), ref.begin() + n);
  // (unweighted, weighted) best matches of a short noisy copy.
  auto short_copy = [&](double strong_ber) {
    std::vector<uint8_t> w;
    const std::vector<uint32_t> c = WithFragileBitErrors(short_ref, 0.45, strong_ber, rng, &w);
    return std::make_pair(best(c, {}), best(c, w));
  };
  const auto [short_unweighted, short_weighted] = short_copy(0.03);
  ASSERT_EQ(short_unweighted.key, 1007);
  EXPECT_EQ(short_weighted.log10_chance, short_unweighted.log10_chance);

  const auto [clean_unweighted, clean_weighted] = short_copy(0.0);
  EXPECT_EQ(clean_weighted.key, 1007);
  EXPECT_LT(clean_weighted.log10_chance, clean_unweighted.log10_chance - 1);
}

TEST_F(MatcherTest, DeferredVariantsAreComputedOnlyWhenNeededAndCountedFromTheStart) {
  std::mt19937 rng(31);
  const std::vector<uint32_t> clip = WithBitErrors(
      std::vector<uint32_t>(refs_[3].begin() + 200, refs_[3].begin() + 260), 0.04, rng);
  const std::vector<uint32_t> unrelated = RandomWalk(rng, 60);
  int calls = 0;
  auto deferred = [&](QueryVersions phases, QueryVersions speeds) {
    return [&calls, phases, speeds]() -> absl::StatusOr<DeferredVariants> {
      ++calls;
      return DeferredVariants{phases, speeds, nullptr};
    };
  };
  // The same query with its variants given up front, and deferred: the same answer, to the
  // bit. `plain` is what the plain pass sees.
  auto expect_same = [&](const std::vector<uint32_t>& plain, const QueryVersions& phases,
                         const QueryVersions& speeds, int expected_calls) {
    MatchQuery eager;
    eager.items = plain;
    eager.phase_variants = phases;
    eager.speed_variants = speeds;
    auto want = matcher_->Match(eager);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_FALSE(want->empty());
    EXPECT_TRUE((*want)[0].member);
    EXPECT_EQ((*want)[0].key, 1003);

    MatchQuery lazy;
    lazy.items = plain;
    lazy.deferred_variants = deferred(phases, speeds);
    lazy.deferred_versions = static_cast<int>(phases.size() + speeds.size());
    calls = 0;
    auto got = matcher_->Match(lazy);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(calls, expected_calls);
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < want->size(); ++i) {
      EXPECT_EQ((*got)[i].key, (*want)[i].key);
      EXPECT_EQ((*got)[i].false_match_probability, (*want)[i].false_match_probability);
      EXPECT_EQ((*got)[i].speed, (*want)[i].speed);
      EXPECT_EQ((*got)[i].query_start, (*want)[i].query_start);
    }
  };
  // Found by the plain query: the variants are never computed, yet count in its FMP.
  expect_same(clip, {{0.03, {unrelated, {}}}, {0.06, {unrelated, {}}}}, {{1.02, {unrelated, {}}}},
              0);
  // Found only by a deferred variant (one searched: start 0, as the noise-reduced one), or a
  // deferred speed variant.
  expect_same(unrelated, {{0.0, {clip, {}}}}, {{1.02, {unrelated, {}}}}, 1);
  expect_same(unrelated, {{0.03, {unrelated, {}}}}, {{1.02, {clip, {}}}}, 1);

  // More variants than the union bound counted is the caller's bug, reported; so is a failure.
  MatchQuery over;
  over.items = unrelated;
  over.deferred_variants = deferred({{0.03, {clip, {}}}, {0.06, {clip, {}}}}, {});
  over.deferred_versions = 1;
  EXPECT_EQ(matcher_->Match(over).status().code(), absl::StatusCode::kInternal);
  MatchQuery failing;
  failing.items = unrelated;
  failing.deferred_versions = 1;
  failing.deferred_variants = []() -> absl::StatusOr<DeferredVariants> {
    return absl::DeadlineExceededError("clip.wav: deadline passed");
  };
  EXPECT_EQ(matcher_->Match(failing).status().code(), absl::StatusCode::kDeadlineExceeded);
}

// The look-alike screen (decision.h): a clean query (its noise reduction changes nothing)
// that agrees with a reference at a bit error rate of 0.25 is music that sounds alike, not a
// copy; the same agreement from a query whose noise reduction changes 15% of its bits is a
// noisy copy. Without a noise-reduced version (a bare fingerprint) the screen is skipped.
TEST_F(MatcherTest, UnexplainedBitErrorsAreDemotedToSoundsAlike) {
  std::mt19937 rng(57);
  const std::vector<uint32_t> clip = WithBitErrors(
      std::vector<uint32_t>(refs_[5].begin() + 100, refs_[5].begin() + 220), 0.25, rng);
  auto top = [&](const QueryVersions& phases) {
    MatchQuery q;
    q.items = clip;
    q.phase_variants = phases;
    q.include_non_members = true;
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->empty());
    return r->empty() ? SegmentMatch{} : (*r)[0];
  };
  const SegmentMatch bare = top({});
  EXPECT_EQ(bare.key, 1005);
  EXPECT_TRUE(bare.member);
  EXPECT_FALSE(bare.sounds_alike);
  EXPECT_GT(bare.bit_error_rate, kMaxUnexplainedBitErrorRate + 0.05);

  const SegmentMatch clean = top({{0.0, {clip, {}}}});
  EXPECT_EQ(clean.key, 1005);
  EXPECT_FALSE(clean.member);
  EXPECT_TRUE(clean.sounds_alike);
  EXPECT_LT(clean.false_match_probability, 1e-5);  // the chance model alone would pass it

  const std::vector<uint32_t> reduced = WithBitErrors(clip, 0.15, rng);
  ASSERT_NEAR(BitChangeRate(clip, reduced), 0.15, 0.02);
  const SegmentMatch noisy = top({{0.0, {reduced, {}}}});
  EXPECT_EQ(noisy.key, 1005);
  EXPECT_TRUE(noisy.member);
  EXPECT_FALSE(noisy.sounds_alike);
}

// Speed variants are screened too where the query can be refined (its audio is held): a
// reference that only a speed variant of a clean query agrees with at 0.25, at every refined
// speed and phase too, sounds alike. (Before, speed matches went unscreened, and the third
// corpus's last look-alikes came through them.) Without a refiner (variants sent as bare
// fingerprints) a speed match is left as the chance model judged it.
TEST_F(MatcherTest, ALookAlikeFoundAtAnotherSpeedIsDemoted) {
  std::mt19937 rng(61);
  const std::vector<uint32_t> unrelated = RandomWalk(rng, 120);
  const std::vector<uint32_t> alike = WithBitErrors(
      std::vector<uint32_t>(refs_[6].begin() + 100, refs_[6].begin() + 220), 0.25, rng);
  int refined = 0;
  auto top = [&](bool deferred) {
    MatchQuery q;
    q.items = unrelated;
    q.include_non_members = true;
    const QueryVersions phases = {{0.0, {unrelated, {}}}};  // its noise reduction changes nothing
    const QueryVersions speeds = {{1.02, {alike, {}}}};
    if (deferred) {
      q.deferred_versions = 2;
      q.deferred_variants = [&, phases, speeds]() -> absl::StatusOr<DeferredVariants> {
        return DeferredVariants{phases, speeds,
                                [&](double, int) -> absl::StatusOr<std::vector<uint32_t>> {
                                  ++refined;
                                  return alike;
                                }};
      };
    } else {
      q.phase_variants = phases;
      q.speed_variants = speeds;
    }
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->empty());
    return r.ok() && !r->empty() ? (*r)[0] : SegmentMatch{};
  };
  const SegmentMatch screened = top(true);
  EXPECT_EQ(screened.key, 1006);
  EXPECT_EQ(screened.speed, 1.02);
  EXPECT_FALSE(screened.member);
  EXPECT_TRUE(screened.sounds_alike);
  EXPECT_LT(screened.false_match_probability, 1e-5);  // the chance model alone would pass it
  EXPECT_GT(refined, 0);

  const SegmentMatch bare = top(false);
  EXPECT_EQ(bare.key, 1006);
  EXPECT_EQ(bare.speed, 1.02);
  EXPECT_TRUE(bare.member);
  EXPECT_FALSE(bare.sounds_alike);
}

// Without a refiner a speed match whose errors the noise does not explain stays a member, but
// the cascade goes on to the next speed, as after a demotion: a copy re-played 2% slow is
// reported where it fits (1.02), not at the first speed that passed (1.01) -- the answer a
// refiner would give, so `scan` (fingerprints) and `query` (audio) agree.
TEST_F(MatcherTest, AnUnrefinableSpeedMatchLetsTheCascadeGoOn) {
  std::mt19937 rng(73);
  const std::vector<uint32_t> unrelated = RandomWalk(rng, 120);
  const std::vector<uint32_t> copy(refs_[9].begin() + 200, refs_[9].begin() + 320);
  MatchQuery q;
  q.items = unrelated;
  q.phase_variants = {{0.0, {unrelated, {}}}};  // its noise reduction changes nothing
  q.speed_variants = {{1.01, {WithBitErrors(copy, 0.25, rng), {}}}, {1.02, {copy, {}}}};
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].key, 1009);
  EXPECT_TRUE((*r)[0].member);
  EXPECT_EQ((*r)[0].speed, 1.02);
  EXPECT_LT((*r)[0].bit_error_rate, 0.01);
  // Alone, the 1.01 match is still a member: nothing refuted it.
  q.speed_variants.resize(1);
  auto alone = matcher_->Match(q);
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_FALSE(alone->empty());
  EXPECT_TRUE((*alone)[0].member);
  EXPECT_EQ((*alone)[0].speed, 1.01);
}

// Before it demotes a match, the screen asks the refiner for the query at speeds near the one
// that matched and at sub-item phases, verified at the match's alignment: a copy re-played at
// 0.5% off the cascade's speeds agrees far better at its own speed, and stays a member; a
// refiner that offers nothing better leaves the match demoted.
TEST_F(MatcherTest, AMatchThatARefinedSpeedExplainsStaysAMember) {
  std::mt19937 rng(67);
  const std::vector<uint32_t> copy(refs_[8].begin() + 150, refs_[8].begin() + 270);
  const std::vector<uint32_t> off_speed = WithBitErrors(copy, 0.25, rng);
  std::vector<std::pair<double, int>> asked;
  auto run = [&](bool refinable) {
    asked.clear();
    MatchQuery q;
    q.items = off_speed;
    q.include_non_members = true;
    q.deferred_versions = 1;
    q.deferred_variants = [&, refinable]() -> absl::StatusOr<DeferredVariants> {
      DeferredVariants d;
      d.phase_variants = {{0.0, {off_speed, {}}}};  // clean: the reduction changes nothing
      d.refine = [&, refinable](double speed, int skip) -> absl::StatusOr<std::vector<uint32_t>> {
        asked.emplace_back(speed, skip);
        // At its own speed (0.5% slower) and phase 0 the copy agrees exactly.
        if (refinable && std::abs(speed - 0.995) < 1e-9 && skip == 0) return copy;
        return off_speed;
      };
      return d;
    };
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->empty());
    return r.ok() && !r->empty() ? (*r)[0] : SegmentMatch{};
  };
  const SegmentMatch kept = run(true);
  EXPECT_EQ(kept.key, 1008);
  EXPECT_TRUE(kept.member);
  EXPECT_FALSE(kept.sounds_alike);
  EXPECT_EQ(kept.speed, 1.0);  // reported as found; the refinement only judged it
  EXPECT_GT(kept.bit_error_rate, kMaxUnexplainedBitErrorRate + 0.05);
  ASSERT_FALSE(asked.empty());
  EXPECT_NEAR(asked.back().first, 0.995, 1e-9);  // it stopped at the version that explained it

  const SegmentMatch demoted = run(false);
  EXPECT_EQ(demoted.key, 1008);
  EXPECT_FALSE(demoted.member);
  EXPECT_TRUE(demoted.sounds_alike);
  // Speeds within +-0.5% of 1, then phases; at most a few dozen versions.
  ASSERT_FALSE(asked.empty());
  EXPECT_LE(asked.size(), 24u);
  for (const auto& [speed, skip] : asked) {
    EXPECT_GE(speed, 0.995 - 1e-9);
    EXPECT_LE(speed, 1.005 + 1e-9);
    EXPECT_GE(skip, 0);
    EXPECT_LT(skip, kItemHopSamples);
  }
}

// A match that only another speed explains is a copy, found at the wrong speed: the cascade
// goes on, and the speed variant that fits is what the answer reports (a clip 2% fast, found
// first at 1.01, is reported at 0.98), with the first match's membership kept if none fits.
TEST_F(MatcherTest, AMatchExplainedAtAnotherSpeedIsReportedWhereItFits) {
  std::mt19937 rng(79);
  const std::vector<uint32_t> unrelated = RandomWalk(rng, 120);
  const std::vector<uint32_t> copy(refs_[11].begin() + 100, refs_[11].begin() + 220);
  const std::vector<uint32_t> off = WithBitErrors(copy, 0.25, rng);
  auto top = [&](QueryVersions speeds) {
    MatchQuery q;
    q.items = unrelated;
    q.deferred_versions = 1 + static_cast<int>(speeds.size());
    q.deferred_variants = [&, speeds]() -> absl::StatusOr<DeferredVariants> {
      return DeferredVariants{
          {{0.0, {unrelated, {}}}},
          speeds,
          [&](double speed, int) -> absl::StatusOr<std::vector<uint32_t>> {
            // The copy's own speed is 0.98; the refinement around 1.01 reaches 0.985, close
            // enough to be explained but not exact.
            return std::abs(speed - 0.985) < 5e-4 ? WithBitErrors(copy, 0.05, rng) : off;
          }};
    };
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->empty());
    return r.ok() && !r->empty() ? (*r)[0] : SegmentMatch{};
  };
  const SegmentMatch fits = top({{0.99, {off, {}}}, {0.98, {copy, {}}}});
  EXPECT_EQ(fits.key, 1011);
  EXPECT_TRUE(fits.member);
  EXPECT_EQ(fits.speed, 0.98);
  EXPECT_LT(fits.bit_error_rate, 0.01);
  const SegmentMatch kept = top({{0.99, {off, {}}}});
  EXPECT_EQ(kept.key, 1011);
  EXPECT_TRUE(kept.member);
  EXPECT_FALSE(kept.sounds_alike);
  EXPECT_EQ(kept.speed, 0.99);
}

// A reference that holds the look-alike passage twice gives two alignments of equal strength
// over the same query region; each is judged (once, a tie let both through unjudged).
TEST_F(MatcherTest, EquallyStrongLookAlikeAlignmentsAreBothJudged) {
  std::mt19937 rng(71);
  const std::vector<uint32_t> passage = RandomWalk(rng, 120);
  std::vector<uint32_t> twice = RandomWalk(rng, 50);
  twice.insert(twice.end(), passage.begin(), passage.end());
  const std::vector<uint32_t> gap = RandomWalk(rng, 60);
  twice.insert(twice.end(), gap.begin(), gap.end());
  twice.insert(twice.end(), passage.begin(), passage.end());
  ASSERT_TRUE(matcher_->Add(2000, twice).ok());
  const std::vector<uint32_t> alike = WithBitErrors(passage, 0.25, rng);
  MatchQuery q;
  q.items = alike;
  q.phase_variants = {{0.0, {alike, {}}}};
  q.include_non_members = true;
  auto r = matcher_->Match(q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->empty());
  for (const SegmentMatch& m : *r) {
    EXPECT_FALSE(m.member) << "key " << m.key << " at " << m.ref_start << " s";
  }
  EXPECT_EQ((*r)[0].key, 2000);
  EXPECT_TRUE((*r)[0].sounds_alike);
}

TEST_F(MatcherTest, APhaseVariantIsVerifiedWhereItsVersionVoted) {
  // A phase variant (start > 0) is the version before it a fraction of an item later: it is
  // verified at the alignments that version's search voted for, not searched again. A variant
  // at start 0 (other audio on the same grid, as the noise-reduced one) is searched.
  std::mt19937 rng(37);
  const std::vector<uint32_t> clip(refs_[5].begin() + 300, refs_[5].begin() + 360);
  const std::vector<uint32_t> unrelated = RandomWalk(rng, 60);
  auto top = [&](QueryVersions phases) {
    MatchQuery q;
    q.items = unrelated;
    q.phase_variants = std::move(phases);
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && !r->empty() ? (*r)[0] : SegmentMatch();
  };
  // Where the plain query voted there is nothing of the clip's reference.
  EXPECT_FALSE(top({{0.03, {clip, {}}}}).member);
  // Searched, it is found.
  const SegmentMatch searched = top({{0.0, {clip, {}}}});
  EXPECT_TRUE(searched.member);
  EXPECT_EQ(searched.key, 1005);
  // A searched version too damaged to be a member votes for the right alignment; its phase,
  // cleaner, is verified there and found.
  const std::vector<uint32_t> damaged = WithBitErrors(clip, 0.40, rng);
  EXPECT_FALSE(top({{0.0, {damaged, {}}}}).member);
  const SegmentMatch phase = top({{0.0, {damaged, {}}}, {0.03, {clip, {}}}});
  EXPECT_TRUE(phase.member);
  EXPECT_EQ(phase.key, 1005);
  EXPECT_NEAR(phase.query_start, 0.03, 1e-9);
  EXPECT_NEAR(phase.ref_start - phase.query_start, ItemToSeconds(300.0) - 0.03,
              kSecondsPerItem * 1.01);
}

TEST_F(MatcherTest, ExpiredDeadlineIsReported) {
  MatchQuery q;
  q.items.assign(refs_[1].begin(), refs_[1].begin() + 100);
  q.deadline = absl::Now() - absl::Seconds(1);
  auto r = matcher_->Match(q);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(MatcherCreateTest, RejectsTooShortAndBadOptions) {
  auto m = Matcher::Create({});
  ASSERT_TRUE(m.ok());
  std::vector<uint32_t> tiny(5, 1);
  EXPECT_EQ((*m)->Add(1, tiny).code(), absl::StatusCode::kInvalidArgument);
  MatcherOptions bad;
  bad.max_false_match_probability = 0;
  EXPECT_FALSE(Matcher::Create(bad).ok());
}

TEST(MatcherCreateTest, ReplacingAKeyKeepsOneCopy) {
  auto m = Matcher::Create({});
  ASSERT_TRUE(m.ok());
  std::mt19937 rng(1);
  auto a = RandomWalk(rng, 300), b = RandomWalk(rng, 300);
  ASSERT_TRUE((*m)->Add(9, a).ok());
  ASSERT_TRUE((*m)->Add(9, b).ok());
  EXPECT_EQ((*m)->num_tracks(), 1);
  EXPECT_EQ((*m)->num_items(), 300);
  MatchQuery q;
  q.items.assign(a.begin() + 10, a.begin() + 110);
  auto r = (*m)->Match(q);
  ASSERT_TRUE(r.ok());
  for (const SegmentMatch& s : *r) EXPECT_FALSE(s.member);
}

}  // namespace
}  // namespace trainspotter

namespace trainspotter {
namespace {

TEST(MatcherNarrowbandTest, TwinIsSearchedAndReportedUnderItsKey) {
  auto m = Matcher::Create({});
  ASSERT_TRUE(m.ok());
  std::mt19937 rng(21);
  const std::vector<uint32_t> full = RandomWalk(rng, 400);
  const std::vector<uint32_t> twin = RandomWalk(rng, 400);  // what band-limiting would give
  EXPECT_EQ((*m)->AddNarrowband(5, twin).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*m)->Add(5, full).ok());
  ASSERT_TRUE((*m)->AddNarrowband(5, twin).ok());
  EXPECT_EQ((*m)->num_tracks(), 1);
  MatchQuery q;
  q.items.assign(twin.begin() + 100, twin.begin() + 180);
  auto r = (*m)->Match(q);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].key, 5);
  EXPECT_TRUE((*r)[0].member);
  EXPECT_NEAR((*r)[0].ref_start, ItemToSeconds(100), kSecondsPerItem);
  // Replacing the key drops the old twin; removing it drops everything.
  ASSERT_TRUE((*m)->Add(5, full).ok());
  r = (*m)->Match(q);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  ASSERT_TRUE((*m)->AddNarrowband(5, twin).ok());
  ASSERT_TRUE((*m)->Remove(5).ok());
  r = (*m)->Match(q);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ((*m)->num_items(), 0);
}

}  // namespace
}  // namespace trainspotter

namespace trainspotter {
namespace {

TEST(MatcherCompactionTest, ManyReplacementsAndRemovalsKeepAnswersRight) {
  auto m = Matcher::Create({});
  ASSERT_TRUE(m.ok());
  std::mt19937 rng(77);
  std::vector<std::vector<uint32_t>> current(10);
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 10; ++k) {
      current[k] = RandomWalk(rng, 500);
      ASSERT_TRUE((*m)->Add(k, current[k]).ok());  // replaces: leaves dead items to compact
    }
  }
  ASSERT_TRUE((*m)->Remove(3).ok());
  EXPECT_EQ((*m)->num_tracks(), 9);
  EXPECT_EQ((*m)->num_items(), 9 * 500);
  for (int k = 0; k < 10; ++k) {
    MatchQuery q;
    q.items.assign(current[k].begin() + 200, current[k].begin() + 280);
    auto r = (*m)->Match(q);
    ASSERT_TRUE(r.ok());
    if (k == 3) {
      EXPECT_TRUE(r->empty());
    } else {
      ASSERT_FALSE(r->empty()) << k;
      EXPECT_EQ((*r)[0].key, k);
      EXPECT_NEAR((*r)[0].ref_start, ItemToSeconds(200), kSecondsPerItem);
    }
  }
}

// The approximate index (MatcherOptions::approximate_min_items reached) against the exhaustive
// scan on the same matcher: same answers on clips of every reference, before and after the
// catalogue changes.
class ApproximateMatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MatcherOptions options;
    options.approximate_min_items = 1000;  // small enough that 30 references cross it
    auto m = Matcher::Create(options);
    ASSERT_TRUE(m.ok()) << m.status();
    matcher_ = std::move(*m);
    std::mt19937 rng(4);
    for (int k = 0; k < 30; ++k) {
      refs_.push_back(RandomWalk(rng, 700 + 20 * k));
      ASSERT_TRUE(matcher_->Add(k, refs_.back()).ok());
    }
    ASSERT_TRUE(matcher_->FinishLoading().ok());
  }

  // The top match of a noisy 10 s clip of reference k at `offset`, or -1 for none.
  std::pair<int64_t, double> Top(int k, size_t offset, bool exhaustive, std::mt19937& rng) {
    MatchQuery q;
    q.items = WithBitErrors(
        std::vector<uint32_t>(refs_[k].begin() + offset, refs_[k].begin() + offset + 78), 0.12,
        rng);
    q.exhaustive = exhaustive;
    auto r = matcher_->Match(q);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->empty()) return {-1, 0};
    return {(*r)[0].key, (*r)[0].ref_start};
  }

  std::unique_ptr<Matcher> matcher_;
  std::vector<std::vector<uint32_t>> refs_;
};

TEST_F(ApproximateMatcherTest, FindsWhatTheExhaustiveScanFinds) {
  std::mt19937 rng(8);
  for (int trial = 0; trial < 20; ++trial) {
    const int k = static_cast<int>(rng() % refs_.size());
    const size_t offset = rng() % (refs_[k].size() - 78);
    auto approximate = Top(k, offset, /*exhaustive=*/false, rng);
    auto exhaustive = Top(k, offset, /*exhaustive=*/true, rng);
    EXPECT_EQ(exhaustive.first, k);
    EXPECT_EQ(approximate.first, k) << "trial " << trial;
    EXPECT_NEAR(approximate.second, ItemToSeconds(static_cast<double>(offset)), kSecondsPerItem);
  }
}

TEST_F(ApproximateMatcherTest, TheSameAudioInManyReferencesIsListedInEveryOne) {
  ExpectEveryCopyListed(matcher_.get(), /*exhaustive=*/false);
}

TEST_F(ApproximateMatcherTest, AddsRemovesAndCompactionsStaySearchable) {
  std::mt19937 rng(9);
  std::vector<uint32_t> late = RandomWalk(rng, 800);
  ASSERT_TRUE(matcher_->Add(100, late).ok());
  refs_.push_back(late);
  EXPECT_EQ(Top(30, 300, false, rng).first, 100);
  // Removal takes effect at once; removing most references compacts (and rebuilds the index).
  ASSERT_TRUE(matcher_->Remove(5).ok());
  EXPECT_NE(Top(5, 100, false, rng).first, 5);
  for (int k = 0; k < 25; ++k) ASSERT_TRUE(matcher_->Remove(k).ok());
  EXPECT_EQ(matcher_->num_tracks(), 6);
  for (int k = 25; k < 30; ++k) EXPECT_EQ(Top(k, 50, false, rng).first, k);
  EXPECT_EQ(Top(30, 10, false, rng).first, 100);
  EXPECT_EQ(Top(3, 10, false, rng).first, -1);
}

TEST_F(ApproximateMatcherTest, SnapshotRoundTripGivesTheSameAnswers) {
  TempDir dir;
  const std::string path = dir.Join("snap");
  ASSERT_TRUE(matcher_->Remove(4).ok());  // dead items are left out of the file
  ASSERT_TRUE(matcher_->WriteSnapshot(path, [](int64_t key) { return key * 10 + 1; }).ok());
  MatcherOptions options;
  options.approximate_min_items = 1000;
  auto copy = Matcher::Create(options);
  ASSERT_TRUE(copy.ok());
  auto stamps = (*copy)->ReadSnapshot(path);
  ASSERT_TRUE(stamps.ok()) << stamps.status();
  ASSERT_EQ(stamps->size(), 29u);
  for (const auto& [key, stamp] : *stamps) {
    EXPECT_NE(key, 4);
    EXPECT_EQ(stamp, key * 10 + 1);
  }
  ASSERT_TRUE((*copy)->FinishLoading().ok());
  EXPECT_EQ((*copy)->num_tracks(), matcher_->num_tracks());
  EXPECT_EQ((*copy)->num_items(), matcher_->num_items());
  std::mt19937 rng(12);
  for (int trial = 0; trial < 10; ++trial) {
    const int k = static_cast<int>(rng() % refs_.size());
    MatchQuery q;
    q.items = WithBitErrors(std::vector<uint32_t>(refs_[k].begin() + 100, refs_[k].begin() + 178),
                            0.1, rng);
    auto a = matcher_->Match(q);
    auto b = (*copy)->Match(q);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size()) << k;
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].key, (*b)[i].key);
      EXPECT_EQ((*a)[i].ref_start, (*b)[i].ref_start);
      EXPECT_EQ((*a)[i].false_match_probability, (*b)[i].false_match_probability);
    }
  }
  // Into a matcher that already has references: refused.
  EXPECT_TRUE(absl::IsFailedPrecondition(matcher_->ReadSnapshot(path).status()));
}

TEST_F(ApproximateMatcherTest, DamagedSnapshotsAreRefusedWholesale) {
  TempDir dir;
  const std::string path = dir.Join("snap");
  ASSERT_TRUE(matcher_->WriteSnapshot(path, [](int64_t) { return 0; }).ok());
  const std::string good = *ReadFile(path);
  auto fresh = [] {
    auto m = Matcher::Create({});
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  };
  for (size_t cut : {size_t{10}, good.size() / 3, good.size() - 1}) {
    ASSERT_TRUE(WriteFileAtomically(path, good.substr(0, cut)).ok());
    auto m = fresh();
    absl::Status s = m->ReadSnapshot(path).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << cut << ": " << s;
    EXPECT_EQ(m->num_tracks(), 0) << "nothing half-loaded";
  }
  std::string bad = good;
  bad[0] = 'X';
  ASSERT_TRUE(WriteFileAtomically(path, bad).ok());
  EXPECT_TRUE(absl::IsDataLoss(fresh()->ReadSnapshot(path).status()));
  EXPECT_TRUE(absl::IsNotFound(fresh()->ReadSnapshot(dir.Join("none")).status()));
  ASSERT_TRUE(WriteFileAtomically(path, good).ok());
  auto m = fresh();
  EXPECT_TRUE(m->ReadSnapshot(path).ok());
  EXPECT_EQ(m->num_tracks(), 30);
}

TEST(MatcherOptionsTest, RefusesApproximateIndexSettingsItCannotUse) {
  MatcherOptions bad_stride;
  bad_stride.approximate_stride = 5;
  EXPECT_TRUE(absl::IsInvalidArgument(Matcher::Create(bad_stride).status()));
  MatcherOptions bad_fraction;
  bad_fraction.approximate_probe_fraction = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Matcher::Create(bad_fraction).status()));
  MatcherOptions bad_budget;
  bad_budget.approximate_min_budget = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Matcher::Create(bad_budget).status()));
  MatcherOptions stride4;
  stride4.approximate_stride = 4;
  EXPECT_TRUE(Matcher::Create(stride4).ok());
}

}  // namespace
}  // namespace trainspotter
