#include "matcher/decision.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/fingerprint_types.h"
#include "gtest/gtest.h"
#include "tests/testing/random_items.h"

namespace trainspotter {
namespace {

SegmentEvidence Music(int64_t items, double ber, double flip_rate, double common_fraction) {
  SegmentEvidence e;
  e.items = items;
  e.bit_errors = static_cast<int64_t>(ber * 32 * items);
  e.expected_bit_errors = 0.45 * 32 * items;
  e.query_flips = static_cast<int64_t>(flip_rate * 32 * items);
  e.reference_flips = e.query_flips;
  e.common_flips = static_cast<int64_t>(common_fraction * e.query_flips);
  return e;
}

TEST(DecisionTest, NoTransitionsIsNoEvidence) {
  // Silence against silence: perfect agreement, nothing changes, nothing expected to differ.
  SegmentEvidence e;
  e.items = 200;
  e.bit_errors = 0;
  e.expected_bit_errors = 0;
  EXPECT_EQ(LogChanceAgreement(e), 0.0);
  EXPECT_EQ(FalseMatchProbability(e, 1e6), 1.0);
}

TEST(DecisionTest, ChanceLevelAgreementIsNoEvidence) {
  SegmentEvidence e = Music(100, 0.45, 0.15, 0.15);
  EXPECT_GT(LogChanceAgreement(e), -2.0);
}

TEST(DecisionTest, EvidenceGrowsWithLengthAndAgreement) {
  const double short_clip = LogChanceAgreement(Music(20, 0.1, 0.15, 0.7));
  const double long_clip = LogChanceAgreement(Music(200, 0.1, 0.15, 0.7));
  const double noisy = LogChanceAgreement(Music(200, 0.3, 0.15, 0.35));
  EXPECT_LT(long_clip, short_clip);
  EXPECT_LT(long_clip, noisy);
  EXPECT_LT(short_clip, 0.0);
}

TEST(DecisionTest, MoreAlignmentsMeanLessConfidence) {
  SegmentEvidence e = Music(60, 0.15, 0.15, 0.6);
  const double small = FalseMatchProbability(e, 1e4);
  const double large = FalseMatchProbability(e, 1e8);
  EXPECT_LT(small, large);
  EXPECT_GE(small, 0.0);
  EXPECT_LE(large, 1.0);
}

// Evidence of two equally long item sequences aligned item for item.
SegmentEvidence Count(const std::vector<uint32_t>& q, const std::vector<uint32_t>& r) {
  return CountEvidence(q.data(), r.data(), 0, static_cast<int64_t>(q.size()), 0);
}

// Noise-like audio: a fixed item whose `active` lowest bits are redrawn at random for each item
// (the bits whose filters sit near a quantiser threshold), the rest constant.
std::vector<uint32_t> NoiseLike(std::mt19937* rng, int items, int active, uint32_t base) {
  std::vector<uint32_t> out(static_cast<size_t>(items));
  const uint32_t mask = (uint32_t{1} << active) - 1;
  for (uint32_t& item : out) item = (base & ~mask) | ((*rng)() & mask);
  return out;
}

// `pairs` item pairs over which every bit position flips `flips_per_bit` times in the query and
// in the reference, `common` of the flips at the same item in both.
SegmentEvidence EvenFlips(int64_t pairs, int32_t flips_per_bit, int64_t common) {
  SegmentEvidence e;
  e.items = pairs + 1;
  e.flip_pairs = pairs;
  e.query_flips_by_bit.fill(flips_per_bit);
  e.reference_flips_by_bit.fill(flips_per_bit);
  e.query_flips = e.reference_flips = 32 * flips_per_bit;
  e.common_flips = common;
  return e;
}

TEST(DecisionTest, EvenlySpreadFlipsMatchTheBinomialBound) {
  // Flips spread evenly over the 32 positions: the per-position bound is the binomial Chernoff
  // bound exp(-n KL(q || p)), discounted for dependent transitions; compare with the closed form.
  // Half of the query's flips coincide; chance alone gives a fifth.
  SegmentEvidence e = EvenFlips(100, 20, 320);
  e.expected_bit_errors = 0.5 * 32 * 101;
  e.bit_errors = e.expected_bit_errors;  // the bit test sees nothing
  const double n = 640, q = 0.5, p = 0.2;
  const double kl = q * std::log(q / p) + (1 - q) * std::log((1 - q) / (1 - p));
  const double log_chance = LogChanceAgreement(e);  // the bit test adds nothing here
  EXPECT_LT(log_chance, -0.5 * n * kl);             // the dependence discount is below 2
  EXPECT_GT(log_chance, -n * kl);  // and the bound is no stronger than independent trials
  SegmentEvidence totals_only = e;
  totals_only.flip_pairs = 0;  // the same totals without positions: taken as spread evenly
  EXPECT_NEAR(LogChanceAgreement(totals_only), LogChanceAgreement(e), 0.05);
}

TEST(DecisionTest, FlipsInTheSameFewBitsAreWeakerEvidence) {
  // The same totals, once spread over all positions, once concentrated in 4 bits in both: in the
  // second case coincidences are expected (noise against a noisy passage).
  SegmentEvidence spread = EvenFlips(60, 4, 64);
  SegmentEvidence concentrated = spread;
  concentrated.query_flips_by_bit.fill(0);
  concentrated.reference_flips_by_bit.fill(0);
  for (int b = 0; b < 4; ++b) {
    concentrated.query_flips_by_bit[b] = 32;
    concentrated.reference_flips_by_bit[b] = 32;
  }
  EXPECT_LT(LogChanceAgreement(spread), LogChanceAgreement(concentrated) - 10.0);
}

TEST(DecisionTest, CountEvidenceCountsEachBitPosition) {
  // Worked by hand: errors are q ^ r = {00, 10, 01}; bit 0 is set in 2 query and 3 reference
  // items, bit 1 in 2 query items and 1 reference item.
  const SegmentEvidence e = Count({0b01, 0b11, 0b10}, {0b01, 0b01, 0b11});
  EXPECT_TRUE(e.bits_by_position);
  EXPECT_EQ(e.bit_errors, 2);
  EXPECT_EQ(e.bit_errors_by_bit[0], 1);
  EXPECT_EQ(e.bit_errors_by_bit[1], 1);
  EXPECT_EQ(e.query_ones_by_bit[0], 2);
  EXPECT_EQ(e.query_ones_by_bit[1], 2);
  EXPECT_EQ(e.reference_ones_by_bit[0], 3);
  EXPECT_EQ(e.reference_ones_by_bit[1], 1);
  for (int b = 2; b < 32; ++b) {
    EXPECT_EQ(e.bit_errors_by_bit[b] + e.query_ones_by_bit[b] + e.reference_ones_by_bit[b], 0);
  }
}

TEST(DecisionTest, BitAgreementIsJudgedPerPosition) {
  // 100 items; 16 positions vary (set in half the items of both segments, 20 flips each) and
  // agree in 90 items, the other 16 are set throughout both. Pooled over all 32 positions the
  // agreement looks like 95% against an expected 75%; per position, the varying positions carry
  // all the trials at 90% against 50%, which is much stronger evidence (about 124 nats against
  // 51 for the pooled bound). The flips coincide at chance, so only the bit test speaks.
  SegmentEvidence e;
  e.items = 100;
  e.flip_pairs = 99;
  e.bits_by_position = true;
  for (int b = 0; b < 16; ++b) {
    e.query_ones_by_bit[b] = e.reference_ones_by_bit[b] = 50;
    e.bit_errors_by_bit[b] = 10;
    e.query_flips_by_bit[b] = e.reference_flips_by_bit[b] = 20;
  }
  for (int b = 16; b < 32; ++b) e.query_ones_by_bit[b] = e.reference_ones_by_bit[b] = 100;
  e.bit_errors = 160;
  e.expected_bit_errors = 800;
  e.query_flips = e.reference_flips = 320;
  e.common_flips = 50;
  const double per_position = LogChanceAgreement(e);
  SegmentEvidence pooled = e;
  pooled.bits_by_position = false;
  EXPECT_LT(per_position, 2 * LogChanceAgreement(pooled));
  EXPECT_LT(LogChanceAgreement(pooled), -20.0);

  // Agreement only where both segments are constant is no evidence at all.
  SegmentEvidence chance = e;
  for (int b = 0; b < 16; ++b) chance.bit_errors_by_bit[b] = 50;
  EXPECT_GT(LogChanceAgreement(chance), -1.0);
}

TEST(DecisionTest, SilenceInBothAddsNoEvidence) {
  // A passage of music and a copy of it with 10% of its bits flipped, then both fall silent: the
  // silence, and the fall into it, must leave the evidence exactly as it was without them.
  std::mt19937 rng(7);
  std::vector<uint32_t> q(40), r(40);
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = (i > 0 && i % 3 != 0) ? q[i - 1] ^ (rng() & rng() & rng()) : rng();
    r[i] = q[i];
    for (int b = 0; b < 32; ++b) {
      if (rng() % 10 == 0) r[i] ^= uint32_t{1} << b;
    }
  }
  const SegmentEvidence music = Count(q, r);
  ASSERT_LT(LogChanceAgreement(music), -20.0);  // the premise: the passage itself is evidence
  std::vector<uint32_t> qs = q, rs = r;
  qs.insert(qs.end(), 25, kSilenceItem);
  rs.insert(rs.end(), 25, kSilenceItem);
  const SegmentEvidence with_silence = Count(qs, rs);
  EXPECT_EQ(with_silence.items, music.items);
  EXPECT_EQ(with_silence.silent_items, 25);
  EXPECT_EQ(with_silence.bit_errors, music.bit_errors);
  EXPECT_EQ(with_silence.common_flips, music.common_flips);
  EXPECT_EQ(LogChanceAgreement(with_silence), LogChanceAgreement(music));
}

TEST(DecisionTest, FallingSilentAtTheSameItemIsNoMatch) {
  // Modelled on real audio: the last three items of a sine sweep leaving Chromaprint's band (as
  // Chromaprint gave them), against the fade-out of an unrelated track that differs from them in
  // a few bits; then both are kSilenceItem. Falling silent flips the same ~15 bits in both at
  // the same item. Counted as coincident transitions, that gave an FMP of 2e-10 in a catalogue of
  // a thousand 3-minute tracks: a match.
  const std::vector<uint32_t> q = {0x37EC132F, 0x37EC332F, 0x37EC0D2F};
  const std::vector<uint32_t> r = {0x37EC032F, 0x37EC332F, 0x37EC0F2F};
  std::vector<uint32_t> qs = q, rs = r;
  qs.insert(qs.end(), 16, kSilenceItem);
  rs.insert(rs.end(), 16, kSilenceItem);
  const double comparisons = 1000 * 180 * 8.0 * 7 * 19;  // items x query versions x starts
  EXPECT_EQ(FalseMatchProbability(Count(qs, rs), comparisons), 1.0);
}

TEST(DecisionTest, NoiseAgainstNoiseIsNotAMatchInACatalogue) {
  // Independent noise-like sequences with the same constant bits, over a 1-hour catalogue's
  // comparisons: none is a member, and false-match probabilities are about as rare as they
  // claim (a calibrated model puts 0.2 of 200 at or below 1e-3, 2 at or below 1e-2). The even
  // spread model put every one of these below 1e-12.
  std::mt19937 rng(7);
  const double comparisons = 29000.0 * 8 * 80;  // items in 1 h x query versions x query items
  int below_1e3 = 0, below_1e2 = 0;
  double lowest = 1;
  for (int trial = 0; trial < 200; ++trial) {
    const uint32_t base = rng();
    const double p = FalseMatchProbability(
        Count(NoiseLike(&rng, 80, 4, base), NoiseLike(&rng, 80, 4, base)), comparisons);
    lowest = std::min(lowest, p);
    below_1e3 += p <= 1e-3;
    below_1e2 += p <= 1e-2;
  }
  EXPECT_GT(lowest, 1e-4);
  EXPECT_LE(below_1e3, 1);
  EXPECT_LE(below_1e2, 6);
}

TEST(DecisionTest, SharedAudioIsAMatchDespiteNoise) {
  // The same music-like sequence, with a quarter of the query's bits' values flipped at random
  // in 1 item of 4: the kind of damage 0 dB noise does. Found in a 1-hour catalogue.
  std::mt19937 rng(11);
  std::vector<uint32_t> ref(80);
  uint32_t item = rng();
  for (uint32_t& r : ref) {
    item ^= rng() & rng() & rng();  // each bit flips with chance 1/8 per item
    r = item;
  }
  std::vector<uint32_t> query = ref;
  for (uint32_t& x : query) {
    if (rng() % 4 == 0) x ^= rng() & rng();
  }
  const double comparisons = 29000.0 * 8 * 80;
  EXPECT_LT(FalseMatchProbability(Count(query, ref), comparisons), 1e-5);
}

TEST(DecisionTest, FalseMatchProbabilityIsProportionalToComparisons) {
  SegmentEvidence e = Music(60, 0.2, 0.15, 0.5);
  const double p1 = FalseMatchProbability(e, 1e4);
  const double p2 = FalseMatchProbability(e, 2e4);
  ASSERT_GT(p1, 0.0);
  ASSERT_LT(p2, 1.0);
  EXPECT_NEAR(p2 / p1, 2.0, 1e-9);
}

// Music-like items: each bit flips with chance 1/8 per item.
std::vector<uint32_t> MusicLike(std::mt19937* rng, int items) {
  std::vector<uint32_t> out(static_cast<size_t>(items));
  uint32_t item = (*rng)();
  for (uint32_t& x : out) {
    item ^= (*rng)() & (*rng)() & (*rng)();
    x = item;
  }
  return out;
}

SegmentEvidence CountWeighted(const std::vector<uint32_t>& q, const std::vector<uint32_t>& r,
                              const std::vector<uint8_t>& w) {
  return CountEvidence(q.data(), r.data(), 0, static_cast<int64_t>(q.size()), 0, w.data());
}

TEST(DecisionTest, FullWeightsGiveTheUnweightedEvidence) {
  // Every bit at full weight is the unweighted test: the same evidence, to rounding.
  std::mt19937 rng(21);
  for (double ber : {0.05, 0.2, 0.35}) {
    const std::vector<uint32_t> ref = MusicLike(&rng, 60);
    const std::vector<uint32_t> query = ::trainspotter::testing::WithBitErrors(ref, ber, rng);
    const std::vector<uint8_t> full(32 * query.size(), kMaxBitWeight);
    const SegmentEvidence weighted = CountWeighted(query, ref, full);
    EXPECT_TRUE(weighted.weighted);
    EXPECT_NEAR(LogChanceAgreement(weighted), LogChanceAgreement(Count(query, ref)), 1e-6) << ber;
  }
}

TEST(DecisionTest, WeighingFragileBitsDownStrengthensANoisyCopy) {
  // Noise flips the fragile bits (those it can tip over a threshold): 40% of them here, 3% of
  // the strong ones. Weighing each bit by how fragile it is finds the copy where the unweighted
  // test only suspects it; weights that do not say which bits are fragile add nothing.
  std::mt19937 rng(23);
  const std::vector<uint32_t> ref = MusicLike(&rng, 40);
  std::vector<uint8_t> weights;
  const std::vector<uint32_t> query =
      ::trainspotter::testing::WithFragileBitErrors(ref, 0.4, 0.03, rng, &weights);
  std::bernoulli_distribution fragile(0.5);
  const double unweighted = LogChanceAgreement(Count(query, ref));
  const double weighted = LogChanceAgreement(CountWeighted(query, ref, weights));
  EXPECT_LT(weighted, unweighted - std::log(1e3));  // at least 3 decades more evidence
  std::vector<uint8_t> uninformed(weights.size());
  for (uint8_t& w : uninformed) w = fragile(rng) ? 1 : kMaxBitWeight;
  EXPECT_GT(LogChanceAgreement(CountWeighted(query, ref, uninformed)), weighted + std::log(1e3));
}

TEST(DecisionTest, WeightedChanceIsABoundForUnrelatedAudio) {
  // However the query's bits are weighed, unrelated audio agrees with it no more often than the
  // bound claims: of 2000 unrelated pairs with random weights, at most about p of them score a
  // single-alignment chance at or below p.
  std::mt19937 rng(29);
  std::uniform_int_distribution<int> weight(0, kMaxBitWeight);
  const int trials = 2000;
  int below_1e1 = 0, below_1e2 = 0, below_1e3 = 0;
  for (int t = 0; t < trials; ++t) {
    const std::vector<uint32_t> query = MusicLike(&rng, 40), ref = MusicLike(&rng, 40);
    std::vector<uint8_t> w(32 * query.size());
    for (uint8_t& x : w) x = static_cast<uint8_t>(weight(rng));
    const double chance = std::exp(LogChanceAgreement(CountWeighted(query, ref, w)));
    below_1e1 += chance <= 1e-1;
    below_1e2 += chance <= 1e-2;
    below_1e3 += chance <= 1e-3;
  }
  EXPECT_LE(below_1e1, trials / 10);
  EXPECT_LE(below_1e2, trials / 100);
  EXPECT_LE(below_1e3, 2 + trials / 1000);
}

TEST(DecisionTest, StrongBitErrorRateCountsOnlyStrongBits) {
  const std::vector<uint32_t> ref = {0x0000FFFFu, 0x12345678u};
  // Item 0: bits 0-7 strong, 4 of them wrong; bits 8-31 weak and all wrong. Item 1: no strong
  // bits.
  const std::vector<uint32_t> query = {ref[0] ^ 0xFFFFFF0Fu, ref[1] ^ 0xFFFFFFFFu};
  std::vector<uint8_t> w(64, kStrongBitWeight - 1);
  for (int b = 0; b < 8; ++b) w[b] = kStrongBitWeight;
  const std::vector<uint32_t> masks = StrongBitMasks(w.data(), 2);
  EXPECT_EQ(masks, (std::vector<uint32_t>{0xFFu, 0u}));
  EXPECT_DOUBLE_EQ(StrongBitErrorRate(query.data(), ref.data(), 0, 2, 0, masks.data()), 0.5);
  // No strong bits at all: nothing says the copy is clean.
  EXPECT_DOUBLE_EQ(StrongBitErrorRate(query.data(), ref.data(), 1, 2, 0, masks.data()), 1.0);
}

TEST(DecisionTest, BitChangeRateCountsDifferingBitsPerItem) {
  EXPECT_EQ(BitChangeRate({}, {}), 0.0);
  EXPECT_EQ(BitChangeRate({0xffffffffu, 0}, {0xffffffffu, 0}), 0.0);
  // 32 + 16 of 64 bits differ.
  EXPECT_DOUBLE_EQ(BitChangeRate({0xffffffffu, 0x0f0f0000u}, {0, 0x00000f0fu}), 48.0 / 64.0);
}

TEST(DecisionTest, NoiseExplainsBitErrorsUpToTheMargin) {
  EXPECT_TRUE(ExplainedByNoise(kMaxUnexplainedBitErrorRate, 0.0));
  EXPECT_FALSE(ExplainedByNoise(kMaxUnexplainedBitErrorRate + 0.01, 0.0));
  EXPECT_TRUE(ExplainedByNoise(0.30, 0.30 - kMaxUnexplainedBitErrorRate));
  EXPECT_FALSE(ExplainedByNoise(0.30, 0.30 - kMaxUnexplainedBitErrorRate - 0.01));
}

}  // namespace
}  // namespace trainspotter
