// Deterministic synthetic audio for tests: music-like signals (so Chromaprint has structure to
// fingerprint) and a minimal WAV writer. No libav, no Chromaprint: any module's tests may use it.
#ifndef TRAINSPOTTER_TESTS_TESTING_AUDIO_SYNTH_H_
#define TRAINSPOTTER_TESTS_TESTING_AUDIO_SYNTH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace trainspotter::testing {

// Interleaved 16-bit PCM that sounds (vaguely) like music: a random walk of chords with
// harmonics, a new chord every 0.2-0.6 s, soft percussion and a little noise. The same `seed`
// always gives the same samples, on any machine; different seeds give unrelated audio. Each
// channel carries the same music at slightly different levels (a plain stereo mix).
std::vector<int16_t> SynthesizeMusic(double seconds, int sample_rate, int channels, uint32_t seed);

// A RIFF/WAVE file (PCM 16-bit little-endian) holding `samples`.
std::string EncodeWav(absl::Span<const int16_t> samples, int sample_rate, int channels);

// Writes `contents` to `path` (not atomically; for test fixtures).
absl::Status WriteBytes(const std::string& path, const std::string& contents);

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_AUDIO_SYNTH_H_
