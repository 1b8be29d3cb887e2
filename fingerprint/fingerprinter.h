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
  // Bytes libavformat may read while probing the container (its `probesize`; 5000000 is
  // libavformat's default, which fpcalc uses: a different value can change what it detects).
  int64_t max_probe_bytes = 5000000;
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
  //
  // Direction: the variant for factor f is (approximately) the fingerprint of this audio played
  // f times as fast, i.e. what fpcalc would print for a copy sped up by f. So if a query is a
  // catalogued track sped up by 1.02, the catalogued track's 1.02 variant resembles the query's
  // plain fingerprint, and the query's 1/1.02 variant resembles the track's plain fingerprint.
  // A variant covers the same PCM as `fingerprint` (the first max_seconds of the input), which
  // lasts that long divided by f: its items number about fingerprint.items.size() / f.
  // How: the 11025 Hz PCM is fed to another Chromaprint context that is told it runs at
  // round(11025 * f) Hz, so Chromaprint's own resampler compresses time by f. The rate is an
  // integer, so the factor in effect is round(11025 * f) / 11025 (within 0.005 %). Each factor
  // must lie in [0.25, 4].
  std::vector<double> speed_factors;
  // Extra fingerprints of the same audio with its first k samples (at the 11025 Hz Chromaprint
  // rate) dropped, for each k here (0 < k < 1365, Chromaprint's hop). A clip cut anywhere in a
  // track is rarely aligned to the reference's item grid; one of these phases lands closer to
  // it, which lowers the bit error rate of short clips. Each costs one Chromaprint pass.
  std::vector<int> phase_offsets;
  // Also fingerprint the audio band-limited to 300-3400 Hz (fingerprint/narrowband_filter.h):
  // the reference's narrowband twin, which band-limited copies match closely.
  bool narrowband_twin = false;
  // Also fingerprint the audio after subtracting its stationary noise floor
  // (fingerprint/noise_reduction.h), as it is and at each of phase_offsets, for queries
  // recorded or mixed over steady noise. Needs the
  // whole input in memory, so only input of at most kMaxNoiseReducedSeconds gets one (and only
  // input at kFingerprintSampleRate, which the FFmpeg decoder always yields).
  bool noise_reduced_variant = false;
  // Compute the speed, phase and noise-reduced variants above only when asked
  // (ComputeDeferredVariants): the decoded input is kept instead (FingerprintResult::
  // deferred_pcm), so that a query which the plain fingerprint answers never pays for them.
  // Input longer than kMaxNoiseReducedSeconds, or not at kFingerprintSampleRate, gets its
  // variants computed while it streams, as without this option; the variants are the same
  // either way, item for item.
  bool defer_variants = false;
  // Also compute the bit weights (fingerprint/bit_weights.h) of the fingerprint and of every
  // phase and noise-reduced variant, for the matcher's decision. They need the decoded audio,
  // so only input that is held (at most kMaxNoiseReducedSeconds at kFingerprintSampleRate,
  // with noise_reduced_variant or defer_variants) gets them; the speed variants never do.
  bool bit_weights = false;
};

// Longest input (seconds decoded) that FingerprintOptions::noise_reduced_variant applies to:
// 10 minutes of PCM at the Chromaprint rate are 13 MB.
inline constexpr double kMaxNoiseReducedSeconds = 600;

struct FingerprintResult {
  Fingerprint fingerprint;
  // One entry per FingerprintOptions::speed_factors, in the same order.
  std::vector<std::vector<uint32_t>> speed_variants;
  // One entry per FingerprintOptions::phase_offsets, in the same order.
  std::vector<std::vector<uint32_t>> phase_variants;
  // Set when FingerprintOptions::narrowband_twin: the band-limited twin's items.
  std::vector<uint32_t> narrowband_items;
  // Set when FingerprintOptions::noise_reduced_variant and the input was short enough: the
  // items of the audio with its stationary noise subtracted (same timing as `fingerprint`),
  // and of that audio at each FingerprintOptions::phase_offsets (same order; empty if the
  // audio is too short for that phase).
  std::vector<uint32_t> noise_reduced_items;
  std::vector<std::vector<uint32_t>> noise_reduced_phase_variants;
  // With FingerprintOptions::bit_weights, when the input was held: the bit weights of
  // fingerprint.items, and of the phase and noise-reduced variants (parallel to those fields).
  // Empty otherwise: every bit at full weight.
  std::vector<uint8_t> weights;
  std::vector<std::vector<uint8_t>> phase_variant_weights;
  std::vector<uint8_t> noise_reduced_weights;
  std::vector<std::vector<uint8_t>> noise_reduced_phase_weights;
  // Non-fatal problems (e.g. "corrupt frame at 61.2 s skipped"). Empty on clean input.
  std::vector<std::string> warnings;
  // Seconds of audio the items were computed from (at most FingerprintOptions::max_seconds).
  double fingerprinted_seconds = 0.0;
  // With FingerprintOptions::defer_variants, when the input was short enough: the mono PCM at
  // kFingerprintSampleRate that the items were computed from, and the variant fields above
  // still empty. ComputeDeferredVariants fills them and releases this.
  std::vector<int16_t> deferred_pcm;
  bool variants_deferred() const { return !deferred_pcm.empty(); }
};

class AudioSource;  // fingerprint/audio_source.h

// Decodes the best audio stream of the file at `path` (video containers too), downmixes and
// resamples it exactly as fpcalc 1.5.1 does, and fingerprints it with Chromaprint's default
// algorithm. Errors (never exceptions): NOT_FOUND (missing file), INVALID_ARGUMENT (directory,
// empty file, not audio, no audio stream, nothing decodable), RESOURCE_EXHAUSTED (limits),
// DEADLINE_EXCEEDED, CANCELLED. Messages name `path` and the reason.
//
// fingerprint.duration_seconds is what fpcalc reports: the duration the file declares, in whole
// milliseconds (fpcalc's DURATION= is its integer part); when the file declares none, the
// seconds decoded if the whole file was read, else 0. Damaged or truncated input still yields
// the fingerprint of what decoded, with `warnings` saying what went wrong.
absl::StatusOr<FingerprintResult> FingerprintFile(const std::string& path,
                                                  const FingerprintOptions& options);

// As FingerprintFile, for a file held in memory (e.g. an upload). `name` is used in messages.
absl::StatusOr<FingerprintResult> FingerprintBuffer(absl::string_view bytes,
                                                    const std::string& name,
                                                    const FingerprintOptions& options);

// The common core of FingerprintFile and FingerprintBuffer: fingerprints what `source` yields
// (mono PCM) under `options` (options.limits are the source's business and ignored here). Lets
// tests and other decoders supply PCM directly. `name` is used in messages. Errors:
// INVALID_ARGUMENT (bad options, no audio at all, audio too short for a single item), and any
// error of source.Read().
absl::StatusOr<FingerprintResult> FingerprintAudioSource(AudioSource& source,
                                                         const std::string& name,
                                                         const FingerprintOptions& options);

// Fills the speed, phase and noise-reduced variants of a result whose variants were deferred
// (result->variants_deferred()), exactly as FingerprintAudioSource would have computed them with
// the same `options` without defer_variants, and releases result->deferred_pcm. Does nothing to
// a result without deferred variants. `name` is used in messages.
absl::Status ComputeDeferredVariants(const std::string& name, const FingerprintOptions& options,
                                     FingerprintResult* result);

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
