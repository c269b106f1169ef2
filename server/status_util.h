// The one place where absl::Status meets grpc::Status.
//
// absl::StatusCode and grpc::StatusCode share their numeric values (both follow
// google.rpc.Code), so the mapping is the identity on codes 0..16 and UNKNOWN beyond; the
// message is kept verbatim. Payloads (such as request_translator.h's reject reason) stay on the
// server.
#ifndef PERTURBD_SERVER_STATUS_UTIL_H_
#define PERTURBD_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace perturbd {

grpc::Status ToGrpcStatus(const absl::Status& status);

// "OK", "INVALID_ARGUMENT", ...: the gRPC code name, as in metrics labels.
absl::string_view GrpcCodeName(grpc::StatusCode code);

}  // namespace perturbd

#endif  // PERTURBD_SERVER_STATUS_UTIL_H_
