// The Chromaprint adapter: the only file in the project that includes chromaprint.h.
#include "fingerprint/chromaprint_fingerprinter.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/fingerprint_types.h"
#include "common/status_macros.h"
#include "fingerprint/fingerprinter.h"

extern "C" {
#include <chromaprint.h>
}

namespace trainspotter {
namespace {

static_assert(kChromaprintAlgorithm == CHROMAPRINT_ALGORITHM_DEFAULT,
              "common/fingerprint_types.h must name Chromaprint's default algorithm");

constexpr int kMinSampleRate = 1001;  // Chromaprint refuses 1000 Hz and below
constexpr int kMaxSampleRate = 1000000;
constexpr int kMaxChannels = 8;
// Chromaprint takes sizes as int; feed in slices well below that.
constexpr size_t kMaxFeed = size_t{1} << 24;
// DecodeFingerprint: an hour of items compresses to roughly 100 kB; allow far more, not unbounded.
constexpr size_t kMaxEncodedSize = size_t{64} << 20;
constexpr int kMaxAlgorithm = CHROMAPRINT_ALGORITHM_TEST5;

struct ContextFreer {
  void operator()(ChromaprintContext* c) const { chromaprint_free(c); }
};
struct ChromaprintFreer {  // memory Chromaprint allocated for us
  void operator()(void* p) const { chromaprint_dealloc(p); }
};

class ChromaprintStreamImpl : public ChromaprintStream {
 public:
  explicit ChromaprintStreamImpl(std::unique_ptr<ChromaprintContext, ContextFreer> ctx,
                                 int channels)
      : ctx_(std::move(ctx)), channels_(channels) {}

  absl::Status Feed(absl::Span<const int16_t> samples) override {
    if (finished_) return absl::FailedPreconditionError("Chromaprint: Feed() after Finish()");
    if (samples.size() % static_cast<size_t>(channels_) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("Chromaprint: ", samples.size(),
                                                     " samples is not a whole number of ",
                                                     channels_, "-channel frames"));
    }
    const size_t slice = kMaxFeed - kMaxFeed % static_cast<size_t>(channels_);
    while (!samples.empty()) {
      const size_t n = std::min(samples.size(), slice);
      if (!chromaprint_feed(ctx_.get(), samples.data(), static_cast<int>(n))) {
        return absl::InternalError("Chromaprint: could not process audio data");
      }
      samples.remove_prefix(n);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<uint32_t>> Finish() override {
    if (finished_) return absl::FailedPreconditionError("Chromaprint: Finish() called twice");
    finished_ = true;
    if (!chromaprint_finish(ctx_.get())) {
      return absl::InternalError("Chromaprint: could not finish the fingerprint");
    }
    uint32_t* raw = nullptr;
    int size = 0;
    if (!chromaprint_get_raw_fingerprint(ctx_.get(), &raw, &size) || size < 0) {
      return absl::InternalError("Chromaprint: could not get the fingerprint");
    }
    std::unique_ptr<uint32_t, ChromaprintFreer> owned(raw);
    if (size == 0 || raw == nullptr) return std::vector<uint32_t>();
    return std::vector<uint32_t>(raw, raw + size);
  }

 private:
  std::unique_ptr<ChromaprintContext, ContextFreer> ctx_;
  int channels_;
  bool finished_ = false;
};

bool IsUrlSafeBase64(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChromaprintStream>> ChromaprintStream::Create(int sample_rate,
                                                                             int channels) {
  if (sample_rate < kMinSampleRate || sample_rate > kMaxSampleRate) {
    return absl::InvalidArgumentError(absl::StrCat("Chromaprint: sample rate ", sample_rate,
                                                   " Hz out of range [", kMinSampleRate, ", ",
                                                   kMaxSampleRate, "]"));
  }
  if (channels < 1 || channels > kMaxChannels) {
    return absl::InvalidArgumentError(
        absl::StrCat("Chromaprint: ", channels, " channels out of range [1, ", kMaxChannels, "]"));
  }
  std::unique_ptr<ChromaprintContext, ContextFreer> ctx(
      chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT));
  if (!ctx) return absl::ResourceExhaustedError("Chromaprint: cannot create a context");
  if (!chromaprint_start(ctx.get(), sample_rate, channels)) {
    return absl::InvalidArgumentError(absl::StrCat("Chromaprint: cannot start at ", sample_rate,
                                                   " Hz with ", channels, " channel(s)"));
  }
  return std::unique_ptr<ChromaprintStream>(
      std::make_unique<ChromaprintStreamImpl>(std::move(ctx), channels));
}

absl::StatusOr<std::vector<uint32_t>> FingerprintPcm(absl::Span<const int16_t> samples,
                                                     int sample_rate, int channels) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<ChromaprintStream> stream,
                      ChromaprintStream::Create(sample_rate, channels));
  TS_RETURN_IF_ERROR(stream->Feed(samples));
  return stream->Finish();
}

absl::StatusOr<std::string> EncodeFingerprint(absl::Span<const uint32_t> items, int algorithm) {
  if (algorithm < 0 || algorithm > kMaxAlgorithm) {
    return absl::InvalidArgumentError(absl::StrCat("unknown Chromaprint algorithm ", algorithm));
  }
  // The compressed header stores the item count in 24 bits.
  if (items.size() >= (size_t{1} << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint of ", items.size(), " items is too long to encode"));
  }
  char* encoded = nullptr;
  int encoded_size = 0;
  if (!chromaprint_encode_fingerprint(items.data(), static_cast<int>(items.size()), algorithm,
                                      &encoded, &encoded_size, /*base64=*/1) ||
      encoded == nullptr || encoded_size < 0) {
    return absl::InternalError("Chromaprint: could not encode the fingerprint");
  }
  std::unique_ptr<char, ChromaprintFreer> owned(encoded);
  return std::string(encoded, static_cast<size_t>(encoded_size));
}

absl::StatusOr<Fingerprint> DecodeFingerprint(absl::string_view encoded) {
  // Chromaprint decodes any byte as some base64 digit and does not check lengths; check first.
  if (encoded.empty()) return absl::InvalidArgumentError("empty fingerprint");
  if (encoded.size() > kMaxEncodedSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoded fingerprint of ", encoded.size(), " bytes is too long"));
  }
  if (!IsUrlSafeBase64(encoded) || encoded.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        "malformed fingerprint: expected URL-safe base64 as fpcalc prints (A-Z a-z 0-9 - _)");
  }
  uint32_t* raw = nullptr;
  int size = 0;
  int algorithm = -1;
  int ok = chromaprint_decode_fingerprint(encoded.data(), static_cast<int>(encoded.size()), &raw,
                                          &size, &algorithm, /*base64=*/1);
  std::unique_ptr<uint32_t, ChromaprintFreer> owned(raw);
  if (!ok || size < 0) {
    return absl::InvalidArgumentError("malformed fingerprint: not a compressed Chromaprint");
  }
  if (algorithm < 0 || algorithm > kMaxAlgorithm) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed fingerprint: unknown algorithm ", algorithm));
  }
  Fingerprint fp;
  fp.algorithm = algorithm;
  if (size > 0 && raw != nullptr) fp.items.assign(raw, raw + size);
  return fp;
}

}  // namespace trainspotter
