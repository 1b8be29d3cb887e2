#include "service/audio_fingerprinter.h"

namespace trainspotter {
namespace {

class DefaultAudioFingerprinter : public AudioFingerprinter {
 public:
  absl::StatusOr<FingerprintResult> FingerprintBuffer(absl::string_view bytes,
                                                      const std::string& name,
                                                      const FingerprintOptions& options) override {
    return ::trainspotter::FingerprintBuffer(bytes, name, options);
  }
  absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                    const FingerprintOptions& options) override {
    return ::trainspotter::FingerprintFile(path, options);
  }
};

}  // namespace

std::unique_ptr<AudioFingerprinter> NewDefaultAudioFingerprinter() {
  return std::make_unique<DefaultAudioFingerprinter>();
}

}  // namespace trainspotter
