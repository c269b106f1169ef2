// The hostile half of the malformed-request table: inputs an attacker or a buggy client would
// send (truncated bytes, dtype/size mismatches, huge and overflowing shapes, NaN/Inf and
// degenerate floats, negative and zero sizes, indices out of range and sizes that wrap around
// in 32 bits, a cyclic graph where a DAG is required, enormous M), each with the exact code the
// server must answer. service_test.cc runs them after its own rows against its suite server
// (--max_work=100000 --max_response_values=10000 --max_message_bytes=60000) and prints
// "hostile request table: N cases, N as expected".
//
// Each row mutates a good request: argmax, θ = [2, 3] float64, ε = 1, M = 10, seed 7.
#ifndef PERTURBD_TESTS_INTEGRATION_HOSTILE_REQUESTS_H_
#define PERTURBD_TESTS_INTEGRATION_HOSTILE_REQUESTS_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <string>
#include <vector>

#include "perturbd/v1/perturbd.pb.h"

namespace perturbd::testing {

struct BadRequestCase {
  std::string name;
  std::function<void(v1::SolveRequest&)> mutate;  // applied to the good request
  grpc::StatusCode code;
  std::string message;  // a substring of the error message
};

std::vector<BadRequestCase> HostileSolveRequestCases();

}  // namespace perturbd::testing

#endif  // PERTURBD_TESTS_INTEGRATION_HOSTILE_REQUESTS_H_
