// The one place where absl::Status and grpc::Status meet. abseil's status codes are gRPC's codes
// (both are google.rpc.Code), so the conversion keeps code and message unchanged.
#ifndef TRAINSPOTTER_SERVICE_GRPC_STATUS_H_
#define TRAINSPOTTER_SERVICE_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace trainspotter {

// Server side: the status a handler returns to its client.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Client side: a call's status as an absl::Status.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_GRPC_STATUS_H_
