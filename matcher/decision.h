// The decision: how likely is it that audio which does NOT share a source with the reference
// agrees with it this well, by chance?
//
// Two tests; the stronger counts in full, the weaker in part (they are not independent):
// 1. Bit agreement against what the two segments' own bit statistics predict, per bit position.
// 2. Agreement of *transitions*: the bits of a Chromaprint item that changed since the
// previous item. Silence, steady tones and sustained notes produce (almost) no transitions, so
// they carry (almost) no evidence however perfectly they agree: that is how low-information
// audio is treated explicitly. Unrelated audio flips its bits independently of the query;
// shared audio flips the same bits at the same items. The chance that independent sequences
// coincide on `a` or more flips is bounded with a Chernoff bound, each query flip coinciding
// with the reference's own flip rate *at that bit position*: noise, and music with the same
// drum pattern, change the same few bits all the time, so their flips coincide often by chance.
// Silence is treated explicitly as well: every silent stretch of audio gives the same item
// (kSilenceItem), so items silent in both are left out, and so is every transition into or out
// of silence on either side. Without that, the end of any track that fades out agreed with the
// end of any other, flip for flip, at the item where both fell silent.
// The per-query probability multiplies the single-alignment chance by the comparisons the
// search made (catalogue size x query variants x query items: a union bound, so the error rate
// per query does not grow with the catalogue), then by kNullCalibration, measured on non-member
// audio (tools/bench/null_calibration.cc, docs/decision.md).
#ifndef TRAINSPOTTER_MATCHER_DECISION_H_
#define TRAINSPOTTER_MATCHER_DECISION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/fingerprint_types.h"

namespace trainspotter {

struct SegmentEvidence {
  int64_t items = 0;            // aligned items counted: those not silent in both
  int64_t silent_items = 0;     // aligned items that are kSilenceItem in both (not counted)
  int64_t bit_errors = 0;       // popcount(query ^ reference) summed over the segment
  int64_t query_flips = 0;      // bits that changed between consecutive query items
  int64_t reference_flips = 0;  // same for the reference
  int64_t common_flips = 0;     // bits that changed at the same item in both
  // The flips above per bit position (bit b of the item), over `flip_pairs` consecutive item
  // pairs. With flip_pairs == 0 the flips are taken as spread evenly over the 32 positions.
  std::array<int32_t, 32> query_flips_by_bit{};
  std::array<int32_t, 32> reference_flips_by_bit{};
  int64_t flip_pairs = 0;
  // Per bit position over the segment's items: disagreements, and items with the bit set in the
  // query and in the reference. Left zero (bits_by_position false), the bit test takes the
  // totals below as spread evenly over the 32 positions.
  std::array<int32_t, 32> bit_errors_by_bit{};
  std::array<int32_t, 32> query_ones_by_bit{};
  std::array<int32_t, 32> reference_ones_by_bit{};
  bool bits_by_position = false;
  // With the query's bit weights (CountEvidence's `weights`): per bit position and weight
  // (0..kMaxBitWeight), the items counted and those of them that agree. The bit test then
  // weighs each agreement by its weight (LogChanceAgreement). False: every bit at full weight.
  bool weighted = false;
  std::array<std::array<int32_t, kMaxBitWeight + 1>, 32> items_by_weight{};
  std::array<std::array<int32_t, kMaxBitWeight + 1>, 32> agreements_by_weight{};
  // Bit errors expected between unrelated audio with the same per-bit statistics: for each of
  // the 32 bit positions, items * (pq (1 - pr) + pr (1 - pq)) where pq, pr are the fractions of
  // items with that bit set in the query and reference segments. Silence against silence
  // expects no errors, so agreeing perfectly proves nothing.
  double expected_bit_errors = 0;
};

// Counts the evidence of query items [qb, qe) aligned with reference items [qb + offset,
// qe + offset) (both arrays must hold those items). Transitions include the pair that ends at
// the segment's first item when both items before it exist. Items that are kSilenceItem in both
// count as silent_items only; a transition is not counted when any of its four items (query and
// reference, before and after) is kSilenceItem. `weights`, if not null, are the query's bit
// weights (32 per query item, as common/fingerprint_types.h lays them out).
SegmentEvidence CountEvidence(const uint32_t* query, const uint32_t* reference, int64_t qb,
                              int64_t qe, int32_t offset, const uint8_t* weights = nullptr);

// Natural log of the probability that a non-member segment shows at least this much agreement
// at one given alignment. Always <= 0.
//
// With bit weights, the bit test's statistic is the weighted sum of agreements, each bit's
// agreement counted with its weight w / kMaxBitWeight, and its tail the Chernoff bound of that
// sum over independent Bernoulli trials (the same per-position chances and run discount as
// unweighted). Unrelated audio agrees with the query's reliable bits no more often than with its
// fragile ones, so the bound holds for any weights fixed by the query alone; shared audio agrees
// most where the query's bits are reliable, which is where the weights put the evidence.
double LogChanceAgreement(const SegmentEvidence& e);

// Bit weight from which a query bit counts as strong (StrongBitErrorRate): its filter response
// lay at least 80% of its thresholds' spread from the threshold that decided it.
inline constexpr int kStrongBitWeight = 12;

// The weighted bit test is for the same audio under noise, which flips fragile bits and rarely
// strong ones, over the whole of the query's overlap with the reference. Other audio that shares
// only a passage with the reference (a theme reprised in another track, a common loop) agrees
// on strong bits inside that passage just as well, so the matcher weighs a segment's bits only
// if at most this fraction of the query's strong bits disagree over the whole overlap, and
// judges it unweighted otherwise. Measured on the accuracy benchmark (docs/decision.md): member
// clips at 0 dB SNR 0-14% (their noise-reduced versions up to 18%), at 10 dB 0-5%; non-member
// clips' best alignments mostly 15-50%.
inline constexpr double kMaxStrongBitErrorRate = 0.15;
// ... over an overlap of at least this many items (~8.6 s of audio). A shorter overlap has
// fewer strong bits, and similar music passes the rule above by chance more easily: on the
// second corpus's 5 s clips (19 items) one album's track agreed with another's on 91-93% of its
// strong bits at its best alignments (FMP 1.6e-5 weighted, 6e-3 unweighted).
inline constexpr int64_t kMinWeightedOverlapItems = 48;
// A shorter overlap is weighed only if none of its strong bits disagree. Of the 5 s member
// clips at 10 dB SNR that the unweighted test missed, most agreed on every strong bit, their
// noise falling on fragile ones; 5 s clips of a phrase one track reprises from another agreed
// on all but a few (at 3% allowed they scored down to FMP 1.4e-5, unweighted 5.6e-3; the
// second corpus's 5 s non-member tail fell from a factor to spare of 10x to 1.4x;
// docs/decision.md).
inline constexpr double kMaxShortStrongBitErrorRate = 0.0;

// Whether the matcher weighs the bits of an alignment whose whole overlap with the reference is
// `overlap_items` long and whose strong bits disagree at `strong_bit_error_rate` (the rules
// above); otherwise it judges the alignment unweighted.
inline bool WeighOverlap(int64_t overlap_items, double strong_bit_error_rate) {
  return strong_bit_error_rate <= (overlap_items >= kMinWeightedOverlapItems
                                       ? kMaxStrongBitErrorRate
                                       : kMaxShortStrongBitErrorRate);
}

// Per query item, the mask of its strong bits (weight >= kStrongBitWeight), from `items` items'
// bit weights (32 each). Computed once per query version; StrongBitErrorRate reads it for every
// alignment verified.
std::vector<uint32_t> StrongBitMasks(const uint8_t* weights, size_t items);

// Fraction of the strong query bits (`strong_masks`, per query item) of query items [qb, qe)
// that disagree with reference items [qb + offset, qe + offset); 1 if there are none.
double StrongBitErrorRate(const uint32_t* query, const uint32_t* reference, int64_t qb, int64_t qe,
                          int32_t offset, const uint32_t* strong_masks);

// How much the union bound overstates chance, measured on non-member audio. The Chernoff
// bounds and dependence discounts are upper bounds, and a search's alignments and segment starts
// overlap heavily. tools/null-calibration.sh queries every 5, 10 and 30 s clip (at a 2-item
// stride) of each fixture track against a catalogue of the other tracks, plus silence, tones,
// noise, a sweep and speech: 51,374 non-member queries. With this factor, at every level p from
// 1e-1 to 1e-4 and every clip length, at most p / 4.98 of them scored a false-match probability
// at or below p (none below 1e-4): the data needed 5.4e-3 (the bound overstates chance ~185x),
// and this keeps a 5x margin (docs/decision.md). With the bit weights (used where the
// strong-bit rules above allow) the same queries give the same factors to spare.
inline constexpr double kNullCalibration = 2.7e-2;

// The look-alike screen. The chance model above bounds the agreement of *unrelated* audio;
// different music that sounds alike (the same tempo and drums, a re-arranged theme) agrees far
// better than that, but not as well as a copy: on the third corpus such pairs agreed at bit
// error rates of 0.18-0.34 on clean, MP3 and 10 dB queries, where copies, clean or through a
// codec, agreed at 0.16 at most. Noise raises a copy's errors too (to ~0.35 at 0 dB SNR), and
// noise is what the query's noise reduction (fingerprint/noise_reduction.h) removes: the
// fraction of the query's bits that it changes (`noise_change`) grows with the noise. A match
// is a member only if its bit error rate exceeds that fraction by at most this much, at the
// speed and phase that fit the reference best: before it demotes a match, the matcher
// fingerprints the query again at speeds within +-0.5% of the one that matched and at
// sub-item phases (DeferredVariants::refine), because a copy re-played between two of the
// cascade's speeds agrees far worse there (0.28 at 0.5% off, 0.24 at 0.25% off) than at its
// own (0.01-0.08), while a look-alike gains little (0.30 -> 0.28). Measured on the third
// corpus (docs/decision.md, "The look-alike screen"): members at most 0.124 above it, the
// false positives at least 0.150. The matcher skips the screen for a query without a
// noise-reduced version (a fingerprint without its audio), and refines only where it holds
// the audio.
inline constexpr double kMaxUnexplainedBitErrorRate = 0.14;

// Whether a match at `bit_error_rate` is explained by the query's noise (above).
inline bool ExplainedByNoise(double bit_error_rate, double noise_change) {
  return bit_error_rate - noise_change <= kMaxUnexplainedBitErrorRate;
}

// Fraction of the bits of `a` and `b` (the same number of items) that differ; 0 if empty.
double BitChangeRate(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);

// Per-query false-match probability: the single-alignment chance times `comparisons` (every
// alignment and segment start the search could have picked: reference positions x query
// versions x query items) times kNullCalibration, clamped to [0, 1].
double FalseMatchProbability(const SegmentEvidence& e, double comparisons);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_DECISION_H_
