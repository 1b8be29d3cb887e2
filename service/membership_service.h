// gRPC handlers of trainspotter.v1.Membership (see proto/trainspotter/v1/membership.proto).
#ifndef TRAINSPOTTER_SERVICE_MEMBERSHIP_SERVICE_H_
#define TRAINSPOTTER_SERVICE_MEMBERSHIP_SERVICE_H_

#include "service/service_core.h"
#include "trainspotter/v1/membership.grpc.pb.h"

namespace trainspotter {

class MembershipServiceImpl final : public v1::Membership::Service {
 public:
  // `core` is not owned and must outlive the service.
  explicit MembershipServiceImpl(ServiceCore* core) : core_(core) {}

  grpc::Status MatchAudio(grpc::ServerContext* context,
                          grpc::ServerReader<v1::MatchAudioRequest>* reader,
                          v1::MatchResponse* response) override;
  grpc::Status MatchFingerprint(grpc::ServerContext* context,
                                const v1::MatchFingerprintRequest* request,
                                v1::MatchResponse* response) override;
  grpc::Status MatchStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::MatchResponse, v1::MatchFingerprintRequest>* stream) override;

 private:
  ServiceCore* core_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_MEMBERSHIP_SERVICE_H_
