#include "service/convert.h"

#include <algorithm>
#include <map>
#include <string>

#include "fingerprint/fingerprinter.h"

namespace trainspotter {

void TrackMetadataToProto(const TrackMetadata& in, v1::TrackMetadata* out) {
  out->set_title(in.title);
  out->set_artist(in.artist);
  out->set_album(in.album);
  out->set_source_url(in.source_url);
  out->set_license(in.license);
  out->set_duration(in.duration_seconds);
  for (const auto& [key, value] : in.extra) {
    v1::MetadataEntry* entry = out->add_extra();
    entry->set_key(key);
    entry->set_value(value);
  }
}

TrackMetadata TrackMetadataFromProto(const v1::TrackMetadata& in) {
  TrackMetadata out;
  out.title = in.title();
  out.artist = in.artist();
  out.album = in.album();
  out.source_url = in.source_url();
  out.license = in.license();
  out.duration_seconds = in.duration();
  for (const v1::MetadataEntry& entry : in.extra())
    out.extra.emplace_back(entry.key(), entry.value());
  return out;
}

void TrackInfoToProto(const TrackInfo& in, v1::Track* out) {
  out->set_dataset(in.dataset);
  out->set_version(in.version);
  out->set_track_id(in.track_id);
  TrackMetadataToProto(in.metadata, out->mutable_metadata());
  out->set_num_items(in.num_items);
  out->set_content_hash(in.content_hash);
}

void DatasetInfoToProto(const DatasetInfo& in, v1::Dataset* out) {
  out->set_name(in.name);
  out->set_version(in.version);
  out->set_description(in.description);
  out->set_tracks(in.tracks);
  out->set_hours(in.hours);
}

void CatalogMatchToProto(const CatalogMatch& in, v1::Match* out) {
  const TrackInfo& track = in.track;
  const SegmentMatch& segment = in.segment;
  out->set_dataset(track.dataset);
  out->set_version(track.version);
  out->set_track_id(track.track_id);
  out->set_title(track.metadata.title);
  out->set_artist(track.metadata.artist);
  auto& metadata = *out->mutable_metadata();
  for (const auto& [key, value] : track.metadata.extra) metadata.insert({key, value});
  if (!track.metadata.album.empty()) metadata["album"] = track.metadata.album;
  if (!track.metadata.source_url.empty()) metadata["source_url"] = track.metadata.source_url;
  if (!track.metadata.license.empty()) metadata["license"] = track.metadata.license;
  out->set_confidence(segment.confidence);
  out->set_false_match_probability(segment.false_match_probability);
  out->set_query_start(segment.query_start);
  out->set_query_end(segment.query_end);
  out->set_ref_start(segment.ref_start);
  out->set_ref_end(segment.ref_end);
  out->set_member(segment.member);
  out->set_bit_error_rate(segment.bit_error_rate);
  out->set_speed(segment.speed);
  out->set_ref_duration(track.metadata.duration_seconds);
}

CatalogMatch CatalogMatchFromProto(const v1::Match& in) {
  CatalogMatch out;
  TrackInfo& track = out.track;
  track.dataset = in.dataset();
  track.version = in.version();
  track.track_id = in.track_id();
  track.metadata.title = in.title();
  track.metadata.artist = in.artist();
  track.metadata.duration_seconds = in.ref_duration();
  std::map<std::string, std::string> sorted(in.metadata().begin(), in.metadata().end());
  for (auto& [key, value] : sorted) {
    if (key == "album") {
      track.metadata.album = value;
    } else if (key == "source_url") {
      track.metadata.source_url = value;
    } else if (key == "license") {
      track.metadata.license = value;
    } else {
      track.metadata.extra.emplace_back(key, value);
    }
  }
  SegmentMatch& segment = out.segment;
  segment.member = in.member();
  segment.confidence = in.confidence();
  segment.false_match_probability = in.false_match_probability();
  segment.query_start = in.query_start();
  segment.query_end = in.query_end();
  segment.ref_start = in.ref_start();
  segment.ref_end = in.ref_end();
  segment.bit_error_rate = in.bit_error_rate();
  segment.speed = in.speed();
  return out;
}

void QueryOutcomeToProto(const QueryOutcome& in, v1::MatchResponse* out) {
  out->set_member(in.result.member);
  out->set_duration(in.duration_seconds);
  for (const CatalogMatch& match : in.result.matches)
    CatalogMatchToProto(match, out->add_matches());
  for (const std::string& warning : in.warnings) out->add_warnings(warning);
}

QueryOutcome QueryOutcomeFromProto(const v1::MatchResponse& in) {
  QueryOutcome out;
  out.duration_seconds = in.duration();
  out.result.member = in.member();
  for (const v1::Match& match : in.matches())
    out.result.matches.push_back(CatalogMatchFromProto(match));
  out.warnings.assign(in.warnings().begin(), in.warnings().end());
  return out;
}

void FingerprintToProto(const Fingerprint& in, v1::RawFingerprint* out) {
  out->mutable_items()->Assign(in.items.begin(), in.items.end());
  out->set_duration(in.duration_seconds);
  out->set_algorithm(in.algorithm);
}

Fingerprint FingerprintFromProto(const v1::RawFingerprint& in) {
  Fingerprint out;
  out.items.assign(in.items().begin(), in.items().end());
  out.duration_seconds = in.duration();
  out.algorithm = in.algorithm() == 0 ? kChromaprintAlgorithm : in.algorithm();
  return out;
}

absl::StatusOr<Fingerprint> QueryFingerprintFromProto(const v1::MatchFingerprintRequest& in) {
  switch (in.fingerprint_case()) {
    case v1::MatchFingerprintRequest::kRaw:
      return FingerprintFromProto(in.raw());
    case v1::MatchFingerprintRequest::kCompressed: {
      absl::StatusOr<Fingerprint> decoded = DecodeFingerprint(in.compressed());
      if (!decoded.ok()) return decoded.status();
      decoded->duration_seconds = in.duration();
      return decoded;
    }
    case v1::MatchFingerprintRequest::FINGERPRINT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("no fingerprint: set `compressed` or `raw`");
}

namespace {

// Bit weights (32 per item, 0..15) <-> the proto's packed form (16 bytes per item: bit 2j's
// weight in the low nibble of byte j, bit 2j + 1's in the high one).
std::string PackWeights(const std::vector<uint8_t>& weights) {
  std::string out(weights.size() / 2, '\0');
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = static_cast<char>((weights[2 * j] & 0x0F) | ((weights[2 * j + 1] & 0x0F) << 4));
  }
  return out;
}

std::vector<uint8_t> UnpackWeights(const std::string& packed) {
  std::vector<uint8_t> out(2 * packed.size());
  for (size_t j = 0; j < packed.size(); ++j) {
    const auto byte = static_cast<uint8_t>(packed[j]);
    out[2 * j] = byte & 0x0F;
    out[2 * j + 1] = static_cast<uint8_t>(byte >> 4);
  }
  return out;
}

}  // namespace

QueryVariants QueryVariantsFromProto(const v1::MatchFingerprintRequest& in) {
  QueryVariants out;
  out.weights = UnpackWeights(in.bit_weights());
  for (const v1::PhaseVariant& variant : in.phase_variants()) {
    WeightedItems v;
    v.items.assign(variant.items().begin(), variant.items().end());
    v.weights = UnpackWeights(variant.bit_weights());
    out.phase.emplace_back(variant.start_seconds(), std::move(v));
  }
  for (const v1::SpeedVariant& variant : in.speed_variants()) {
    WeightedItems v;
    v.items.assign(variant.items().begin(), variant.items().end());
    out.speed.emplace_back(variant.factor(), std::move(v));
  }
  return out;
}

void QueryVariantsToProto(const QueryVariants& in, v1::MatchFingerprintRequest* out) {
  out->set_bit_weights(PackWeights(in.weights));
  for (const auto& [start, version] : in.phase) {
    v1::PhaseVariant* variant = out->add_phase_variants();
    variant->set_start_seconds(start);
    variant->mutable_items()->Assign(version.items.begin(), version.items.end());
    variant->set_bit_weights(PackWeights(version.weights));
  }
  for (const auto& [factor, version] : in.speed) {
    v1::SpeedVariant* variant = out->add_speed_variants();
    variant->set_factor(factor);
    variant->mutable_items()->Assign(version.items.begin(), version.items.end());
  }
}

QuerySpec QuerySpecFromProto(const v1::MatchOptions& in) {
  QuerySpec spec;
  spec.datasets.assign(in.datasets().begin(), in.datasets().end());
  spec.max_matches = in.max_matches();
  return spec;
}

}  // namespace trainspotter
