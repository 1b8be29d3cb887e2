// One ingest session in domain terms: tracks of one dataset, each given as a fingerprint, audio
// bytes or a server-side file, fingerprinted as needed and committed to the catalogue in
// batches. Used by the IngestTracks handler; no proto or gRPC here.
//
// Thread-safety: one Ingester per call, used from one thread.
#ifndef TRAINSPOTTER_SERVICE_INGESTER_H_
#define TRAINSPOTTER_SERVICE_INGESTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/fingerprint_types.h"
#include "matcher/catalog.h"
#include "service/audio_fingerprinter.h"

namespace trainspotter {

struct IngestPolicy {
  // Canonical ingest roots (see ingest_paths.h); empty = server paths refused.
  std::vector<std::string> canonical_roots;
  // Largest audio upload accepted (server files are read from disk and not limited).
  int64_t max_audio_bytes = int64_t{256} << 20;
  // Also index the 300-3400 Hz twin of tracks given as audio (bytes or server path), as
  // `trainspotter ingest` does by default (FingerprintOptions::narrowband_twin), so that
  // band-limited copies of them are found. Tracks given as fingerprints have no twin.
  bool narrowband_twin = true;
  // Tracks per AddTracks transaction.
  int batch_size = 64;
  // Per-track errors kept for the response.
  int max_reported_errors = 1000;
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;
};

struct IngestHeaderSpec {
  std::string dataset, version, description;
  double max_seconds = 0;  // 0 = whole tracks
};

struct TrackSubmission {
  enum class Source { kFingerprint, kAudioBytes, kServerPath };
  std::string track_id;
  TrackMetadata metadata;
  Source source = Source::kFingerprint;
  Fingerprint fingerprint;   // kFingerprint
  std::string audio;         // kAudioBytes
  std::string server_path;   // kServerPath
  std::string content_hash;  // empty = computed
};

struct TrackFailure {
  std::string track_id;
  absl::Status status;
};

struct IngestReport {
  int64_t added = 0, skipped = 0, failed = 0;
  std::vector<TrackFailure> errors;
};

// Dataset names: letters, digits, '.', '_', '-', 1-128 characters.
absl::Status ValidateDatasetName(const std::string& name);

class Ingester {
 public:
  Ingester(Catalog* catalog, AudioFingerprinter* fingerprinter, IngestPolicy policy);

  // Validates the header and creates/updates the dataset. INVALID_ARGUMENT on a bad header.
  absl::Status Begin(const IngestHeaderSpec& header);

  // Adds one track. A problem with this track alone (bad id, corrupt audio, path refused) is
  // recorded in the report and OK is returned; an error means the session cannot go on
  // (catalogue write failed, deadline passed, cancelled).
  absl::Status Add(TrackSubmission track);

  // Records `track_id` as refused with `status` (e.g. refused by the protocol layer).
  void Reject(const std::string& track_id, absl::Status status) {
    Fail(track_id, std::move(status));
  }

  // Commits the pending batch.
  absl::Status Finish();

  const IngestReport& report() const { return report_; }

 private:
  void Fail(const std::string& track_id, absl::Status status);
  absl::Status Flush();

  Catalog* catalog_;
  AudioFingerprinter* fingerprinter_;
  IngestPolicy policy_;
  IngestHeaderSpec header_;
  bool begun_ = false;
  std::vector<TrackInput> pending_;
  IngestReport report_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_INGESTER_H_
