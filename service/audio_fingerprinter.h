// The service's seam to the fingerprint module: audio in, Chromaprint items out. The default
// implementation calls fingerprint/fingerprinter.h; tests substitute fakes (e.g. a slow one to
// exercise deadlines).
//
// Thread-safety: implementations must allow concurrent calls.
#ifndef TRAINSPOTTER_SERVICE_AUDIO_FINGERPRINTER_H_
#define TRAINSPOTTER_SERVICE_AUDIO_FINGERPRINTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fingerprint/fingerprinter.h"

namespace trainspotter {

class AudioFingerprinter {
 public:
  virtual ~AudioFingerprinter() = default;
  // As trainspotter::FingerprintBuffer / FingerprintFile (same errors).
  virtual absl::StatusOr<FingerprintResult> FingerprintBuffer(
      absl::string_view bytes, const std::string& name, const FingerprintOptions& options) = 0;
  virtual absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                            const FingerprintOptions& options) = 0;
};

// FFmpeg + Chromaprint, through the fingerprint module.
std::unique_ptr<AudioFingerprinter> NewDefaultAudioFingerprinter();

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_AUDIO_FINGERPRINTER_H_
