// A small typed C++ client for perturbd (perturbd.v1.PerturbedOptimizer + grpc.health.v1).
//
//   auto client = perturbd::client::PerturbdClient::Connect("localhost:50051");
//   perturbd::client::Array theta = {.shape = {2, 3}, .values = {1, 2, 3, 4, 5, 6}};
//   ASSIGN_OR_RETURN(perturbd::client::SolveResult r,
//                    client->Solve(perturbd::client::TopKProblem(2), theta,
//                                  perturbd::client::MakeNoise(/*epsilon=*/0.5,
//                                                              /*num_samples=*/100,
//                                                              /*seed=*/7)));
//   // r.solution.shape == {2, 3}; r.value.shape == {2}
//
// Tensors travel as raw little-endian bytes (DESIGN §5); `Array` is their float64 image here,
// with the wire dtype it was (or will be) sent in. θ of shape [d] is one instance, and every
// output then drops its batch axis.
//
// Every call carries a deadline of `ClientOptions::timeout` from the moment it is made.
// gRPC errors come back as absl::Status with the same code and message.
//
// Thread safety: a `PerturbdClient` may be used from many threads at once (gRPC stubs are
// thread-safe). The free functions are pure.
#ifndef PERTURBD_CLIENT_CPP_PERTURBD_CLIENT_H_
#define PERTURBD_CLIENT_CPP_PERTURBD_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "perturbd/v1/perturbd.grpc.pb.h"

namespace perturbd::client {

// A dense row-major array: the float64 image of a wire tensor.
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> values;  // prod(shape) values; one for a scalar (shape {})
  v1::DType dtype = v1::FLOAT64;

  // True for an output the server did not send.
  bool empty() const { return values.empty() && shape.empty(); }
};

// Encodes values (length prod(shape)) as a wire tensor (float32 rounds to nearest).
v1::Tensor MakeTensor(absl::Span<const double> values, absl::Span<const int64_t> shape,
                      v1::DType dtype = v1::FLOAT64);
v1::Tensor MakeTensor(const Array& array);
// Decodes a wire tensor. An unset tensor (no dtype, shape or data) gives an empty Array.
absl::StatusOr<Array> ReadTensor(const v1::Tensor& tensor);

// Problem builders (sense: SENSE_UNSPECIFIED = the oracle's natural sense).
v1::Problem ArgmaxProblem();
v1::Problem TopKProblem(uint32_t k);
v1::Problem ThresholdProblem();
v1::Problem RankingProblem();
v1::Problem GridShortestPathProblem(uint32_t rows, uint32_t cols,
                                    v1::Connectivity connectivity = v1::EIGHT);
v1::Problem GraphShortestPathProblem(uint32_t num_nodes,
                                     absl::Span<const std::pair<uint32_t, uint32_t>> edges,
                                     uint32_t source, uint32_t target);
v1::Problem AssignmentProblem(uint32_t rows, uint32_t cols);
v1::Problem SpanningTreeProblem(uint32_t num_nodes,
                                absl::Span<const std::pair<uint32_t, uint32_t>> edges);
v1::Problem KnapsackProblem(absl::Span<const int64_t> weights, int64_t capacity);
// linear_program: fill `problem.mutable_linear_program()` directly (DESIGN §5).

// NORMAL, ADDITIVE, default variance reduction; set the other fields on the result.
v1::Noise MakeNoise(double epsilon, uint32_t num_samples, uint64_t seed);

struct SolveOutputs {
  bool jacobian = false;
  bool samples = false;
  bool solution_stderr = false;
};

// A decoded SolveResponse; outputs that were not asked for are empty.
struct SolveResult {
  std::string request_id;
  Array solution;         // [B, d]
  Array value;            // [B]
  Array jacobian;         // [B, d, d]
  Array loss;             // [B]
  Array loss_grad;        // [B, d]
  Array solution_stderr;  // [B, d]
  Array samples;          // [B, M, d]
  v1::SolveStats stats;
};
absl::StatusOr<SolveResult> ReadSolveResponse(const v1::SolveResponse& response);

struct ClientOptions {
  // Deadline of each call, from when it is made.
  absl::Duration timeout = absl::Seconds(60);
  // Max message size, both directions (the server's default limit).
  int max_message_bytes = 256 << 20;
};

absl::Status FromGrpcStatus(const grpc::Status& status);

class PerturbdClient {
 public:
  // An insecure channel to host:port.
  static std::unique_ptr<PerturbdClient> Connect(const std::string& address,
                                                 ClientOptions options = {});
  explicit PerturbdClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options = {});

  // Raw calls.
  absl::StatusOr<v1::SolveResponse> Solve(const v1::SolveRequest& request) const;
  absl::StatusOr<v1::BackwardResponse> Backward(const v1::BackwardRequest& request) const;
  absl::StatusOr<v1::ListSolversResponse> ListSolvers() const;
  // The health of `service` ("" = the server's liveness, "perturbd.v1.PerturbedOptimizer" =
  // its readiness).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> Health(
      const std::string& service = "") const;

  // Typed calls. `targets`, when not empty, asks for the Fenchel–Young loss.
  absl::StatusOr<SolveResult> Solve(const v1::Problem& problem, const Array& theta,
                                    const v1::Noise& noise, const SolveOutputs& outputs = {},
                                    const Array& targets = {}) const;
  // Jᵀg for the cotangent g (θ's shape): grad_theta, θ's shape.
  absl::StatusOr<Array> Backward(const v1::Problem& problem, const Array& theta,
                                 const v1::Noise& noise, const Array& cotangent) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  void SetDeadline(grpc::ClientContext& context) const;

  std::shared_ptr<grpc::Channel> channel_;
  ClientOptions options_;
  std::unique_ptr<v1::PerturbedOptimizer::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace perturbd::client

#endif  // PERTURBD_CLIENT_CPP_PERTURBD_CLIENT_H_
