#include "fingerprint/noise_reduction.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/fingerprint_types.h"
#include "gtest/gtest.h"

namespace trainspotter {
namespace {

constexpr int kRate = kFingerprintSampleRate;

double Energy(const std::vector<double>& x, size_t begin, size_t end) {
  double e = 0;
  for (size_t i = begin; i < end; ++i) e += x[i] * x[i];
  return e;
}

std::vector<int16_t> ToPcm(const std::vector<double>& x) {
  std::vector<int16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    out[i] = static_cast<int16_t>(std::clamp(std::lround(x[i]), -32768L, 32767L));
  }
  return out;
}

TEST(NoiseReductionTest, ShortInputAndSilenceComeBackUnchanged) {
  std::vector<int16_t> short_input(kRate / 2);
  for (size_t i = 0; i < short_input.size(); ++i) {
    short_input[i] = static_cast<int16_t>(1000 * std::sin(0.05 * static_cast<double>(i)));
  }
  auto a = ReduceStationaryNoise(short_input);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, short_input);

  const std::vector<int16_t> silence(5 * kRate, 0);
  auto b = ReduceStationaryNoise(silence);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, silence);
}

// A tone that sounds only in alternate half-seconds, over steady white noise as loud as the
// tone (0 dB SNR): the noise between the notes is what the estimate must find and remove, and
// the notes must survive it.
TEST(NoiseReductionTest, RemovesSteadyNoiseAndKeepsTheMusic) {
  const size_t n = 8 * kRate, half = kRate / 2;
  std::vector<double> tone(n, 0.0), noise(n);
  for (size_t i = 0; i < n; ++i) {
    if ((i / half) % 2 == 0) tone[i] = 4000 * std::sin(2 * M_PI * 440.0 * i / kRate);
  }
  std::mt19937 rng(7);
  std::normal_distribution<double> gauss(0.0, 1.0);
  for (double& v : noise) v = gauss(rng);
  const double scale = std::sqrt(Energy(tone, 0, n) / Energy(noise, 0, n));
  std::vector<double> mixed(n);
  for (size_t i = 0; i < n; ++i) mixed[i] = tone[i] + scale * noise[i];

  auto out = ReduceStationaryNoise(ToPcm(mixed));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), n);
  std::vector<double> y(out->begin(), out->end());
  // Away from the note edges (a frame is ~0.19 s): the gaps, and the middle of the notes.
  double gap_in = 0, gap_out = 0, note_in = 0, note_out = 0, error_in = 0, error_out = 0;
  for (size_t k = 1; k + 1 < n / half; ++k) {
    const size_t b = k * half + half / 4, e = (k + 1) * half - half / 4;
    if (k % 2 == 1) {
      gap_in += Energy(mixed, b, e);
      gap_out += Energy(y, b, e);
    } else {
      note_in += Energy(tone, b, e);
      note_out += Energy(y, b, e);
      for (size_t i = b; i < e; ++i) {
        error_in += (mixed[i] - tone[i]) * (mixed[i] - tone[i]);
        error_out += (y[i] - tone[i]) * (y[i] - tone[i]);
      }
    }
  }
  // The noise between the notes falls by more than 6 dB (noise alone keeps ~16% of its power:
  // the bins where it momentarily exceeds twice its mean) ...
  EXPECT_LT(10 * std::log10(gap_out / gap_in), -6.0);
  // ... the notes lose less than 3 dB ...
  EXPECT_GT(10 * std::log10(note_out / note_in), -3.0);
  // ... and within the notes the signal is closer to the clean tone than before.
  EXPECT_LT(error_out, 0.5 * error_in);
}

// A chord held through the whole clip over steady white noise 10 dB below it: every frame of
// the chord's bins holds the chord, so their quietest frames are the chord, not noise. Taken
// for noise, it would be subtracted down to the gain floor (-13 dB); the estimate smoothed
// across frequency takes those bins' floor from their neighbours and leaves the chord.
TEST(NoiseReductionTest, KeepsANoteHeldThroughTheWholeClip) {
  const size_t n = 5 * kRate;
  std::vector<double> chord(n, 0.0), noise(n);
  for (size_t i = 0; i < n; ++i) {
    for (double f : {261.6, 329.6, 392.0}) chord[i] += 3000 * std::sin(2 * M_PI * f * i / kRate);
  }
  std::mt19937 rng(11);
  std::normal_distribution<double> gauss(0.0, 1.0);
  for (double& v : noise) v = gauss(rng);
  const double scale = std::sqrt(0.1 * Energy(chord, 0, n) / Energy(noise, 0, n));
  std::vector<double> mixed(n);
  for (size_t i = 0; i < n; ++i) mixed[i] = chord[i] + scale * noise[i];

  auto out = ReduceStationaryNoise(ToPcm(mixed));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), n);
  // Away from the ends: the chord's share of the output (its projection on the clean chord)
  // and what is left besides it.
  double along = 0, chord_energy = 0, residue_in = 0, residue_out = 0;
  for (size_t i = kRate / 2; i + kRate / 2 < n; ++i) {
    along += (*out)[i] * chord[i];
    chord_energy += chord[i] * chord[i];
  }
  const double gain = along / chord_energy;
  for (size_t i = kRate / 2; i + kRate / 2 < n; ++i) {
    residue_in += (mixed[i] - chord[i]) * (mixed[i] - chord[i]);
    residue_out += ((*out)[i] - gain * chord[i]) * ((*out)[i] - gain * chord[i]);
  }
  // The chord keeps its amplitude within 30% (gain floor: 22%) ...
  EXPECT_GT(gain, 0.7);
  // ... and the noise still falls by more than 6 dB.
  EXPECT_LT(10 * std::log10(residue_out / residue_in), -6.0);
}

}  // namespace
}  // namespace trainspotter
