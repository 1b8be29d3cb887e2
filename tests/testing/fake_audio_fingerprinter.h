// FakeAudioFingerprinter: the service's AudioFingerprinter seam without FFmpeg. "Audio" is the
// bytes "FAKEAUDIO" followed by little-endian uint32 fingerprint items (MakeFakeAudio); anything
// else is refused as not audio, like the real decoder refuses a text file. A delay knob makes
// deadline handling testable; the delay honours limits.deadline and limits.interrupt.
// Variants are computed from the items, so tests can build audio that only a variant matches:
// the phase variant for offset k is FakePhaseVariant(items, k), the narrowband twin
// FakeNarrowband(items). Speed factors are ignored (no speed variants).
#ifndef TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_FINGERPRINTER_H_
#define TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_FINGERPRINTER_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "service/audio_fingerprinter.h"

namespace trainspotter {

inline constexpr absl::string_view kFakeAudioMagic = "FAKEAUDIO";

inline std::string MakeFakeAudio(const std::vector<uint32_t>& items) {
  std::string bytes(kFakeAudioMagic);
  for (uint32_t v : items) {
    for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
  }
  return bytes;
}

// Each item XOR k: what the fake "hears" with the first k samples dropped.
inline std::vector<uint32_t> FakePhaseVariant(std::vector<uint32_t> items, int k) {
  for (uint32_t& v : items) v ^= static_cast<uint32_t>(k);
  return items;
}

// Each item inverted: the fake's 300-3400 Hz twin.
inline std::vector<uint32_t> FakeNarrowband(std::vector<uint32_t> items) {
  for (uint32_t& v : items) v = ~v;
  return items;
}

class FakeAudioFingerprinter : public AudioFingerprinter {
 public:
  void set_delay(absl::Duration delay) { delay_ = delay; }
  // The options of the latest call (default-constructed before the first).
  FingerprintOptions last_options() const {
    absl::MutexLock lock(&mu_);
    return last_options_;
  }

  absl::StatusOr<FingerprintResult> FingerprintBuffer(absl::string_view bytes,
                                                      const std::string& name,
                                                      const FingerprintOptions& options) override {
    {
      absl::MutexLock lock(&mu_);
      last_options_ = options;
    }
    absl::Time until = absl::Now() + delay_;
    while (absl::Now() < until) {
      if (absl::Now() >= options.limits.deadline) {
        return absl::DeadlineExceededError(absl::StrCat(name, ": decoding deadline"));
      }
      if (options.limits.interrupt && options.limits.interrupt()) {
        return absl::CancelledError(absl::StrCat(name, ": interrupted"));
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (!absl::StartsWith(bytes, kFakeAudioMagic) ||
        (bytes.size() - kFakeAudioMagic.size()) % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not an audio file (no known container format)"));
    }
    FingerprintResult result;
    for (size_t i = kFakeAudioMagic.size(); i < bytes.size(); i += 4) {
      uint32_t v = 0;
      for (int b = 0; b < 4; ++b)
        v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + b])) << (8 * b);
      result.fingerprint.items.push_back(v);
    }
    if (options.max_seconds > 0) {
      size_t keep = static_cast<size_t>(SecondsToItem(options.max_seconds));
      if (result.fingerprint.items.size() > keep) result.fingerprint.items.resize(keep);
    }
    result.fingerprint.duration_seconds =
        ItemToSeconds(static_cast<double>((bytes.size() - kFakeAudioMagic.size()) / 4));
    for (int k : options.phase_offsets) {
      result.phase_variants.push_back(FakePhaseVariant(result.fingerprint.items, k));
    }
    if (options.narrowband_twin) result.narrowband_items = FakeNarrowband(result.fingerprint.items);
    return result;
  }

  absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                    const FingerprintOptions& options) override {
    absl::StatusOr<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    return FingerprintBuffer(*bytes, path, options);
  }

 private:
  absl::Duration delay_;
  mutable absl::Mutex mu_;
  FingerprintOptions last_options_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_FINGERPRINTER_H_
