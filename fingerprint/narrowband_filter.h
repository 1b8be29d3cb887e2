// A 300-3400 Hz band-pass (the telephone band) for mono 16-bit PCM: two 2nd-order Butterworth
// high-pass sections at 300 Hz and two low-pass sections at 3400 Hz (RBJ biquads, 24 dB/octave
// skirts). Used to fingerprint the narrowband twin of a reference, so that band-limited copies
// of it are found. Streaming: state carries across Process() calls.
#ifndef TRAINSPOTTER_FINGERPRINT_NARROWBAND_FILTER_H_
#define TRAINSPOTTER_FINGERPRINT_NARROWBAND_FILTER_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace trainspotter {

class NarrowbandFilter {
 public:
  explicit NarrowbandFilter(int sample_rate, double low_hz = 300, double high_hz = 3400);
  // Filters `in` into `out` (resized to in.size()), saturating to the int16 range.
  void Process(absl::Span<const int16_t> in, std::vector<int16_t>* out);

 private:
  struct Biquad {
    double b0, b1, b2, a1, a2;
    double z1 = 0, z2 = 0;  // transposed direct form II state
    double Step(double x) {
      const double y = b0 * x + z1;
      z1 = b1 * x - a1 * y + z2;
      z2 = b2 * x - a2 * y;
      return y;
    }
  };
  std::vector<Biquad> sections_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_NARROWBAND_FILTER_H_
