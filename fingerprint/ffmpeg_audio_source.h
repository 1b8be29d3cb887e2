// FfmpegAudioSource: any audio (or video) file FFmpeg can read -> mono 16-bit PCM at 11025 Hz,
// produced exactly as fpcalc 1.5.1 (Debian 12's libchromaprint-tools) produces it, so that
// Chromaprint items computed from it are bit-identical to `fpcalc -raw`.
//
// This header is libav-free; fingerprint/ffmpeg_audio_source.cc is the only file in the project
// that includes libav headers.
#ifndef TRAINSPOTTER_FINGERPRINT_FFMPEG_AUDIO_SOURCE_H_
#define TRAINSPOTTER_FINGERPRINT_FFMPEG_AUDIO_SOURCE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fingerprint/audio_source.h"
#include "fingerprint/fingerprinter.h"

namespace trainspotter {

// Opens the file at `path` (a plain path: never interpreted as a URL or an FFmpeg protocol) and
// picks its best audio stream (av_find_best_stream; video containers work too). The returned
// source reads the file itself, so it stays valid after `path` goes away.
//
// Errors, each a one-line message that starts with `path`: NOT_FOUND (missing file),
// PERMISSION_DENIED, INVALID_ARGUMENT (a directory, an empty file, not a media format FFmpeg
// knows, no audio stream, an audio codec FFmpeg cannot decode), RESOURCE_EXHAUSTED (a limit in
// `limits`), DEADLINE_EXCEEDED, CANCELLED.
//
// `limits` are enforced for the life of the source: probing is bounded by max_probe_bytes, every
// read by max_input_bytes, Read() returns 0 after max_decode_seconds, and `deadline`/`interrupt`
// are polled while opening and on every read.
//
// Thread-safety: the function may be called concurrently; each source is used by one thread at a
// time. Note: the first call installs a process-wide av_log callback (FFmpeg's own log output is
// silenced, as fpcalc does; set TRAINSPOTTER_FFMPEG_LOG=1 to see it on stderr).
absl::StatusOr<std::unique_ptr<AudioSource>> OpenFfmpegAudioFile(const std::string& path,
                                                                 const DecodeLimits& limits);

// As OpenFfmpegAudioFile, for a file held in memory. `bytes` must outlive the returned source;
// `name` is used in messages (and, like a file name, as a hint when probing the format).
absl::StatusOr<std::unique_ptr<AudioSource>> OpenFfmpegAudioBuffer(absl::string_view bytes,
                                                                   const std::string& name,
                                                                   const DecodeLimits& limits);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_FINGERPRINT_FFMPEG_AUDIO_SOURCE_H_
