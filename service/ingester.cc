#include "service/ingester.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "service/auth.h"
#include "service/ingest_paths.h"

namespace trainspotter {
namespace {

std::string ItemsHash(const std::vector<uint32_t>& items) {
  std::string bytes(items.size() * 4, '\0');
  for (size_t i = 0; i < items.size(); ++i) {
    uint32_t v = items[i];  // little-endian, whatever the host
    bytes[4 * i] = static_cast<char>(v & 0xff);
    bytes[4 * i + 1] = static_cast<char>((v >> 8) & 0xff);
    bytes[4 * i + 2] = static_cast<char>((v >> 16) & 0xff);
    bytes[4 * i + 3] = static_cast<char>((v >> 24) & 0xff);
  }
  return absl::StrCat("fp:", Sha256Hex(bytes));
}

absl::Status ValidateTrackId(const std::string& id) {
  if (id.empty() || id.size() > 256) {
    return absl::InvalidArgumentError("track_id must be 1-256 bytes");
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) return absl::InvalidArgumentError("track_id has control characters");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDatasetName(const std::string& name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("dataset name must be 1-128 characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset name '", name, "' may only contain letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

Ingester::Ingester(Catalog* catalog, AudioFingerprinter* fingerprinter, IngestPolicy policy)
    : catalog_(catalog), fingerprinter_(fingerprinter), policy_(std::move(policy)) {}

absl::Status Ingester::Begin(const IngestHeaderSpec& header) {
  TS_RETURN_IF_ERROR(ValidateDatasetName(header.dataset));
  if (header.version.empty()) return absl::InvalidArgumentError("dataset version is required");
  if (!(header.max_seconds >= 0)) {
    return absl::InvalidArgumentError("max_seconds must be >= 0 (0 = whole tracks)");
  }
  TS_RETURN_IF_ERROR(catalog_->EnsureDataset(header.dataset, header.version, header.description));
  header_ = header;
  begun_ = true;
  return absl::OkStatus();
}

void Ingester::Fail(const std::string& track_id, absl::Status status) {
  ++report_.failed;
  if (static_cast<int>(report_.errors.size()) < policy_.max_reported_errors) {
    report_.errors.push_back({track_id, std::move(status)});
  }
}

absl::Status Ingester::Add(TrackSubmission track) {
  if (!begun_) return absl::FailedPreconditionError("Begin() was not called");
  if (absl::Now() >= policy_.deadline) {
    return absl::DeadlineExceededError("deadline passed during ingest");
  }
  if (policy_.cancelled && policy_.cancelled()) return absl::CancelledError("client cancelled");
  if (absl::Status s = ValidateTrackId(track.track_id); !s.ok()) {
    Fail(track.track_id, s);
    return absl::OkStatus();
  }

  // The content hash first: an unchanged track is skipped before any decoding.
  std::string hash = track.content_hash;
  std::string path;
  if (track.source == TrackSubmission::Source::kServerPath) {
    absl::StatusOr<std::string> resolved =
        ResolveIngestPath(policy_.canonical_roots, track.server_path);
    if (!resolved.ok()) {
      Fail(track.track_id, resolved.status());
      return absl::OkStatus();
    }
    // Server files are decoded from disk in bounded memory: the upload limit does not apply.
    path = *std::move(resolved);
  }
  if (hash.empty()) {
    switch (track.source) {
      case TrackSubmission::Source::kFingerprint:
        hash = ItemsHash(track.fingerprint.items);
        break;
      case TrackSubmission::Source::kAudioBytes:
        hash = absl::StrCat("sha256:", Sha256Hex(track.audio));
        break;
      case TrackSubmission::Source::kServerPath:
        break;  // hashed from the items once fingerprinted (reading it twice costs more)
    }
  }
  if (!hash.empty()) {
    absl::StatusOr<bool> has = catalog_->HasTrack(header_.dataset, track.track_id, hash);
    if (!has.ok()) return has.status();
    if (*has) {
      ++report_.skipped;
      return absl::OkStatus();
    }
  }

  Fingerprint fingerprint;
  std::vector<uint32_t> narrowband_items;
  if (track.source == TrackSubmission::Source::kFingerprint) {
    fingerprint = std::move(track.fingerprint);
  } else {
    FingerprintOptions options;
    options.max_seconds = header_.max_seconds;
    options.narrowband_twin = policy_.narrowband_twin;
    options.limits.deadline = policy_.deadline;
    options.limits.interrupt = policy_.cancelled;
    absl::StatusOr<FingerprintResult> fp =
        track.source == TrackSubmission::Source::kAudioBytes
            ? fingerprinter_->FingerprintBuffer(track.audio, track.track_id, options)
            : fingerprinter_->FingerprintFile(path, options);
    if (!fp.ok()) {
      if (absl::IsDeadlineExceeded(fp.status()) || absl::IsCancelled(fp.status())) {
        return fp.status();
      }
      Fail(track.track_id, fp.status());
      return absl::OkStatus();
    }
    fingerprint = std::move(fp->fingerprint);
    narrowband_items = std::move(fp->narrowband_items);
    if (hash.empty()) {
      hash = ItemsHash(fingerprint.items);
      absl::StatusOr<bool> has = catalog_->HasTrack(header_.dataset, track.track_id, hash);
      if (!has.ok()) return has.status();
      if (*has) {
        ++report_.skipped;
        return absl::OkStatus();
      }
    }
  }
  if (fingerprint.algorithm != kChromaprintAlgorithm) {
    Fail(track.track_id, absl::InvalidArgumentError(absl::StrCat(
                             "fingerprint algorithm ", fingerprint.algorithm, " not supported")));
    return absl::OkStatus();
  }
  if (fingerprint.items.empty()) {
    Fail(track.track_id, absl::InvalidArgumentError("empty fingerprint (no or too little audio)"));
    return absl::OkStatus();
  }

  TrackInput input;
  input.track_id = track.track_id;
  input.metadata = std::move(track.metadata);
  if (input.metadata.duration_seconds <= 0) {
    input.metadata.duration_seconds =
        fingerprint.duration_seconds > 0
            ? fingerprint.duration_seconds
            : ItemToSeconds(static_cast<double>(fingerprint.items.size()));
  }
  input.items = std::move(fingerprint.items);
  input.narrowband_items = std::move(narrowband_items);
  input.content_hash = std::move(hash);
  // A track given twice in one session: the later one wins.
  auto same = std::find_if(pending_.begin(), pending_.end(),
                           [&](const TrackInput& t) { return t.track_id == input.track_id; });
  if (same != pending_.end()) {
    *same = std::move(input);
  } else {
    pending_.push_back(std::move(input));
  }
  if (static_cast<int>(pending_.size()) >= policy_.batch_size) return Flush();
  return absl::OkStatus();
}

absl::Status Ingester::Flush() {
  if (pending_.empty()) return absl::OkStatus();
  absl::Status status = catalog_->AddTracks(header_.dataset, pending_);
  if (status.ok()) {
    report_.added += static_cast<int64_t>(pending_.size());
    pending_.clear();
    return absl::OkStatus();
  }
  if (!absl::IsInvalidArgument(status)) return status;
  // One bad track (e.g. too short to index) must not sink its batch: retry one by one so the
  // culprit is named and the others land.
  std::vector<TrackInput> batch = std::move(pending_);
  pending_.clear();
  for (const TrackInput& track : batch) {
    absl::Status one = catalog_->AddTracks(header_.dataset, absl::MakeConstSpan(&track, 1));
    if (one.ok()) {
      ++report_.added;
    } else if (absl::IsInvalidArgument(one)) {
      Fail(track.track_id, one);
    } else {
      return one;
    }
  }
  return absl::OkStatus();
}

absl::Status Ingester::Finish() {
  if (!begun_) return absl::InvalidArgumentError("no IngestHeader was sent");
  return Flush();
}

}  // namespace trainspotter
