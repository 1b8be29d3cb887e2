#include "matcher/decision.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "matcher/hamming.h"

namespace trainspotter {
namespace {

// Transitions of neighbouring bits and items are not independent (a chord change flips several
// filters at once, and Chromaprint's filters span several frames). Dividing the count by this
// factor turns it into an effective number of independent trials. Calibrated on non-member
// real music: the largest value at which no non-member clip passes, times a safety margin.
constexpr double kTransitionDependence = 1.5;
// Bits persist over several items, so agreement is counted per run of equal bits, not per item:
// at each bit position the effective number of trials is (runs in query + runs in reference) /
// kRunDependence. Measured on non-member audio (tools/null-calibration.sh) with the per-position
// test: 2.5 and 2.0 keep the tail's slope; 1.6 made it fall off at ~10^0.5 per decade at 5 s.
constexpr double kRunDependence = 2.0;
// Weight of the weaker of the two tests in the combined evidence. Measured on non-member audio
// (tools/null-calibration.sh): adding both in full (1.0) made the non-member tail fall off more
// slowly than the bound claims (about 10^0.8 per decade), so its error would grow with the
// catalogue; 0.5 and 0.75 keep the tail's slope, and 0.75 found more members (docs/decision.md).
constexpr double kWeakerTestWeight = 0.75;

}  // namespace

namespace {

// Smallest and largest chance per item pair that a reference bit flips, so that a nearly
// static reference (silence) cannot make a handful of coincidences look significant.
constexpr double kMinFlipRate = 0.02;
constexpr double kMaxFlipRate = 0.98;
// A bit position's reference flip rate is estimated from the segment's own item pairs, shrunk
// towards the segment's mean rate over all positions as if this many pairs had flipped at the
// mean rate: a 5 s segment (18 pairs) has too few flips per position to estimate 32 rates alone.
// Chosen by measuring hit rate and the non-member tail with 0, 18, 60 and 200 (docs/decision.md).
constexpr double kFlipRatePriorPairs = 60;
// A bit position whose expected error rate is below this (or above 1 minus it) is constant in
// both segments: its agreement (or disagreement) is certain and carries no evidence.
constexpr double kCertain = 1e-3;

// Chance that one bit position of unrelated audio disagrees, when it is set in a fraction pq of
// the query's items and pr of the reference's.
double ExpectedErrorRate(double pq, double pr) { return pq * (1 - pr) + pr * (1 - pq); }

// The Chernoff bounds' minimising t > 0: where `tilted_mean(t)`, which increases with t,
// reaches k. Doubled from 1 until it does (or t reaches max_t), then bisected 60 times.
template <typename TiltedMean>
double SolveTilt(const TiltedMean& tilted_mean, double k, double max_t) {
  double lo = 0, hi = 1;
  while (tilted_mean(hi) < k && hi < max_t) hi *= 2;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (tilted_mean(mid) < k ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Chernoff bound on the upper tail of a sum of independent Bernoulli trials, count[b] of them
// with success chance p[b]: log P(X >= k) <= min over t > 0 of
// -t k + sum_b count[b] log(1 - p[b] + p[b] e^t). The minimum is where the tilted mean equals
// k; the tilted mean increases with t, so bisection finds it.
double LogUpperTail(const std::array<double, 32>& count, const std::array<double, 32>& p,
                    double k) {
  double mean = 0, total = 0;
  for (int b = 0; b < 32; ++b) {
    mean += count[b] * p[b];
    total += count[b];
  }
  if (k <= mean || total <= 0) return 0.0;
  if (k >= total) {  // every trial succeeded: the bound is the product of the chances
    double all = 0;
    for (int b = 0; b < 32; ++b) {
      if (count[b] > 0) all += count[b] * std::log(p[b]);
    }
    return all;
  }
  auto tilted_mean = [&](double t) {
    const double u = std::exp(t);  // once per step, not per position
    double m = 0;
    for (int b = 0; b < 32; ++b) {
      const double w = p[b] * u;
      m += count[b] * w / (1 - p[b] + w);
    }
    return m;
  };
  const double t = SolveTilt(tilted_mean, k, /*max_t=*/64);
  const double u = std::exp(t);
  double log_mgf = 0;
  for (int b = 0; b < 32; ++b) log_mgf += count[b] * std::log(1 - p[b] + p[b] * u);
  return std::min(0.0, -t * k + log_mgf);
}

double LogChanceTransitions(const SegmentEvidence& e) {
  if (e.items <= 0 || e.query_flips <= 0) return 0.0;
  // Unrelated audio: each query flip coincides with a reference flip with the reference's flip
  // rate at that bit position, independently.
  std::array<double, 32> count{}, p{};
  if (e.flip_pairs > 0) {
    const double pairs = static_cast<double>(e.flip_pairs);
    const double mean_rate = static_cast<double>(e.reference_flips) / (32.0 * pairs);
    for (int b = 0; b < 32; ++b) {
      count[b] = e.query_flips_by_bit[b];
      const double flips = e.reference_flips_by_bit[b] + kFlipRatePriorPairs * mean_rate;
      p[b] = std::clamp(flips / (pairs + kFlipRatePriorPairs), kMinFlipRate, kMaxFlipRate);
    }
  } else {
    count.fill(static_cast<double>(e.query_flips) / 32.0);
    const double pairs = static_cast<double>(std::max<int64_t>(e.items - 1, 1));
    p.fill(std::clamp(static_cast<double>(e.reference_flips) / (32.0 * pairs), kMinFlipRate,
                      kMaxFlipRate));
  }
  return LogUpperTail(count, p, static_cast<double>(e.common_flips)) / kTransitionDependence;
}

// LogUpperTail for weighted trials: count[b][l] trials (fractional: the run discount is folded
// in) at position b with success chance p[b], each success worth l / kMaxBitWeight:
// log P(sum >= k) <= min over t > 0 of -t k + sum_b sum_l count[b][l]
// log(1 - p[b] + p[b] e^(t l / kMaxBitWeight)). Weight 0 is no trial. Kept apart from
// LogUpperTail, which is its special case of full weights only: that one runs for every
// unweighted alignment, over 32 terms instead of 32 x 15.
using WeightCounts = std::array<std::array<double, kMaxBitWeight + 1>, 32>;
double LogUpperTailWeighted(const WeightCounts& count, const std::array<double, 32>& p, double k) {
  double mean = 0, top = 0;
  for (int b = 0; b < 32; ++b) {
    for (int l = 1; l <= kMaxBitWeight; ++l) {
      const double w = static_cast<double>(l) / kMaxBitWeight;
      mean += count[b][l] * w * p[b];
      top += count[b][l] * w;
    }
  }
  if (k <= mean || top <= 0) return 0.0;
  if (k >= top) {  // every weighted trial succeeded
    double all = 0;
    for (int b = 0; b < 32; ++b) {
      for (int l = 1; l <= kMaxBitWeight; ++l) all += count[b][l] * std::log(p[b]);
    }
    return all;
  }
  std::array<double, kMaxBitWeight + 1> u{};
  auto set_u = [&](double t) {
    for (int l = 1; l <= kMaxBitWeight; ++l) u[l] = std::exp(t * l / kMaxBitWeight);
  };
  auto tilted_mean = [&](double t) {
    set_u(t);
    double m = 0;
    for (int b = 0; b < 32; ++b) {
      if (p[b] <= 0) continue;
      for (int l = 1; l <= kMaxBitWeight; ++l) {
        if (count[b][l] == 0) continue;
        const double x = p[b] * u[l];
        m += count[b][l] * (static_cast<double>(l) / kMaxBitWeight) * x / (1 - p[b] + x);
      }
    }
    return m;
  };
  const double t = SolveTilt(tilted_mean, k, /*max_t=*/4096);
  set_u(t);
  double log_mgf = 0;
  for (int b = 0; b < 32; ++b) {
    for (int l = 1; l <= kMaxBitWeight; ++l) {
      if (count[b][l] > 0) log_mgf += count[b][l] * std::log(1 - p[b] + p[b] * u[l]);
    }
  }
  return std::min(0.0, -t * k + log_mgf);
}

double LogChanceBitErrors(const SegmentEvidence& e) {
  if (e.items <= 0) return 0.0;
  const double n = static_cast<double>(e.items);
  // Agreements of unrelated audio: at bit position b, a run of equal bits agrees with chance
  // 1 - e_b, where e_b = pq (1 - pr) + pr (1 - pq) is what the two segments' own statistics
  // predict. Trials are counted per run, not per item (kRunDependence). Judged per position,
  // not pooled: a position constant in both segments predicts its agreement and adds no trials,
  // where pooling it with the rest would dilute the informative positions' evidence; and errors
  // at a position expected to agree count against the match.
  std::array<double, 32> count{}, p{};
  double agreements = 0;
  if (e.bits_by_position && e.weighted) {
    // As below, each item's agreement weighed by its bit's weight; the run discount
    // (count[b] / n trials per item) scales each position's weighted trials alike.
    WeightCounts weighted{};
    for (int b = 0; b < 32; ++b) {
      const double expected =
          ExpectedErrorRate(e.query_ones_by_bit[b] / n, e.reference_ones_by_bit[b] / n);
      if (expected < kCertain || expected > 1 - kCertain) continue;
      const double runs = e.query_flips_by_bit[b] + e.reference_flips_by_bit[b] + 2.0;
      const double discount = std::min(n, runs / kRunDependence) / n;
      p[b] = 1 - expected;
      for (int l = 1; l <= kMaxBitWeight; ++l) {
        weighted[b][l] = discount * e.items_by_weight[b][l];
        agreements += discount * e.agreements_by_weight[b][l] * l / kMaxBitWeight;
      }
    }
    return LogUpperTailWeighted(weighted, p, agreements);
  }
  if (e.bits_by_position) {
    for (int b = 0; b < 32; ++b) {
      const double expected =
          ExpectedErrorRate(e.query_ones_by_bit[b] / n, e.reference_ones_by_bit[b] / n);
      if (expected < kCertain || expected > 1 - kCertain) continue;
      const double runs = e.query_flips_by_bit[b] + e.reference_flips_by_bit[b] + 2.0;
      count[b] = std::min(n, runs / kRunDependence);
      p[b] = 1 - expected;
      agreements += count[b] * (1 - e.bit_errors_by_bit[b] / n);
    }
  } else {
    const double cells = 32.0 * n;
    const double p0 = std::min(e.expected_bit_errors / cells, 0.5);
    if (p0 < kCertain) return 0.0;
    const double q = static_cast<double>(e.bit_errors) / cells;
    const double runs = static_cast<double>(e.query_flips + e.reference_flips) + 64.0;
    count.fill(std::min(cells, runs / kRunDependence) / 32.0);
    p.fill(1 - p0);
    agreements = 32.0 * count[0] * (1 - q);
  }
  return LogUpperTail(count, p, agreements);
}

}  // namespace

SegmentEvidence CountEvidence(const uint32_t* q, const uint32_t* r, int64_t qb, int64_t qe,
                              int32_t offset, const uint8_t* weights) {
  SegmentEvidence e;
  e.weighted = weights != nullptr;
  for (int64_t i = qb; i < qe; ++i) {
    const uint32_t qi = q[i], ri = r[i + offset];
    if (qi == kSilenceItem && ri == kSilenceItem) {
      ++e.silent_items;
      continue;
    }
    ++e.items;
    const uint32_t x = qi ^ ri;
    e.bit_errors += __builtin_popcount(x);
    for (int b = 0; b < 32; ++b) {
      e.query_ones_by_bit[b] += static_cast<int32_t>((qi >> b) & 1u);
      e.reference_ones_by_bit[b] += static_cast<int32_t>((ri >> b) & 1u);
      e.bit_errors_by_bit[b] += static_cast<int32_t>((x >> b) & 1u);
    }
    if (weights != nullptr) {
      const uint8_t* w = weights + 32 * i;
      for (int b = 0; b < 32; ++b) {
        const int l = std::min<int>(w[b], kMaxBitWeight);
        ++e.items_by_weight[b][l];
        e.agreements_by_weight[b][l] += static_cast<int32_t>(((x >> b) & 1u) ^ 1u);
      }
    }
  }
  if (e.items > 0) {
    const double n = static_cast<double>(e.items);
    for (int b = 0; b < 32; ++b) {
      e.expected_bit_errors +=
          n * ExpectedErrorRate(e.query_ones_by_bit[b] / n, e.reference_ones_by_bit[b] / n);
    }
  }
  e.bits_by_position = true;
  for (int64_t i = std::max<int64_t>(qb, 1); i < qe; ++i) {
    // The reference item before the segment exists whenever i + offset >= 1.
    if (i + offset < 1) continue;
    const uint32_t q0 = q[i - 1], q1 = q[i], r0 = r[i + offset - 1], r1 = r[i + offset];
    // Falling silent (or starting from silence) flips exactly the bits in which the item before
    // differs from kSilenceItem, in any audio: that coincidence is no evidence.
    if (q0 == kSilenceItem || q1 == kSilenceItem || r0 == kSilenceItem || r1 == kSilenceItem) {
      continue;
    }
    const uint32_t tq = q1 ^ q0;
    const uint32_t tr = r1 ^ r0;
    e.query_flips += __builtin_popcount(tq);
    e.reference_flips += __builtin_popcount(tr);
    e.common_flips += __builtin_popcount(tq & tr);
    for (int b = 0; b < 32; ++b) {
      e.query_flips_by_bit[b] += static_cast<int32_t>((tq >> b) & 1u);
      e.reference_flips_by_bit[b] += static_cast<int32_t>((tr >> b) & 1u);
    }
    ++e.flip_pairs;
  }
  return e;
}

std::vector<uint32_t> StrongBitMasks(const uint8_t* weights, size_t items) {
  std::vector<uint32_t> masks(items, 0);
  for (size_t i = 0; i < items; ++i) {
    const uint8_t* w = weights + 32 * i;
    for (int b = 0; b < 32; ++b) {
      if (w[b] >= kStrongBitWeight) masks[i] |= uint32_t{1} << b;
    }
  }
  return masks;
}

double StrongBitErrorRate(const uint32_t* q, const uint32_t* r, int64_t qb, int64_t qe,
                          int32_t offset, const uint32_t* strong_masks) {
  int64_t strong = 0, errors = 0;
  for (int64_t i = qb; i < qe; ++i) {
    const uint32_t m = strong_masks[i];
    strong += __builtin_popcount(m);
    errors += __builtin_popcount((q[i] ^ r[i + offset]) & m);
  }
  return strong > 0 ? static_cast<double>(errors) / static_cast<double>(strong) : 1.0;
}

double LogChanceAgreement(const SegmentEvidence& e) {
  // The tests look at different things (values, and the timing of changes) but are not
  // independent: the stronger counts in full, the weaker at kWeakerTestWeight.
  const double t = LogChanceTransitions(e), b = LogChanceBitErrors(e);
  return std::min(0.0, std::min(t, b) + kWeakerTestWeight * std::max(t, b));
}

double FalseMatchProbability(const SegmentEvidence& e, double comparisons) {
  const double log_p =
      LogChanceAgreement(e) + std::log(std::max(comparisons, 1.0)) + std::log(kNullCalibration);
  if (log_p >= 0) return 1.0;
  return std::exp(log_p);
}

double BitChangeRate(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return 0;
  return static_cast<double>(TotalBitErrors(a.data(), b.data(), n)) /
         (32.0 * static_cast<double>(n));
}

}  // namespace trainspotter
