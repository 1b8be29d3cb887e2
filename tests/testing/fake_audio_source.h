// FakeAudioSource: an in-memory AudioSource (fingerprint/audio_source.h) for tests.
#ifndef TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_SOURCE_H_
#define TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_SOURCE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fingerprint/audio_source.h"

namespace trainspotter::testing {

// Yields `samples` (mono, at `sample_rate`) in reads of at most `chunk` samples; optionally fails
// with `error` once `fail_after` samples have been read.
class FakeAudioSource : public AudioSource {
 public:
  FakeAudioSource(std::vector<int16_t> samples, int sample_rate, size_t chunk = 4096)
      : samples_(std::move(samples)), sample_rate_(sample_rate), chunk_(chunk) {}

  void set_declared_duration_ms(int64_t ms) { declared_ms_ = ms; }
  void add_warning(std::string w) { warnings_.push_back(std::move(w)); }
  void FailAfter(size_t samples, absl::Status error) {
    fail_after_ = samples;
    error_ = std::move(error);
  }
  size_t reads() const { return reads_; }

  absl::StatusOr<size_t> Read(absl::Span<int16_t> out) override {
    ++reads_;
    if (!error_.ok() && pos_ >= fail_after_) return error_;
    size_t end = std::min({samples_.size(), pos_ + out.size(), pos_ + chunk_});
    if (!error_.ok()) end = std::min(end, std::max(fail_after_, pos_));
    const size_t n = end - pos_;
    if (n > 0) std::memcpy(out.data(), samples_.data() + pos_, n * sizeof(int16_t));
    pos_ = end;
    return n;
  }
  int sample_rate() const override { return sample_rate_; }
  int64_t declared_duration_ms() const override { return declared_ms_; }
  double decoded_seconds() const override { return static_cast<double>(pos_) / sample_rate_; }
  std::vector<std::string> warnings() const override { return warnings_; }

 private:
  std::vector<int16_t> samples_;
  int sample_rate_;
  size_t chunk_;
  size_t pos_ = 0;
  size_t reads_ = 0;
  int64_t declared_ms_ = -1;
  std::vector<std::string> warnings_;
  size_t fail_after_ = 0;
  absl::Status error_;
};

}  // namespace trainspotter::testing

#endif  // TRAINSPOTTER_TESTS_TESTING_FAKE_AUDIO_SOURCE_H_
