// gRPC handlers of trainspotter.v1.Catalog (see proto/trainspotter/v1/catalog.proto).
#ifndef TRAINSPOTTER_SERVICE_CATALOG_SERVICE_H_
#define TRAINSPOTTER_SERVICE_CATALOG_SERVICE_H_

#include "service/service_core.h"
#include "trainspotter/v1/catalog.grpc.pb.h"

namespace trainspotter {

class CatalogServiceImpl final : public v1::Catalog::Service {
 public:
  // `core` is not owned and must outlive the service.
  explicit CatalogServiceImpl(ServiceCore* core) : core_(core) {}

  grpc::Status ListDatasets(grpc::ServerContext* context, const v1::ListDatasetsRequest* request,
                            v1::ListDatasetsResponse* response) override;
  grpc::Status GetTrack(grpc::ServerContext* context, const v1::GetTrackRequest* request,
                        v1::Track* response) override;
  grpc::Status IngestTracks(grpc::ServerContext* context,
                            grpc::ServerReader<v1::IngestTracksRequest>* reader,
                            v1::IngestTracksResponse* response) override;
  grpc::Status DeleteTracks(grpc::ServerContext* context, const v1::DeleteTracksRequest* request,
                            v1::DeleteTracksResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;

 private:
  ServiceCore* core_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_CATALOG_SERVICE_H_
