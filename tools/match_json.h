// The JSON that `trainspotter query --json` and `trainspotter scan` print for one input: one object
// per file, written by these functions only, so the two commands cannot drift apart.
//
//   {"file": "clip.mp3", "duration": 10.0, "member": true, "error": null,
//    "matches": [{"dataset": "fma", "version": "1", "track_id": "000123", "title": "...",
//                 "artist": "...", "metadata": {...}, "confidence": 0.9999,
//                 "false_match_probability": 1e-9, "query_start": 0.0, "query_end": 10.0,
//                 "ref_start": 61.3, "ref_end": 71.3}]}
//
// Keys appear in this order; consumers must tolerate keys added later. Times are seconds rounded
// to the millisecond. "metadata" holds the track's extra manifest columns plus "album",
// "source_url" and "license" when non-empty, keys sorted (so the output is the same whether the
// match came from a local catalogue or over gRPC, where metadata travels as a map).
// An input that could not be processed has "error": "<CODE>: <message>", "duration": null,
// "member": false and "matches": [].
#ifndef TRAINSPOTTER_TOOLS_MATCH_JSON_H_
#define TRAINSPOTTER_TOOLS_MATCH_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "matcher/catalog.h"
#include "nlohmann/json.hpp"

namespace trainspotter {

// The "metadata" object of one match (see above).
nlohmann::ordered_json TrackMetadataToJson(const TrackMetadata& metadata);

// One element of "matches".
nlohmann::ordered_json CatalogMatchToJson(const CatalogMatch& match);

// The object for an input that was matched (member or not). `duration_seconds` is the length of
// the decoded query audio.
nlohmann::ordered_json MatchResultToJson(const std::string& file, double duration_seconds,
                                         const CatalogMatchResult& result);

// The object for an input that could not be processed; `error` must not be OK.
nlohmann::ordered_json MatchErrorToJson(const std::string& file, const absl::Status& error);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_TOOLS_MATCH_JSON_H_
