// A stream of decoded mono 16-bit PCM: the seam between decoding (FFmpeg) and fingerprinting
// (Chromaprint). Tests substitute an in-memory twin (tests/testing/fake_audio_source.h).
#ifndef TRAINSPOTTER_FINGERPRINT_AUDIO_SOURCE_H_
#define TRAINSPOTTER_FINGERPRINT_AUDIO_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace trainspotter {

// Thread-compatible: one thread at a time may call a given AudioSource; distinct sources are
// independent.
class AudioSource {
 public:
  virtual ~AudioSource() = default;

  // Reads up to out.size() mono samples at sample_rate() into `out`. Returns how many were
  // written: fewer than out.size() does not mean the end; 0 means the end of the audio (and
  // every later call returns 0). Problems the source can work around (a corrupt frame, a
  // truncated tail) become warnings(), not errors. Errors end the stream: DEADLINE_EXCEEDED,
  // CANCELLED, RESOURCE_EXHAUSTED (a DecodeLimits bound), or others with a message naming the
  // input.
  virtual absl::StatusOr<size_t> Read(absl::Span<int16_t> out) = 0;

  // Samples per second of what Read() returns.
  virtual int sample_rate() const = 0;

  // The duration the container declares, in whole milliseconds rounded down (as fpcalc 1.5.1
  // computes it: the audio stream's duration, else the container's), known right after opening.
  // When it declares none (or something absurd: negative, or over a year), -1 until Read() has
  // reached the end, then the duration that was decoded.
  virtual int64_t declared_duration_ms() const = 0;

  // Seconds of audio returned by Read() so far.
  virtual double decoded_seconds() const = 0;

  // Non-fatal problems met so far, one line each.
  virtual std::vector<std::string> warnings() const = 0;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_AUDIO_SOURCE_H_
