#include "matcher/decision.h"

#include <algorithm>
#include <cmath>

namespace trainspotter {
namespace {

// Transitions of neighbouring bits and items are not independent (a chord change flips several
// filters at once, and Chromaprint's filters span several frames). Dividing the count by this
// factor turns it into an effective number of independent trials. Calibrated on non-member
// real music: the largest value at which no non-member clip passes, times a safety margin.
constexpr double kTransitionDependence = 1.5;
// Bits persist over several items, so agreement is counted per run of equal bits, not per item:
// the effective number of trials is (runs in query + runs in reference) / kRunDependence.
constexpr double kRunDependence = 2.5;

// Kullback-Leibler divergence between Bernoulli(q) and Bernoulli(p).
double BernoulliKl(double q, double p) {
  auto term = [](double x, double y) { return x <= 0 ? 0.0 : x * std::log(x / y); };
  return term(q, p) + term(1 - q, 1 - p);
}

}  // namespace

namespace {

double LogChanceTransitions(const SegmentEvidence& e) {
  if (e.items <= 0 || e.query_flips <= 0) return 0.0;
  const double cells = 32.0 * static_cast<double>(e.items);
  // The reference's flip rate, floored so that a nearly static reference (silence) cannot make
  // a handful of coincidences look significant.
  const double p = std::clamp(static_cast<double>(e.reference_flips) / cells, 0.02, 0.98);
  const double n = static_cast<double>(e.query_flips);
  const double q = static_cast<double>(e.common_flips) / n;
  if (q <= p) return 0.0;
  // Chernoff bound: P(Binomial(n, p) >= q n) <= exp(-n KL(q || p)).
  return -(n / kTransitionDependence) * BernoulliKl(std::min(q, 1.0), p);
}

double LogChanceBitErrors(const SegmentEvidence& e) {
  if (e.items <= 0) return 0.0;
  const double cells = 32.0 * static_cast<double>(e.items);
  const double p0 = std::clamp(e.expected_bit_errors / cells, 0.0, 0.5);
  const double q = static_cast<double>(e.bit_errors) / cells;
  if (q >= p0 || p0 <= 0) return 0.0;
  const double runs = static_cast<double>(e.query_flips + e.reference_flips) + 64.0;
  const double trials = std::min(cells, runs / kRunDependence);
  // Chernoff bound on the lower tail: P(Binomial(t, p0) <= q t) <= exp(-t KL(q || p0)).
  return -trials * BernoulliKl(q, p0);
}

}  // namespace

double LogChanceAgreement(const SegmentEvidence& e) {
  return std::min(0.0, std::min(LogChanceTransitions(e), LogChanceBitErrors(e)) + std::log(2.0));
}

double FalseMatchProbability(const SegmentEvidence& e, double alignments) {
  const double log_p = LogChanceAgreement(e) + std::log(std::max(alignments, 1.0));
  if (log_p >= 0) return 1.0;
  return std::exp(log_p);
}

}  // namespace trainspotter
