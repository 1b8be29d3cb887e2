// Audio (a file path or bytes in memory) -> Chromaprint fingerprint, as fpcalc computes it.
//
// Thread-safety: every function here is safe to call concurrently from many threads; each call
// owns its own decoder and Chromaprint context.
#ifndef TRAINSPOTTER_FINGERPRINT_FINGERPRINTER_H_
#define TRAINSPOTTER_FINGERPRINT_FINGERPRINTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/fingerprint_types.h"

namespace trainspotter {

// Bounds on one decode, so that no input can hang the process or exhaust memory.
struct DecodeLimits {
  // Bytes libavformat may read while probing the container.
  int64_t max_probe_bytes = 5 << 20;
  // Bytes read from the input in total; 0 = no limit.
  int64_t max_input_bytes = 0;
  // Seconds of audio decoded; decoding stops (successfully) after this. 0 = no limit.
  double max_decode_seconds = 0;
  // Decoding fails with DEADLINE_EXCEEDED once this time has passed.
  absl::Time deadline = absl::InfiniteFuture();
  // Polled during decoding; returning true aborts it with CANCELLED. May be empty.
  std::function<bool()> interrupt;
};

struct FingerprintOptions {
  // Fingerprint only the first `max_seconds` of audio, as fpcalc's -length (default 120).
  // 0 = the whole file.
  double max_seconds = 120;
  DecodeLimits limits;
  // Extra fingerprints of the same decoded audio played at these speed factors (pitch and tempo
  // together, as a resampled file is); e.g. {0.98, 1.02}. Used by the matcher to undo speed
  // changes. Each costs one more Chromaprint pass over the PCM, no more decoding.
  std::vector<double> speed_factors;
};

struct FingerprintResult {
  Fingerprint fingerprint;
  // One entry per FingerprintOptions::speed_factors, in the same order.
  std::vector<std::vector<uint32_t>> speed_variants;
  // Non-fatal problems (e.g. "corrupt frame at 61.2 s skipped"). Empty on clean input.
  std::vector<std::string> warnings;
};

// Decodes the best audio stream of the file at `path` (video containers too), downmixes and
// resamples it exactly as fpcalc 1.5.1 does, and fingerprints it with Chromaprint's default
// algorithm. Errors (never exceptions): NOT_FOUND (missing file), INVALID_ARGUMENT (directory,
// empty file, not audio, no audio stream, nothing decodable), RESOURCE_EXHAUSTED (limits),
// DEADLINE_EXCEEDED, CANCELLED. Messages name `path` and the reason.
absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                  const FingerprintOptions& options);

// As FingerprintFile, for a file held in memory (e.g. an upload). `name` is used in messages.
absl::StatusOr<FingerprintResult> FingerprintBuffer(absl::string_view bytes,
                                                    const std::string& name,
                                                    const FingerprintOptions& options);

// Fingerprints interleaved 16-bit PCM (any rate, 1..8 channels) with Chromaprint directly.
absl::StatusOr<std::vector<uint32_t>> FingerprintPcm(absl::Span<const int16_t> samples,
                                                     int sample_rate, int channels);

// The compressed, URL-safe base64 form AcoustID and fpcalc print ("AQADtE...").
absl::StatusOr<std::string> EncodeFingerprint(absl::Span<const uint32_t> items,
                                              int algorithm = kChromaprintAlgorithm);
// Inverse of EncodeFingerprint. INVALID_ARGUMENT on malformed input.
absl::StatusOr<Fingerprint> DecodeFingerprint(absl::string_view encoded);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_FINGERPRINTER_H_
