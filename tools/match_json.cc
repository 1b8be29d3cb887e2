#include "tools/match_json.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace trainspotter {
namespace {

// Offsets come from item indices (~0.124 s steps) and print as 61.29795918367347 otherwise;
// a millisecond is far below the fingerprint's resolution.
double RoundToMillis(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

}  // namespace

nlohmann::ordered_json TrackMetadataToJson(const TrackMetadata& metadata) {
  std::vector<std::pair<std::string, std::string>> fields = metadata.extra;
  if (!metadata.album.empty()) fields.emplace_back("album", metadata.album);
  if (!metadata.source_url.empty()) fields.emplace_back("source_url", metadata.source_url);
  if (!metadata.license.empty()) fields.emplace_back("license", metadata.license);
  // Stable sort: on a duplicate key the first (the manifest's own column) wins below.
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [key, value] : fields) {
    if (!out.contains(key)) out[key] = value;
  }
  return out;
}

nlohmann::ordered_json CatalogMatchToJson(const CatalogMatch& match) {
  const TrackInfo& track = match.track;
  const SegmentMatch& segment = match.segment;
  nlohmann::ordered_json out;
  out["dataset"] = track.dataset;
  out["version"] = track.version;
  out["track_id"] = track.track_id;
  out["title"] = track.metadata.title;
  out["artist"] = track.metadata.artist;
  out["metadata"] = TrackMetadataToJson(track.metadata);
  out["confidence"] = segment.confidence;
  out["false_match_probability"] = segment.false_match_probability;
  out["query_start"] = RoundToMillis(segment.query_start);
  out["query_end"] = RoundToMillis(segment.query_end);
  out["ref_start"] = RoundToMillis(segment.ref_start);
  out["ref_end"] = RoundToMillis(segment.ref_end);
  // Beyond the documented keys: whether this match passes the decision (always true unless
  // near misses were asked for), its bit error rate and the query speed that matched; a near
  // miss that the look-alike screen demoted (matcher/decision.h) says so.
  out["member"] = segment.member;
  if (segment.sounds_alike) out["sounds_alike"] = true;
  out["bit_error_rate"] = std::round(segment.bit_error_rate * 1000) / 1000;
  out["speed"] = segment.speed;
  return out;
}

nlohmann::ordered_json MatchResultToJson(const std::string& file, double duration_seconds,
                                         const CatalogMatchResult& result) {
  nlohmann::ordered_json out;
  out["file"] = file;
  out["duration"] = RoundToMillis(duration_seconds);
  out["member"] = result.member;
  out["error"] = nullptr;
  out["matches"] = nlohmann::ordered_json::array();
  for (const CatalogMatch& match : result.matches)
    out["matches"].push_back(CatalogMatchToJson(match));
  return out;
}

nlohmann::ordered_json MatchErrorToJson(const std::string& file, const absl::Status& error) {
  nlohmann::ordered_json out;
  out["file"] = file;
  out["duration"] = nullptr;
  out["member"] = false;  // the contract: unreadable input is "member": false
  out["error"] = absl::StrCat(absl::StatusCodeToString(error.code()), ": ", error.message());
  out["matches"] = nlohmann::ordered_json::array();
  return out;
}

}  // namespace trainspotter
