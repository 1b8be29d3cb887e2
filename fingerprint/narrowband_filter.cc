#include "fingerprint/narrowband_filter.h"

#include <algorithm>
#include <cmath>

namespace trainspotter {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kButterworthQ = 0.70710678118654752;

}  // namespace

NarrowbandFilter::NarrowbandFilter(int sample_rate, double low_hz, double high_hz) {
  auto make = [&](bool high_pass, double f) {
    // Audio EQ cookbook (R. Bristow-Johnson) coefficients, normalised by a0.
    const double w = 2 * kPi * std::min(f, sample_rate * 0.45) / sample_rate;
    const double alpha = std::sin(w) / (2 * kButterworthQ);
    const double c = std::cos(w);
    const double a0 = 1 + alpha;
    Biquad q{};
    if (high_pass) {
      q.b0 = (1 + c) / 2 / a0;
      q.b1 = -(1 + c) / a0;
      q.b2 = (1 + c) / 2 / a0;
    } else {
      q.b0 = (1 - c) / 2 / a0;
      q.b1 = (1 - c) / a0;
      q.b2 = (1 - c) / 2 / a0;
    }
    q.a1 = -2 * c / a0;
    q.a2 = (1 - alpha) / a0;
    return q;
  };
  sections_ = {make(true, low_hz), make(true, low_hz), make(false, high_hz),
               make(false, high_hz)};
}

void NarrowbandFilter::Process(absl::Span<const int16_t> in, std::vector<int16_t>* out) {
  out->resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    double x = in[i];
    for (Biquad& s : sections_) x = s.Step(x);
    (*out)[i] = static_cast<int16_t>(std::clamp(std::lround(x), -32768L, 32767L));
  }
}

}  // namespace trainspotter
