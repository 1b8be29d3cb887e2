// Conversions between the API's messages (proto/trainspotter/v1) and the domain types of
// matcher/ and common/. Pure functions, no gRPC. Used by the handlers and by the client.
#ifndef TRAINSPOTTER_SERVICE_CONVERT_H_
#define TRAINSPOTTER_SERVICE_CONVERT_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fingerprint_types.h"
#include "matcher/catalog.h"
#include "service/query_engine.h"
#include "trainspotter/v1/catalog.pb.h"
#include "trainspotter/v1/common.pb.h"
#include "trainspotter/v1/membership.pb.h"

namespace trainspotter {

void TrackMetadataToProto(const TrackMetadata& in, v1::TrackMetadata* out);
TrackMetadata TrackMetadataFromProto(const v1::TrackMetadata& in);

void TrackInfoToProto(const TrackInfo& in, v1::Track* out);
void DatasetInfoToProto(const DatasetInfo& in, v1::Dataset* out);

// Match <-> CatalogMatch. The proto's metadata map holds extra columns plus album, source_url
// and license; FromProto splits them back (extra sorted by key: a map has no order).
void CatalogMatchToProto(const CatalogMatch& in, v1::Match* out);
CatalogMatch CatalogMatchFromProto(const v1::Match& in);

void QueryOutcomeToProto(const QueryOutcome& in, v1::MatchResponse* out);
QueryOutcome QueryOutcomeFromProto(const v1::MatchResponse& in);

void FingerprintToProto(const Fingerprint& in, v1::RawFingerprint* out);
// Raw items as they are; algorithm 0 means the default.
Fingerprint FingerprintFromProto(const v1::RawFingerprint& in);

// The query's fingerprint: raw items, or the compressed form decoded (INVALID_ARGUMENT if
// malformed, or if neither is set).
absl::StatusOr<Fingerprint> QueryFingerprintFromProto(const v1::MatchFingerprintRequest& in);
// speed_variants and phase_variants as they are (QueryEngine::MatchFingerprint validates them).
QueryVariants QueryVariantsFromProto(const v1::MatchFingerprintRequest& in);
// The inverse, for clients.
void QueryVariantsToProto(const QueryVariants& in, v1::MatchFingerprintRequest* out);

// datasets and max_matches (deadline and cancellation are the caller's).
QuerySpec QuerySpecFromProto(const v1::MatchOptions& in);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_CONVERT_H_
