#include "service/catalog_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "fingerprint/fingerprinter.h"
#include "service/convert.h"
#include "service/ingester.h"
#include "service/server_call.h"

namespace trainspotter {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// Page tokens are the (name, version) of the last dataset returned, so pages stay correct while
// datasets are added or removed between calls.
std::string MakePageToken(const DatasetInfo& last) {
  return absl::WebSafeBase64Escape(absl::StrCat(last.name, std::string(1, '\0'), last.version));
}

absl::StatusOr<std::pair<std::string, std::string>> ParsePageToken(const std::string& token) {
  std::string raw;
  size_t nul;
  if (!absl::WebSafeBase64Unescape(token, &raw) || (nul = raw.find('\0')) == std::string::npos) {
    return absl::InvalidArgumentError("malformed page_token (pass next_page_token unchanged)");
  }
  return std::make_pair(raw.substr(0, nul), raw.substr(nul + 1));
}

absl::Status ListDatasetsPage(ServiceCore* core, const v1::ListDatasetsRequest& request,
                              v1::ListDatasetsResponse* response) {
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size must be >= 0");
  int page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  TS_ASSIGN_OR_RETURN(std::vector<DatasetInfo> datasets, core->catalog->ListDatasets());
  auto key = [](const DatasetInfo& d) { return std::make_pair(d.name, d.version); };
  std::sort(datasets.begin(), datasets.end(),
            [&](const DatasetInfo& a, const DatasetInfo& b) { return key(a) < key(b); });
  auto begin = datasets.begin();
  if (!request.page_token().empty()) {
    TS_ASSIGN_OR_RETURN(auto after, ParsePageToken(request.page_token()));
    begin = std::upper_bound(datasets.begin(), datasets.end(), after,
                             [&](const auto& k, const DatasetInfo& d) { return k < key(d); });
  }
  auto end = datasets.end() - begin > page_size ? begin + page_size : datasets.end();
  for (auto it = begin; it != end; ++it) DatasetInfoToProto(*it, response->add_datasets());
  if (end != datasets.end()) response->set_next_page_token(MakePageToken(*(end - 1)));
  return absl::OkStatus();
}

absl::Status DeleteTracks(ServiceCore* core, const v1::DeleteTracksRequest& request,
                          v1::DeleteTracksResponse* response) {
  TS_RETURN_IF_ERROR(ValidateDatasetName(request.dataset()));
  if (request.entire_dataset() == (request.track_ids_size() > 0)) {
    return absl::InvalidArgumentError(
        "give either track_ids or entire_dataset = true (exactly one of them)");
  }
  int64_t deleted = 0;
  if (request.entire_dataset()) {
    TS_ASSIGN_OR_RETURN(deleted, core->catalog->Delete(request.dataset(), ""));
  } else {
    for (const std::string& id : request.track_ids()) {
      if (id.empty()) return absl::InvalidArgumentError("empty track_id in track_ids");
      absl::StatusOr<int64_t> n = core->catalog->Delete(request.dataset(), id);
      if (absl::IsNotFound(n.status())) continue;  // documented: unknown ids are ignored
      if (!n.ok()) return n.status();
      deleted += *n;
    }
  }
  response->set_deleted(deleted);
  return absl::OkStatus();
}

// Converts one IngestTrack (plus, for audio, its following chunks) into a TrackSubmission.
absl::StatusOr<TrackSubmission> SubmissionFromProto(v1::IngestTrack* track) {
  TrackSubmission out;
  out.track_id = track->track_id();
  out.metadata = TrackMetadataFromProto(track->metadata());
  out.content_hash = track->content_hash();
  switch (track->source_case()) {
    case v1::IngestTrack::kFingerprint: {
      out.source = TrackSubmission::Source::kFingerprint;
      absl::StatusOr<Fingerprint> decoded = DecodeFingerprint(track->fingerprint());
      if (!decoded.ok()) return decoded.status();
      out.fingerprint = *std::move(decoded);
      out.fingerprint.duration_seconds = track->metadata().duration();
      break;
    }
    case v1::IngestTrack::kRaw:
      out.source = TrackSubmission::Source::kFingerprint;
      out.fingerprint = FingerprintFromProto(track->raw());
      break;
    case v1::IngestTrack::kAudio:
      out.source = TrackSubmission::Source::kAudioBytes;
      out.audio = std::move(*track->mutable_audio());
      break;
    case v1::IngestTrack::kServerPath:
      out.source = TrackSubmission::Source::kServerPath;
      out.server_path = track->server_path();
      break;
    case v1::IngestTrack::SOURCE_NOT_SET:
      return absl::InvalidArgumentError(
          "track has no source: set fingerprint, raw, audio or server_path");
  }
  return out;
}

}  // namespace

grpc::Status CatalogServiceImpl::ListDatasets(grpc::ServerContext* context,
                                              const v1::ListDatasetsRequest* request,
                                              v1::ListDatasetsResponse* response) {
  ServerCall call(core_, context, "ListDatasets");
  return call.Run(Role::kQuery, [&] { return ListDatasetsPage(core_, *request, response); });
}

grpc::Status CatalogServiceImpl::GetTrack(grpc::ServerContext* context,
                                          const v1::GetTrackRequest* request, v1::Track* response) {
  ServerCall call(core_, context, "GetTrack");
  return call.Run(Role::kQuery, [&]() -> absl::Status {
    TS_ASSIGN_OR_RETURN(TrackInfo track,
                        core_->catalog->GetTrack(request->dataset(), request->track_id()));
    TrackInfoToProto(track, response);
    return absl::OkStatus();
  });
}

grpc::Status CatalogServiceImpl::DeleteTracks(grpc::ServerContext* context,
                                              const v1::DeleteTracksRequest* request,
                                              v1::DeleteTracksResponse* response) {
  ServerCall call(core_, context, "DeleteTracks");
  grpc::Status status = call.Run(Role::kAdmin, [&]() -> absl::Status {
    call.log_fields()["dataset"] = request->dataset();
    absl::Status deleted = trainspotter::DeleteTracks(core_, *request, response);
    call.log_fields()["deleted"] = response->deleted();
    return deleted;
  });
  core_->UpdateCatalogGauges();
  return status;
}

grpc::Status CatalogServiceImpl::GetStats(grpc::ServerContext* context,
                                          const v1::GetStatsRequest* /*request*/,
                                          v1::GetStatsResponse* response) {
  ServerCall call(core_, context, "GetStats");
  return call.Run(Role::kQuery, [&]() -> absl::Status {
    TS_ASSIGN_OR_RETURN(std::vector<DatasetInfo> datasets, core_->catalog->ListDatasets());
    response->set_datasets(static_cast<int64_t>(datasets.size()));
    response->set_tracks(core_->catalog->num_tracks());
    response->set_hours(core_->catalog->hours());
    response->set_server_version(core_->config.version);
    response->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - core_->started));
    response->set_calls_in_flight(core_->metrics.calls_in_flight());
    return absl::OkStatus();
  });
}

grpc::Status CatalogServiceImpl::IngestTracks(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::IngestTracksRequest>* reader,
                                              v1::IngestTracksResponse* response) {
  ServerCall call(core_, context, "IngestTracks");
  grpc::Status status = call.Run(Role::kAdmin, [&]() -> absl::Status {
    IngestPolicy policy;
    policy.canonical_roots = core_->config.canonical_ingest_roots;
    policy.max_audio_bytes = core_->config.max_upload_bytes;
    policy.deadline = call.deadline();
    policy.cancelled = call.cancelled();
    Ingester ingester(core_->catalog, core_->fingerprinter, policy);

    v1::IngestTracksRequest message;
    if (!reader->Read(&message)) return absl::InvalidArgumentError("no request message received");
    if (message.payload_case() != v1::IngestTracksRequest::kHeader) {
      return absl::InvalidArgumentError("the first IngestTracksRequest must be an IngestHeader");
    }
    const v1::IngestHeader& header = message.header();
    call.log_fields()["dataset"] = header.dataset();
    TS_RETURN_IF_ERROR(ingester.Begin(
        {header.dataset(), header.version(), header.description(), header.max_seconds()}));

    // A track given as audio may continue in audio_chunk messages: it is complete when the next
    // track (or the end of the stream) arrives.
    std::optional<v1::IngestTrack> current;
    std::unique_ptr<BudgetReservation> reservation;
    bool oversized = false;
    int64_t upload_bytes = 0;
    auto submit = [&]() -> absl::Status {
      if (!current) return absl::OkStatus();
      v1::IngestTrack track = std::move(*current);
      current.reset();
      reservation.reset();
      if (oversized) {
        oversized = false;
        ingester.Reject(track.track_id(),
                        absl::ResourceExhaustedError(absl::StrCat(
                            "audio exceeds the server's upload limit of ",
                            core_->config.max_upload_bytes / (1 << 20), " MiB (--max-upload-mb)")));
        return absl::OkStatus();
      }
      absl::StatusOr<TrackSubmission> submission = SubmissionFromProto(&track);
      if (!submission.ok()) {
        ingester.Reject(track.track_id(), submission.status());
        return absl::OkStatus();
      }
      return ingester.Add(*std::move(submission));
    };
    while (reader->Read(&message)) {
      switch (message.payload_case()) {
        case v1::IngestTracksRequest::kTrack:
          TS_RETURN_IF_ERROR(submit());
          current = std::move(*message.mutable_track());
          if (current->source_case() == v1::IngestTrack::kAudio) {
            reservation = std::make_unique<BudgetReservation>(&core_->upload_budget);
            upload_bytes += static_cast<int64_t>(current->audio().size());
            if (static_cast<int64_t>(current->audio().size()) > core_->config.max_upload_bytes) {
              oversized = true;
              std::string().swap(*current->mutable_audio());  // keeps the oneof case
            } else if (!reservation->Grow(static_cast<int64_t>(current->audio().size()))) {
              return absl::ResourceExhaustedError("server is busy with other uploads; retry later");
            }
          }
          break;
        case v1::IngestTracksRequest::kAudioChunk: {
          if (!current || current->source_case() != v1::IngestTrack::kAudio) {
            return absl::InvalidArgumentError("audio_chunk without a preceding IngestTrack.audio");
          }
          const std::string& chunk = message.audio_chunk();
          upload_bytes += static_cast<int64_t>(chunk.size());
          if (oversized) break;  // the rest of a refused track is read and dropped
          if (static_cast<int64_t>(current->audio().size() + chunk.size()) >
              core_->config.max_upload_bytes) {
            oversized = true;
            std::string().swap(*current->mutable_audio());
            reservation = std::make_unique<BudgetReservation>(&core_->upload_budget);
            break;
          }
          if (!reservation->Grow(static_cast<int64_t>(chunk.size()))) {
            return absl::ResourceExhaustedError("server is busy with other uploads; retry later");
          }
          current->mutable_audio()->append(chunk);
          break;
        }
        case v1::IngestTracksRequest::kHeader:
          return absl::InvalidArgumentError("IngestHeader may only be the first message");
        case v1::IngestTracksRequest::PAYLOAD_NOT_SET:
          return absl::InvalidArgumentError("empty IngestTracksRequest");
      }
    }
    TS_RETURN_IF_ERROR(submit());
    TS_RETURN_IF_ERROR(ingester.Finish());
    core_->metrics.UploadBytes(upload_bytes);
    const IngestReport& report = ingester.report();
    response->set_added(report.added);
    response->set_skipped(report.skipped);
    response->set_failed(report.failed);
    for (const TrackFailure& failure : report.errors) {
      v1::TrackError* error = response->add_errors();
      error->set_track_id(failure.track_id);
      error->set_code(static_cast<int>(failure.status.code()));
      error->set_message(std::string(failure.status.message()));
    }
    call.log_fields()["added"] = report.added;
    call.log_fields()["skipped"] = report.skipped;
    call.log_fields()["failed"] = report.failed;
    call.log_fields()["bytes"] = upload_bytes;
    return absl::OkStatus();
  });
  core_->UpdateCatalogGauges();
  return status;
}

}  // namespace trainspotter
