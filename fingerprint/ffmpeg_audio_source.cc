// The FFmpeg (libav*) adapter: the only file in the project that includes libav headers.
//
// Why the decode loop looks the way it does: Debian 12's fpcalc (chromaprint 1.5.1 patched for
// FFmpeg 5) drives libavcodec in an unusual order, and every detail of that order shows in the
// PCM it fingerprints. Its reader, per call:
//   1. reads the next packet of the audio stream unless it still holds one (none after EOF);
//   2. calls avcodec_receive_frame() FIRST, then avcodec_send_packet() with the held packet (an
//      empty packet, i.e. a drain request, once the input has ended); a send that answers
//      EAGAIN drops the packet;
//   3. on an error from either call, drops the packet and any frame just received; a second
//      error in a row ends decoding (at the end of every file that is how it stops: draining
//      answers AVERROR_EOF twice, hence fpcalc's "Error decoding audio frame (End of file)");
//   4. otherwise, once any frame has ever been received, converts the frame object it holds
//      through libswresample, even when step 2 received nothing new (the frame is then empty
//      and swr_convert may still emit buffered samples), into a buffer of
//      max(8192, largest frame so far) samples, so a conversion that would yield more is cut
//      and the rest stays inside swr;
//   5. never flushes swr once a frame has been received, so its final few samples are lost.
// swr is set up from the decoder context right after opening, in "compatible mode" (SWR engine,
// filter_size 16, phase_shift 8, linear_interp, cutoff 0.8; see ConfigureResampler) and only when
// the stream is not already mono s16 at 11025 Hz. Reproducing all of this (and not a cleaner
// decode loop) is what makes our items bit-identical to `fpcalc -raw`. Where fpcalc gives up on
// damaged input (a second bad packet in a row, a read error) we go on and report a warning.
#include "fingerprint/ffmpeg_audio_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

namespace trainspotter {
namespace {

constexpr int kIoBufferSize = 32768;           // libavformat's own default (IO_BUFFER_SIZE)
constexpr int kMinConvertCapacity = 1024 * 8;  // fpcalc's minimum conversion buffer, in samples
constexpr int kMaxFrameSamples = 1 << 24;      // refuse absurd frames rather than allocate them
constexpr int kMaxConsecutiveErrors = 200;     // damaged packets in a row before giving up
constexpr int kMaxStepsAfterEof = 64;          // draining takes two; this only guards a loop
constexpr int64_t kMaxSaneDurationMs = int64_t{366} * 24 * 3600 * 1000;

// ---- owners of libav handles ------------------------------------------------------------------

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct FormatFreer {  // for a context that was never opened
  void operator()(AVFormatContext* c) const { avformat_free_context(c); }
};
struct AvioFreer {
  void operator()(AVIOContext* c) const {
    av_freep(&c->buffer);
    avio_context_free(&c);
  }
};
struct AvFreer {
  void operator()(void* p) const { av_free(p); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct ChannelLayoutOwner {  // AVChannelLayout may own a map for custom orders
  AVChannelLayout layout{};
  ~ChannelLayoutOwner() { av_channel_layout_uninit(&layout); }
};

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(err, buf, sizeof(buf)) != 0) {
    return absl::StrCat("FFmpeg error ", err);
  }
  return buf;
}

// ---- where the bytes come from ------------------------------------------------------------------

class ByteInput {
 public:
  virtual ~ByteInput() = default;
  // Reads up to `size` bytes; returns the count, 0 at the end, or a negative AVERROR.
  virtual int Read(uint8_t* buf, int size) = 0;
  // As AVIOContext's seek callback, AVSEEK_SIZE included. Only called when seekable().
  virtual int64_t Seek(int64_t offset, int whence) = 0;
  virtual bool seekable() const = 0;
  // Total size in bytes, -1 if unknown (not seekable).
  virtual int64_t size() const = 0;
  // Reads up to `n` bytes at `offset` without moving the read position; returns the count
  // (negative on error). Only called when seekable().
  virtual int64_t ReadAt(int64_t offset, uint8_t* buf, size_t n) = 0;
};

// The position an AVIO seek callback moves to from `pos` in an input of `size` bytes (for
// AVSEEK_SIZE: the size itself), or AVERROR(EINVAL) for an unknown whence, an overflow or a
// target before the start. Shared by the file and memory inputs.
int64_t SeekTarget(int64_t pos, int64_t size, int64_t offset, int whence) {
  int64_t base;
  switch (whence) {
    case AVSEEK_SIZE:
      return size;
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = pos;
      break;
    case SEEK_END:
      base = size;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (offset > std::numeric_limits<int64_t>::max() - base) return AVERROR(EINVAL);
  const int64_t target = base + offset;
  return target < 0 ? AVERROR(EINVAL) : target;
}

class FileInput : public ByteInput {
 public:
  FileInput(int fd, int64_t size, bool seekable) : fd_(fd), size_(size), seekable_(seekable) {}
  ~FileInput() override { ::close(fd_); }

  int Read(uint8_t* buf, int size) override {
    while (true) {
      ssize_t n = seekable_ ? ::pread(fd_, buf, static_cast<size_t>(size), pos_)
                            : ::read(fd_, buf, static_cast<size_t>(size));
      if (n < 0) {
        if (errno == EINTR) continue;
        return AVERROR(errno);
      }
      pos_ += n;
      return static_cast<int>(n);
    }
  }

  int64_t Seek(int64_t offset, int whence) override {
    const int64_t target = SeekTarget(pos_, size_, offset, whence);
    if (target >= 0 && whence != AVSEEK_SIZE) pos_ = target;
    return target;
  }

  bool seekable() const override { return seekable_; }
  int64_t size() const override { return size_; }
  int64_t ReadAt(int64_t offset, uint8_t* buf, size_t n) override {
    while (true) {
      ssize_t got = ::pread(fd_, buf, n, offset);
      if (got < 0 && errno == EINTR) continue;
      return got;
    }
  }

 private:
  int fd_;
  int64_t size_;
  bool seekable_;
  int64_t pos_ = 0;
};

class MemoryInput : public ByteInput {
 public:
  explicit MemoryInput(absl::string_view bytes) : bytes_(bytes) {}

  int Read(uint8_t* buf, int size) override {
    if (pos_ >= bytes_.size()) return 0;
    size_t n = std::min(bytes_.size() - pos_, static_cast<size_t>(size));
    std::memcpy(buf, bytes_.data() + pos_, n);
    pos_ += n;
    return static_cast<int>(n);
  }

  int64_t Seek(int64_t offset, int whence) override {
    const int64_t target = SeekTarget(static_cast<int64_t>(pos_),
                                      static_cast<int64_t>(bytes_.size()), offset, whence);
    if (target >= 0 && whence != AVSEEK_SIZE) pos_ = static_cast<size_t>(target);
    return target;
  }

  bool seekable() const override { return true; }
  int64_t size() const override { return static_cast<int64_t>(bytes_.size()); }
  int64_t ReadAt(int64_t offset, uint8_t* buf, size_t n) override {
    if (offset < 0 || static_cast<uint64_t>(offset) >= bytes_.size()) return 0;
    n = std::min(n, bytes_.size() - static_cast<size_t>(offset));
    std::memcpy(buf, bytes_.data() + offset, n);
    return static_cast<int64_t>(n);
  }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

// ---- limits, deadline and cancellation, shared with libavformat's callbacks --------------------

class Guard {
 public:
  Guard(std::string name, const DecodeLimits& limits) : name_(std::move(name)), limits_(limits) {}

  // OK, or why decoding must stop now. Sticky: once tripped, stays tripped.
  absl::Status Check() {
    if (!stop_.ok()) return stop_;
    if (limits_.deadline != absl::InfiniteFuture() && absl::Now() >= limits_.deadline) {
      stop_ =
          absl::DeadlineExceededError(absl::StrCat(name_, ": deadline exceeded while decoding"));
    } else if (limits_.interrupt && limits_.interrupt()) {
      stop_ = absl::CancelledError(absl::StrCat(name_, ": decoding cancelled"));
    }
    return stop_;
  }

  // Accounts for a read of up to `want` bytes; returns how many may be read (0 = limit hit).
  int Admit(int want) {
    if (limits_.max_input_bytes <= 0) return want;
    int64_t left = limits_.max_input_bytes - bytes_read_;
    if (left <= 0) {
      if (stop_.ok()) {
        stop_ = absl::ResourceExhaustedError(
            absl::StrCat(name_, ": read limit of ", limits_.max_input_bytes, " bytes reached"));
      }
      return 0;
    }
    return static_cast<int>(std::min<int64_t>(want, left));
  }
  void Count(int n) { bytes_read_ += n; }

  const absl::Status& stop() const { return stop_; }

 private:
  std::string name_;
  DecodeLimits limits_;
  int64_t bytes_read_ = 0;
  absl::Status stop_;
};

struct IoOpaque {
  ByteInput* input;
  Guard* guard;
};

int ReadCallback(void* opaque, uint8_t* buf, int size) {
  auto* io = static_cast<IoOpaque*>(opaque);
  if (!io->guard->Check().ok()) return AVERROR_EXIT;
  int allowed = io->guard->Admit(size);
  if (allowed == 0) return AVERROR_EXIT;
  int n = io->input->Read(buf, allowed);
  if (n == 0) return AVERROR_EOF;
  if (n > 0) io->guard->Count(n);
  return n;
}

int64_t SeekCallback(void* opaque, int64_t offset, int whence) {
  auto* io = static_cast<IoOpaque*>(opaque);
  if (!io->guard->Check().ok()) return AVERROR_EXIT;
  return io->input->Seek(offset, whence & ~AVSEEK_FORCE);
}

int InterruptCallback(void* opaque) { return static_cast<Guard*>(opaque)->Check().ok() ? 0 : 1; }

// Demuxers that reference other resources (playlists, concat lists, image sequences) would open
// them through this; an input is exactly the bytes we were given, so refuse.
int RefuseNestedOpen(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

// ---- warnings -----------------------------------------------------------------------------------

// Collects non-fatal problems by kind: the first occurrence is kept verbatim with its time, later
// ones are only counted, so a badly damaged file cannot grow the list without bound.
class WarningLog {
 public:
  void Add(absl::string_view kind, double at_seconds, absl::string_view detail) {
    for (Entry& e : entries_) {
      if (e.kind == kind) {
        ++e.count;
        return;
      }
    }
    if (entries_.size() >= 16) return;
    entries_.push_back(Entry{std::string(kind), at_seconds, std::string(detail), 1});
  }

  std::vector<std::string> Render() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) {
      std::string line = e.count > 1 ? absl::StrCat(e.count, " x ", e.kind) : e.kind;
      if (e.at_seconds >= 0) {
        absl::StrAppend(&line, e.count > 1 ? " (first at " : " at ",
                        absl::StrFormat("%.1f s", e.at_seconds), e.count > 1 ? ")" : "");
      }
      if (!e.detail.empty()) absl::StrAppend(&line, ": ", e.detail);
      out.push_back(std::move(line));
    }
    return out;
  }

 private:
  struct Entry {
    std::string kind;
    double at_seconds;
    std::string detail;
    int count;
  };
  std::vector<Entry> entries_;
};

// libav reports many problems only through av_log. Errors logged on a thread while it works for a
// source are collected for that source (which turns them into warnings or error details);
// everything else is dropped (fpcalc silences the log too).
struct LogBuffer {
  static constexpr size_t kMaxMessages = 8;
  std::vector<std::string> messages;
};
thread_local LogBuffer* tls_log_sink = nullptr;
bool g_echo_ffmpeg_log = false;

void LogCallback(void* avcl, int level, const char* fmt, va_list vl) {
  if (g_echo_ffmpeg_log) {
    va_list copy;
    va_copy(copy, vl);
    av_log_default_callback(avcl, level, fmt, copy);
    va_end(copy);
  }
  if (level > AV_LOG_ERROR || tls_log_sink == nullptr ||
      tls_log_sink->messages.size() >= LogBuffer::kMaxMessages) {
    return;
  }
  char line[512];
  int print_prefix = 0;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
  absl::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return;
  tls_log_sink->messages.emplace_back(text);
}

void InitFfmpegOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* echo = std::getenv("TRAINSPOTTER_FFMPEG_LOG");
    g_echo_ffmpeg_log = echo != nullptr && *echo != '\0' && std::strcmp(echo, "0") != 0;
    av_log_set_level(g_echo_ffmpeg_log ? AV_LOG_INFO : AV_LOG_QUIET);
    av_log_set_callback(LogCallback);
  });
}

class ScopedLogSink {
 public:
  explicit ScopedLogSink(LogBuffer* sink) { tls_log_sink = sink; }
  ~ScopedLogSink() { tls_log_sink = nullptr; }
  ScopedLogSink(const ScopedLogSink&) = delete;
  ScopedLogSink& operator=(const ScopedLogSink&) = delete;
};

// Ogg pages: "OggS", version 0, flags (4 = end of stream), ..., segment count at byte 26, then
// the segment table (body size = sum of its entries) and the body.
constexpr int kOggHeaderSize = 27;
constexpr int kOggMaxPage = kOggHeaderSize + 255 + 255 * 255;
constexpr uint8_t kOggEndOfStream = 0x04;

// Why an Ogg file's last page shows it was cut short, or "" if it ends cleanly.
std::string OggEndingProblem(ByteInput& input) {
  const int64_t size = input.size();
  if (size <= 0) return "";
  const int64_t start = std::max<int64_t>(0, size - kOggMaxPage - kOggHeaderSize);
  std::vector<uint8_t> tail(static_cast<size_t>(size - start));
  if (input.ReadAt(start, tail.data(), tail.size()) != static_cast<int64_t>(tail.size())) {
    return "";
  }
  const size_t n = tail.size();
  if (n < 4) return "";
  for (size_t i = n - 3; i-- > 0;) {  // backwards over every position a page can start at
    const size_t p = i;
    if (std::memcmp(tail.data() + p, "OggS", 4) != 0) continue;
    if (p + 4 < n && tail[p + 4] != 0) continue;  // not a page: wrong version
    if (p + kOggHeaderSize > n) return "its last Ogg page is cut short";
    const size_t segments = tail[p + 26];
    if (p + kOggHeaderSize + segments > n) return "its last Ogg page is cut short";
    size_t body = 0;
    for (size_t i = 0; i < segments; ++i) body += tail[p + kOggHeaderSize + i];
    const size_t end = p + kOggHeaderSize + segments + body;
    if (end > n) return "its last Ogg page is cut short";
    if (end < n) return "it has bytes after its last complete Ogg page";
    if ((tail[p + 5] & kOggEndOfStream) == 0)
      return "its last Ogg page is not an end-of-stream page";
    return "";
  }
  return "";
}

// ---- the source ---------------------------------------------------------------------------------

class FfmpegAudioSource : public AudioSource {
 public:
  FfmpegAudioSource(std::string name, const DecodeLimits& limits, std::unique_ptr<ByteInput> input)
      : name_(std::move(name)), limits_(limits), input_(std::move(input)), guard_(name_, limits) {
    io_opaque_ = IoOpaque{input_.get(), &guard_};
    if (limits_.max_decode_seconds > 0) {
      max_samples_ = static_cast<int64_t>(limits_.max_decode_seconds * kFingerprintSampleRate);
    }
  }

  absl::Status Open();

  absl::StatusOr<size_t> Read(absl::Span<int16_t> out) override;
  int sample_rate() const override { return kFingerprintSampleRate; }
  int64_t declared_duration_ms() const override {
    if (declared_ms_ < 0 && done_ && reached_end_) {
      // Measured on the decoder's side: the resampler's last few samples never come out.
      return static_cast<int64_t>(input_seconds_ * 1000);
    }
    return declared_ms_;
  }
  double decoded_seconds() const override {
    return static_cast<double>(samples_out_) / kFingerprintSampleRate;
  }
  std::vector<std::string> warnings() const override { return warnings_.Render(); }

 private:
  absl::Status Fail(absl::StatusCode code, absl::string_view reason) const {
    return absl::Status(code, absl::StrCat(name_, ": ", reason));
  }
  absl::Status StopOr(absl::Status fallback) const {
    return guard_.stop().ok() ? fallback : guard_.stop();
  }
  absl::Status ConfigureResampler(AVSampleFormat format, int rate, const AVChannelLayout& layout);
  absl::Status Step();
  absl::Status Convert();
  void Finish(bool at_end_of_input);

  // FFmpeg's error log lines met since the last DrainLog(): a detail for the failure they
  // explain, else warnings of their own.
  std::string TakeLogLine() {
    std::string line = log_.messages.empty() ? "" : log_.messages.front();
    log_.messages.clear();
    return line;
  }
  void DrainLog() {
    for (const std::string& m : log_.messages) {
      warnings_.Add("FFmpeg reported an error", decoded_seconds(), m);
    }
    log_.messages.clear();
  }

  const std::string name_;
  const DecodeLimits limits_;
  std::unique_ptr<ByteInput> input_;
  Guard guard_;
  IoOpaque io_opaque_{};
  WarningLog warnings_;
  LogBuffer log_;

  // Destroyed in reverse order: the demuxer before the AVIO context it reads through.
  std::unique_ptr<AVIOContext, AvioFreer> avio_;
  std::unique_ptr<AVFormatContext, FormatCloser> format_;
  std::unique_ptr<AVCodecContext, CodecFreer> codec_;
  std::unique_ptr<AVPacket, PacketFreer> packet_;
  std::unique_ptr<AVFrame, FrameFreer> frame_;
  std::unique_ptr<SwrContext, SwrFreer> swr_;
  std::unique_ptr<uint8_t, AvFreer> convert_buffer_;
  int convert_capacity_ = 0;  // samples

  // What the resampler (or the pass-through) is set up for.
  bool configured_ = false;
  AVSampleFormat in_format_ = AV_SAMPLE_FMT_NONE;
  int in_rate_ = 0;
  int in_channels_ = 0;

  int stream_index_ = -1;
  int64_t declared_ms_ = -1;

  // fpcalc's reader state (see the comment at the top of the file).
  bool packet_held_ = false;
  bool input_ended_ = false;
  bool ever_received_ = false;
  bool done_ = false;
  absl::Status error_;  // once set, every Read() returns it
  bool reached_end_ = false;
  double input_seconds_ = 0;  // decoded, at the decoder's rate
  int consecutive_errors_ = 0;
  int steps_after_eof_ = 0;

  const int16_t* pending_ = nullptr;
  size_t pending_size_ = 0;
  int64_t samples_out_ = 0;
  int64_t max_samples_ = 0;  // 0 = no limit
};

absl::Status FfmpegAudioSource::Open() {
  ScopedLogSink sink(&log_);
  absl::Cleanup drain = [this] { DrainLog(); };

  std::unique_ptr<uint8_t, AvFreer> io_buffer(static_cast<uint8_t*>(av_malloc(kIoBufferSize)));
  if (!io_buffer) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");
  AVIOContext* avio =
      avio_alloc_context(io_buffer.get(), kIoBufferSize, /*write_flag=*/0, &io_opaque_,
                         ReadCallback, nullptr, input_->seekable() ? SeekCallback : nullptr);
  if (avio == nullptr) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");
  io_buffer.release();  // now owned by the AVIO context
  avio_.reset(avio);
  if (!input_->seekable()) avio->seekable = 0;

  std::unique_ptr<AVFormatContext, FormatFreer> unopened(avformat_alloc_context());
  if (!unopened) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");
  unopened->pb = avio;
  unopened->flags |= AVFMT_FLAG_CUSTOM_IO;
  unopened->interrupt_callback.callback = InterruptCallback;
  unopened->interrupt_callback.opaque = &guard_;
  unopened->io_open = RefuseNestedOpen;
  if (limits_.max_probe_bytes > 0) {
    unopened->probesize = std::max<int64_t>(limits_.max_probe_bytes, 32);
    unopened->format_probesize =
        static_cast<int>(std::min<int64_t>(unopened->probesize, 1 << 20));  // libav's default cap
  }

  // The name is only a hint for format probing here: with a custom AVIO context libavformat
  // never opens it. On failure avformat_open_input frees the context itself.
  AVFormatContext* raw = unopened.release();
  int ret = avformat_open_input(&raw, name_.c_str(), nullptr, nullptr);
  if (ret < 0) {
    const std::string detail = TakeLogLine();
    if (ret == AVERROR_INVALIDDATA && detail.empty()) {
      return StopOr(Fail(absl::StatusCode::kInvalidArgument,
                         "not an audio file: FFmpeg recognises no media format in it"));
    }
    return StopOr(Fail(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("not a readable media file (", detail.empty() ? AvError(ret) : detail, ")")));
  }
  format_.reset(raw);

  ret = avformat_find_stream_info(format_.get(), nullptr);
  if (ret < 0) {
    const std::string detail = TakeLogLine();
    return StopOr(Fail(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("cannot read stream information (",
                                    detail.empty() ? AvError(ret) : detail, ")")));
  }
  TS_RETURN_IF_ERROR(guard_.Check());

  const AVCodec* decoder = nullptr;
  ret = av_find_best_stream(format_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
  if (ret == AVERROR_STREAM_NOT_FOUND) {
    int video = 0, other = 0;
    for (unsigned i = 0; i < format_->nb_streams; ++i) {
      (format_->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? video : other)++;
    }
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("no audio stream (FFmpeg reads it as ", format_->iformat->name,
                             " with ", video, " video and ", other, " other stream(s))"));
  }
  if (ret == AVERROR_DECODER_NOT_FOUND || (ret >= 0 && decoder == nullptr)) {
    int best = av_find_best_stream(format_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    const char* codec_name =
        best >= 0 ? avcodec_get_name(format_->streams[best]->codecpar->codec_id) : "unknown";
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("no decoder for its audio codec (", codec_name, ")"));
  }
  if (ret < 0) {
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("cannot select an audio stream (", AvError(ret), ")"));
  }
  stream_index_ = ret;
  AVStream* stream = format_->streams[stream_index_];

  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");
  ret = avcodec_parameters_to_context(codec_.get(), stream->codecpar);
  if (ret < 0) {
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("bad audio codec parameters (", AvError(ret), ")"));
  }
  codec_->request_sample_fmt = AV_SAMPLE_FMT_S16;  // as fpcalc; some decoders honour it
  ret = avcodec_open2(codec_.get(), decoder, nullptr);
  if (ret < 0) {
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("cannot open the ", decoder->name, " decoder (", AvError(ret), ")"));
  }

  // fpcalc's duration: the stream's, else the container's, in whole ms (integer arithmetic).
  // 128-bit, so that an absurd declaration cannot overflow; such values are then discarded.
  absl::int128 ms = -1;
  if (stream->duration != AV_NOPTS_VALUE && stream->time_base.den > 0) {
    ms = absl::int128(1000) * stream->time_base.num * stream->duration / stream->time_base.den;
  } else if (format_->duration != AV_NOPTS_VALUE) {
    ms = absl::int128(1000) * format_->duration / AV_TIME_BASE;
  }
  if (ms > kMaxSaneDurationMs) {
    warnings_.Add("declared duration ignored", -1,
                  absl::StrFormat("%.0f s is not plausible", static_cast<double>(ms) / 1000));
    ms = -1;
  }
  declared_ms_ = ms < 0 ? -1 : static_cast<int64_t>(ms);

  packet_.reset(av_packet_alloc());
  frame_.reset(av_frame_alloc());
  if (!packet_ || !frame_) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");

  // Set the converter up now, from the decoder context, as fpcalc does. A decoder that does not
  // know its format before the first frame is set up on that frame instead.
  if (codec_->sample_rate > 0 && codec_->ch_layout.nb_channels > 0 &&
      codec_->sample_fmt != AV_SAMPLE_FMT_NONE) {
    TS_RETURN_IF_ERROR(
        ConfigureResampler(codec_->sample_fmt, codec_->sample_rate, codec_->ch_layout));
  }
  return absl::OkStatus();
}

absl::Status FfmpegAudioSource::ConfigureResampler(AVSampleFormat format, int rate,
                                                   const AVChannelLayout& layout) {
  if (rate <= 0 || layout.nb_channels <= 0 || format == AV_SAMPLE_FMT_NONE) {
    return Fail(absl::StatusCode::kInvalidArgument, "audio stream with no usable sample format");
  }
  in_format_ = format;
  in_rate_ = rate;
  in_channels_ = layout.nb_channels;
  configured_ = true;
  swr_.reset();
  if (format == AV_SAMPLE_FMT_S16 && layout.nb_channels == 1 && rate == kFingerprintSampleRate) {
    return absl::OkStatus();  // already what Chromaprint wants: fed as decoded
  }

  // fpcalc uses the decoder's channel mask, or the default layout for the channel count when
  // there is none (unspecified or custom channel order).
  ChannelLayoutOwner in_layout;
  int ret = 0;
  if (layout.order == AV_CHANNEL_ORDER_NATIVE) {
    ret = av_channel_layout_copy(&in_layout.layout, &layout);
  } else {
    av_channel_layout_default(&in_layout.layout, layout.nb_channels);
  }
  if (ret < 0) return Fail(absl::StatusCode::kInternal, "cannot copy the channel layout");
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;

  SwrContext* raw = nullptr;
  ret = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_S16, kFingerprintSampleRate,
                            &in_layout.layout, format, rate, 0, nullptr);
  std::unique_ptr<SwrContext, SwrFreer> swr(raw);
  if (ret < 0 || !swr) {
    return Fail(absl::StatusCode::kInternal,
                absl::StrCat("cannot set up the resampler (", AvError(ret), ")"));
  }
  // chromaprint's "compatible mode": these settings decide every output sample. It also asks for
  // an s16p internal format ("tsf"), but with FFmpeg 5 that av_opt_set_int() call fails
  // unnoticed (checked with av_opt_get on fpcalc's context), so swr picks the internal format
  // itself: s16p for 16-bit input, fltp for float input. Leaving it unset reproduces that.
  if (av_opt_set_int(swr.get(), "resampler", SWR_ENGINE_SWR, 0) < 0 ||
      av_opt_set_int(swr.get(), "filter_size", 16, 0) < 0 ||
      av_opt_set_int(swr.get(), "phase_shift", 8, 0) < 0 ||
      av_opt_set_int(swr.get(), "linear_interp", 1, 0) < 0 ||
      av_opt_set_double(swr.get(), "cutoff", 0.8, 0) < 0) {
    return Fail(absl::StatusCode::kInternal, "libswresample rejected fpcalc's resampler options");
  }
  ret = swr_init(swr.get());
  if (ret < 0) {
    return Fail(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("cannot convert ", layout.nb_channels, " channel(s) of ",
                     av_get_sample_fmt_name(format), " at ", rate, " Hz (", AvError(ret), ")"));
  }
  swr_ = std::move(swr);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FfmpegAudioSource::Read(absl::Span<int16_t> out) {
  if (out.empty()) return Fail(absl::StatusCode::kInvalidArgument, "Read() into an empty buffer");
  if (!error_.ok()) return error_;
  ScopedLogSink sink(&log_);
  while (pending_size_ == 0) {
    if (done_) return 0;
    if (absl::Status status = Step(); !status.ok()) {
      error_ = status;  // errors end the stream
      return status;
    }
  }
  size_t n = std::min(out.size(), pending_size_);
  if (max_samples_ > 0) {
    n = static_cast<size_t>(
        std::min<int64_t>(static_cast<int64_t>(n), max_samples_ - samples_out_));
  }
  std::memcpy(out.data(), pending_, n * sizeof(int16_t));
  pending_ += n;
  pending_size_ -= n;
  samples_out_ += static_cast<int64_t>(n);
  if (max_samples_ > 0 && samples_out_ >= max_samples_) {
    // A bound the caller chose: stop here, successfully.
    pending_size_ = 0;
    done_ = true;
  }
  return n;
}

absl::Status FfmpegAudioSource::Step() {
  absl::Cleanup drain = [this] { DrainLog(); };
  TS_RETURN_IF_ERROR(guard_.Check());

  // 1. The next packet of our stream, unless one is held or the input has ended.
  while (!packet_held_ && !input_ended_) {
    av_packet_unref(packet_.get());
    int ret = av_read_frame(format_.get(), packet_.get());
    if (ret == AVERROR_EOF) {
      input_ended_ = true;
      break;
    }
    if (ret < 0) {
      TS_RETURN_IF_ERROR(guard_.stop());
      // fpcalc stops with an error here; we fingerprint what decoded and say so.
      const std::string detail = TakeLogLine();
      warnings_.Add("read error, decoding stopped", decoded_seconds(),
                    detail.empty() ? AvError(ret) : detail);
      input_ended_ = true;
      break;
    }
    // Other streams, and (as fpcalc) empty packets of ours, are skipped.
    if (packet_->stream_index != stream_index_ || packet_->size <= 0) continue;
    if (packet_->flags & AV_PKT_FLAG_CORRUPT) {
      warnings_.Add("damaged packet", decoded_seconds(), "");
    }
    packet_held_ = true;
  }
  if (input_ended_ && ++steps_after_eof_ > kMaxStepsAfterEof) {
    Finish(/*at_end_of_input=*/true);
    return absl::OkStatus();
  }

  // 2. Receive first, then send (see the top of the file).
  int ret = avcodec_receive_frame(codec_.get(), frame_.get());
  if (ret == 0) ever_received_ = true;
  int err = ret;
  if (ret == 0 || ret == AVERROR(EAGAIN)) {
    err = avcodec_send_packet(codec_.get(), packet_held_ ? packet_.get() : nullptr);
    if (err == AVERROR(EAGAIN)) err = 0;  // decoder full: the packet is dropped, as in fpcalc
  }
  av_packet_unref(packet_.get());
  packet_held_ = false;

  // 3. Errors.
  if (err < 0) {
    TS_RETURN_IF_ERROR(guard_.stop());
    if (input_ended_) {
      Finish(/*at_end_of_input=*/true);  // the decoder is drained: the normal end
      return absl::OkStatus();
    }
    const std::string detail = TakeLogLine();
    warnings_.Add("damaged audio skipped", decoded_seconds(),
                  detail.empty() ? AvError(err) : detail);
    if (++consecutive_errors_ >= kMaxConsecutiveErrors) {
      warnings_.Add("decoding abandoned", decoded_seconds(),
                    absl::StrCat(kMaxConsecutiveErrors, " damaged packets in a row"));
      Finish(/*at_end_of_input=*/false);
    }
    return absl::OkStatus();
  }
  consecutive_errors_ = 0;

  // 4./5. Convert what we hold; flush the resampler only if no frame ever came (then it is empty).
  if (ever_received_) return Convert();
  if (input_ended_) {
    if (swr_) {
      // Nothing was ever decoded, so there is nothing to flush; fpcalc calls it anyway.
      swr_convert(swr_.get(), nullptr, 0, nullptr, 0);
    }
    Finish(/*at_end_of_input=*/true);
  }
  return absl::OkStatus();
}

absl::Status FfmpegAudioSource::Convert() {
  AVFrame* frame = frame_.get();
  const int nb_samples = frame->nb_samples;
  if (nb_samples < 0 || nb_samples > kMaxFrameSamples) {
    return Fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("decoder produced an implausible frame of ", nb_samples, " samples"));
  }
  if (nb_samples > 0) {
    const auto format = static_cast<AVSampleFormat>(frame->format);
    const int rate = frame->sample_rate > 0 ? frame->sample_rate : codec_->sample_rate;
    if (!configured_) {
      TS_RETURN_IF_ERROR(ConfigureResampler(format, rate, frame->ch_layout));
    } else if (format != in_format_ || rate != in_rate_ ||
               frame->ch_layout.nb_channels != in_channels_) {
      // fpcalc would feed such frames to a converter set up for another format (reading past
      // the frame's planes). Set up anew instead.
      warnings_.Add("audio format changes mid-stream", decoded_seconds(),
                    absl::StrCat(frame->ch_layout.nb_channels, " ch ",
                                 av_get_sample_fmt_name(format), " ", rate, " Hz"));
      TS_RETURN_IF_ERROR(ConfigureResampler(format, rate, frame->ch_layout));
    }
  }
  if (!configured_) return absl::OkStatus();  // an empty frame before any real one
  if (nb_samples > 0) input_seconds_ += static_cast<double>(nb_samples) / in_rate_;

  if (!swr_) {
    pending_ = reinterpret_cast<const int16_t*>(frame->data[0]);
    pending_size_ = static_cast<size_t>(nb_samples);
    return absl::OkStatus();
  }

  if (nb_samples > convert_capacity_) {
    const int capacity = std::max(kMinConvertCapacity, nb_samples);
    convert_buffer_.reset(static_cast<uint8_t*>(av_malloc(sizeof(int16_t) * capacity)));
    if (!convert_buffer_) return Fail(absl::StatusCode::kResourceExhausted, "out of memory");
    convert_capacity_ = capacity;
  }
  uint8_t* out[1] = {convert_buffer_.get()};
  const uint8_t** in = const_cast<const uint8_t**>(
      frame->extended_data != nullptr ? frame->extended_data : frame->data);
  int n = swr_convert(swr_.get(), out, convert_capacity_, in, nb_samples);
  if (n < 0) {
    return Fail(absl::StatusCode::kInternal, absl::StrCat("resampling failed (", AvError(n), ")"));
  }
  pending_ = reinterpret_cast<const int16_t*>(convert_buffer_.get());
  pending_size_ = static_cast<size_t>(n);
  return absl::OkStatus();
}

void FfmpegAudioSource::Finish(bool at_end_of_input) {
  done_ = true;
  reached_end_ = at_end_of_input;
  if (!at_end_of_input || samples_out_ == 0) return;
  if (input_->seekable() && absl::StrContains(format_->iformat->name, "ogg")) {
    // Ogg declares its duration in its last page, so a cut file declares a shorter one.
    if (std::string problem = OggEndingProblem(*input_); !problem.empty()) {
      warnings_.Add(
          "file truncated", -1,
          absl::StrCat(problem, " (decoded ", absl::StrFormat("%.1f", decoded_seconds()), " s)"));
      return;
    }
  }
  if (declared_ms_ <= 0) return;
  // The container promised more audio than there was: a truncated or damaged file (or an
  // estimate far off, as for VBR MP3 without a header). Leave room for codec padding.
  const double declared = static_cast<double>(declared_ms_) / 1000;
  const double decoded = decoded_seconds();
  if (decoded < declared - std::max(1.0, 0.05 * declared)) {
    warnings_.Add("audio ends early", -1,
                  absl::StrFormat("decoded %.1f s of the %.1f s the file declares (truncated or "
                                  "damaged?)",
                                  decoded, declared));
  }
}

absl::StatusOr<std::unique_ptr<AudioSource>> Open(std::string name, const DecodeLimits& limits,
                                                  std::unique_ptr<ByteInput> input) {
  InitFfmpegOnce();
  auto source = std::make_unique<FfmpegAudioSource>(std::move(name), limits, std::move(input));
  TS_RETURN_IF_ERROR(source->Open());
  return std::unique_ptr<AudioSource>(std::move(source));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AudioSource>> OpenFfmpegAudioFile(const std::string& path,
                                                                 const DecodeLimits& limits) {
  if (path.empty()) return absl::InvalidArgumentError("empty file name");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, path);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not an audio file"));
  }
  const bool regular = S_ISREG(st.st_mode);
  if (regular && st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty file (0 bytes)"));
  }
  auto input = std::make_unique<FileInput>(fd, regular ? static_cast<int64_t>(st.st_size) : -1,
                                           /*seekable=*/regular);
  return Open(path, limits, std::move(input));
}

absl::StatusOr<std::unique_ptr<AudioSource>> OpenFfmpegAudioBuffer(absl::string_view bytes,
                                                                   const std::string& name,
                                                                   const DecodeLimits& limits) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty input (0 bytes)"));
  }
  return Open(name, limits, std::make_unique<MemoryInput>(bytes));
}

}  // namespace trainspotter
