#include "fingerprint/narrowband_filter.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace trainspotter {
namespace {

// RMS of a sine of `hz` after the filter, relative to before, in dB (after the transient).
double GainDb(double hz, int rate = 11025) {
  std::vector<int16_t> in(rate * 2);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<int16_t>(10000 * std::sin(2 * M_PI * hz * static_cast<double>(i) / rate));
  }
  NarrowbandFilter f(rate);
  std::vector<int16_t> out;
  // Two calls: the state must carry across chunks.
  std::vector<int16_t> a, b;
  f.Process(absl::MakeConstSpan(in).subspan(0, in.size() / 2), &a);
  f.Process(absl::MakeConstSpan(in).subspan(in.size() / 2), &b);
  out = a;
  out.insert(out.end(), b.begin(), b.end());
  double e_in = 0, e_out = 0;
  for (size_t i = in.size() / 4; i < in.size(); ++i) {
    e_in += static_cast<double>(in[i]) * in[i];
    e_out += static_cast<double>(out[i]) * out[i];
  }
  return 10 * std::log10(e_out / e_in);
}

TEST(NarrowbandFilterTest, PassesTheTelephoneBandAndCutsOutsideIt) {
  EXPECT_NEAR(GainDb(1000), 0.0, 1.0);
  EXPECT_NEAR(GainDb(300), -6.0, 1.5);   // two Butterworth sections: -3 dB each at the corner
  EXPECT_NEAR(GainDb(3400), -6.0, 1.5);
  EXPECT_LT(GainDb(75), -40.0);          // two octaves below: ~24 dB/octave
  EXPECT_LT(GainDb(5000), -12.0);
}

TEST(NarrowbandFilterTest, SaturatesInsteadOfWrapping) {
  std::vector<int16_t> in(4000);
  for (size_t i = 0; i < in.size(); ++i) in[i] = (i / 4) % 2 ? 32767 : -32768;  // ~1.4 kHz square
  NarrowbandFilter f(11025);
  std::vector<int16_t> out;
  f.Process(in, &out);
  ASSERT_EQ(out.size(), in.size());
  int64_t flips = 0;
  for (size_t i = 1; i < out.size(); ++i) flips += (out[i] > 0) != (out[i - 1] > 0);
  EXPECT_GT(flips, 100);  // still oscillating, not stuck or wrapped into noise
}

}  // namespace
}  // namespace trainspotter
