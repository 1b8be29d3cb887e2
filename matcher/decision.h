// The decision: how likely is it that audio which does NOT share a source with the reference
// agrees with it this well, by chance?
//
// Two tests, and the stronger one counts (a factor 2 pays for choosing):
// 1. Bit agreement against what the two segments' own bit statistics predict (expected_bit_errors).
// 2. Agreement of *transitions*: the bits of a Chromaprint item that changed since the
// previous item. Silence, steady tones and sustained notes produce (almost) no transitions, so
// they carry (almost) no evidence however perfectly they agree: that is how low-information
// audio is treated explicitly. Over the aligned segment, every (item, bit) cell falls into a 2x2
// table: flipped in the query or not, flipped in the reference or not. Unrelated audio flips its
// bits independently of the query; shared audio flips the same bits at the same items. The chance
// that independent sequences coincide on `a` or more flips is bounded with a Chernoff bound
// (binomial tail with the reference's own flip rate), then multiplied by the number of alignments
// the search examined (catalogue size x query variants: a Bonferroni correction, so the error
// rate per query does not grow with the catalogue). Constants were calibrated on non-member real
// music (see tools/eval-accuracy.sh and the README).
#ifndef TRAINSPOTTER_MATCHER_DECISION_H_
#define TRAINSPOTTER_MATCHER_DECISION_H_

#include <cstdint>

namespace trainspotter {

struct SegmentEvidence {
  int64_t items = 0;             // aligned items in the segment
  int64_t bit_errors = 0;        // popcount(query ^ reference) summed over the segment
  int64_t query_flips = 0;       // bits that changed between consecutive query items
  int64_t reference_flips = 0;   // same for the reference
  int64_t common_flips = 0;      // bits that changed at the same item in both
  // Bit errors expected between unrelated audio with the same per-bit statistics: for each of
  // the 32 bit positions, items * (pq (1 - pr) + pr (1 - pq)) where pq, pr are the fractions of
  // items with that bit set in the query and reference segments. Silence against silence
  // expects no errors, so agreeing perfectly proves nothing.
  double expected_bit_errors = 0;
};

// Natural log of the probability that a non-member segment shows at least this much agreement
// at one given alignment. Always <= 0.
double LogChanceAgreement(const SegmentEvidence& e);

// Per-query false-match probability: the single-alignment chance times `alignments` (the number
// of alignments the search could have picked), clamped to [0, 1].
double FalseMatchProbability(const SegmentEvidence& e, double alignments);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_MATCHER_DECISION_H_
