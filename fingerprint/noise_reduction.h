// Spectral subtraction of stationary background noise from mono 16-bit PCM at the Chromaprint
// rate, for the query side: a clip recorded or mixed over steady noise (hiss, crowd, traffic,
// the pink noise of the accuracy benchmark) is fingerprinted once more after it. Chromaprint's
// chroma features sum the energy of many FFT bins per pitch class, so stationary noise adds a
// nearly constant floor to every band and flattens the contrasts the fingerprint quantises;
// subtracting the floor's estimate restores them.
//
// How: a short-time Fourier transform (2048-sample Hann frames, hop 512, at 11025 Hz ~186 ms
// and ~46 ms), the noise power of each frequency bin estimated from a low percentile of that
// bin's power over the clip (music comes and goes, stationary noise stays: its quietest frames
// are noise alone), smoothed by a median across +-43 Hz of neighbouring bins (noise has a smooth
// spectrum, a sustained note does not, so the note is not taken for noise; a narrow hum line is
// left alone for the same reason), a power gain max(1 - alpha * noise / power, floor) per bin and
// frame, and overlap-add resynthesis with the original phases. The FFT is libavutil's.
//
// Thread-safety: a plain function on the caller's data.
#ifndef TRAINSPOTTER_FINGERPRINT_NOISE_REDUCTION_H_
#define TRAINSPOTTER_FINGERPRINT_NOISE_REDUCTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace trainspotter {

// Returns `pcm` (mono, kFingerprintSampleRate) with its stationary noise floor subtracted, the
// same length. Input too short for the estimate (under ~1 s) comes back unchanged, and so
// does digital silence. INTERNAL only if libavutil cannot set up its FFT.
absl::StatusOr<std::vector<int16_t>> ReduceStationaryNoise(absl::Span<const int16_t> pcm);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_NOISE_REDUCTION_H_
