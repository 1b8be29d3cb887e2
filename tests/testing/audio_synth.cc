#include "tests/testing/audio_synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace trainspotter::testing {
namespace {

constexpr double kPi = 3.14159265358979323846;

void PutLe(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::vector<int16_t> SynthesizeMusic(double seconds, int sample_rate, int channels, uint32_t seed) {
  const size_t frames = seconds > 0 ? static_cast<size_t>(seconds * sample_rate) : 0;
  std::vector<int16_t> out(frames * static_cast<size_t>(channels));
  // std::mt19937 is specified bit-exactly by the standard; the distributions are not, so derive
  // everything from raw draws.
  std::mt19937 rng(seed);
  auto uniform = [&rng] { return static_cast<double>(rng()) / 4294967296.0; };

  static constexpr int kScale[] = {0, 2, 3, 5, 7, 8, 10};  // natural minor
  const double base_hz = 110.0 * std::pow(2.0, static_cast<int>(uniform() * 12) / 12.0);
  int degree = 0;
  size_t next_change = 0;
  double freqs[4] = {0, 0, 0, 0};
  double phases[4] = {0, 0, 0, 0};
  double beat_phase = 0;
  const double beat_hz = 1.5 + uniform() * 1.5;
  uint32_t noise = seed * 2654435761u + 1;

  for (size_t i = 0; i < frames; ++i) {
    if (i == next_change) {
      degree = std::clamp(degree + static_cast<int>(uniform() * 5) - 2, -3, 9);
      for (int v = 0; v < 4; ++v) {
        const int step = degree + 2 * v;
        const int octave = (step >= 0 ? step : step - 6) / 7;
        const int semis = kScale[((step % 7) + 7) % 7] + 12 * octave;
        freqs[v] = base_hz * std::pow(2.0, semis / 12.0);
      }
      next_change = i + static_cast<size_t>((0.2 + uniform() * 0.4) * sample_rate);
    }
    const double t_in_note = 1.0 - static_cast<double>(next_change - i) / sample_rate;
    const double envelope = 0.6 + 0.4 * std::exp(-3.0 * std::max(0.0, t_in_note));
    double s = 0;
    for (int v = 0; v < 4; ++v) {
      phases[v] += 2 * kPi * freqs[v] / sample_rate;
      if (phases[v] > 2 * kPi) phases[v] -= 2 * kPi;
      s += (std::sin(phases[v]) + 0.5 * std::sin(2 * phases[v]) + 0.25 * std::sin(3 * phases[v])) /
           (1 + v);
    }
    s *= 0.22 * envelope;
    beat_phase += beat_hz / sample_rate;
    if (beat_phase >= 1) beat_phase -= 1;
    noise = noise * 1664525u + 1013904223u;
    const double white = (static_cast<double>(noise >> 8) / 16777216.0) * 2 - 1;
    s += white * (0.02 + 0.25 * std::exp(-40 * beat_phase));  // hi-hat-like bursts
    for (int c = 0; c < channels; ++c) {
      const double level = 1.0 - 0.1 * c;
      const double v = std::clamp(s * level, -1.0, 1.0) * 32767.0;
      out[i * static_cast<size_t>(channels) + static_cast<size_t>(c)] =
          static_cast<int16_t>(std::lround(v));
    }
  }
  return out;
}

std::string EncodeWav(absl::Span<const int16_t> samples, int sample_rate, int channels) {
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  PutLe(out, 36 + data_bytes, 4);
  out += "WAVEfmt ";
  PutLe(out, 16, 4);
  PutLe(out, 1, 2);  // PCM
  PutLe(out, static_cast<uint32_t>(channels), 2);
  PutLe(out, static_cast<uint32_t>(sample_rate), 4);
  PutLe(out, static_cast<uint32_t>(sample_rate * channels * 2), 4);
  PutLe(out, static_cast<uint32_t>(channels * 2), 2);
  PutLe(out, 16, 2);
  out += "data";
  PutLe(out, data_bytes, 4);
  for (int16_t s : samples) PutLe(out, static_cast<uint16_t>(s), 2);
  return out;
}

absl::Status WriteBytes(const std::string& path, const std::string& contents) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot create ", path));
  const size_t n = std::fwrite(contents.data(), 1, contents.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (n != contents.size() || !closed)
    return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace trainspotter::testing
