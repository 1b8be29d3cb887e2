// ChromaprintStream: 16-bit PCM in, Chromaprint items out, one pass, bounded memory.
//
// This header is chromaprint-free; fingerprint/chromaprint_fingerprinter.cc is the only file in
// the project that includes chromaprint.h. (It also implements FingerprintPcm, EncodeFingerprint
// and DecodeFingerprint from fingerprint/fingerprinter.h.)
#ifndef TRAINSPOTTER_FINGERPRINT_CHROMAPRINT_FINGERPRINTER_H_
#define TRAINSPOTTER_FINGERPRINT_CHROMAPRINT_FINGERPRINTER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace trainspotter {

// One Chromaprint context running the default algorithm (what fpcalc uses). Thread-compatible:
// a stream is used by one thread at a time; streams are independent of each other.
class ChromaprintStream {
 public:
  // `sample_rate` is the rate the fed samples are declared to have (1001..1000000 Hz);
  // `channels` (1..8) their interleaving. Chromaprint downmixes and resamples to mono 11025 Hz
  // itself when they differ from that. Declaring a rate that is not the true one is how a speed
  // change is simulated: samples of 11025 Hz audio declared as 11025 * f Hz are fingerprinted as
  // that audio played f times as fast (pitch and tempo together).
  // INVALID_ARGUMENT on a rate or channel count out of range.
  static absl::StatusOr<std::unique_ptr<ChromaprintStream>> Create(int sample_rate, int channels);

  virtual ~ChromaprintStream() = default;

  // Feeds interleaved samples (a whole number of frames). May be called any number of times,
  // with any split: the items do not depend on how the audio is cut into calls.
  virtual absl::Status Feed(absl::Span<const int16_t> samples) = 0;

  // Ends the audio and returns the raw items (possibly none, for very short audio). Call once;
  // Feed() and Finish() after it fail with FAILED_PRECONDITION.
  virtual absl::StatusOr<std::vector<uint32_t>> Finish() = 0;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_CHROMAPRINT_FINGERPRINTER_H_
