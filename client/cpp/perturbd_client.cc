#include "client/cpp/perturbd_client.h"

#include <bit>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace perturbd::client {
namespace {

int64_t ElementSize(v1::DType dtype) { return dtype == v1::FLOAT32 ? 4 : 8; }

template <typename T>
T LoadLE(const char* p) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U u;
  std::memcpy(&u, p, sizeof(u));
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 4) {
      u = __builtin_bswap32(u);
    } else {
      u = __builtin_bswap64(u);
    }
  }
  return std::bit_cast<T>(u);
}

template <typename T>
void StoreLE(T value, char* p) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U u = std::bit_cast<U>(value);
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 4) {
      u = __builtin_bswap32(u);
    } else {
      u = __builtin_bswap64(u);
    }
  }
  std::memcpy(p, &u, sizeof(u));
}

}  // namespace

v1::Tensor MakeTensor(absl::Span<const double> values, absl::Span<const int64_t> shape,
                      v1::DType dtype) {
  v1::Tensor tensor;
  tensor.set_dtype(dtype);
  tensor.mutable_shape()->Assign(shape.begin(), shape.end());
  std::string* data = tensor.mutable_data();
  data->resize(values.size() * static_cast<size_t>(ElementSize(dtype)));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == v1::FLOAT32) {
      StoreLE(static_cast<float>(values[i]), data->data() + 4 * i);
    } else {
      StoreLE(values[i], data->data() + 8 * i);
    }
  }
  return tensor;
}

v1::Tensor MakeTensor(const Array& array) {
  return MakeTensor(array.values, array.shape, array.dtype);
}

absl::StatusOr<Array> ReadTensor(const v1::Tensor& tensor) {
  Array array;
  if (tensor.dtype() == v1::DTYPE_UNSPECIFIED && tensor.shape_size() == 0 &&
      tensor.data().empty()) {
    return array;
  }
  if (tensor.dtype() != v1::FLOAT32 && tensor.dtype() != v1::FLOAT64) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor dtype ", static_cast<int>(tensor.dtype()), " is not a float dtype"));
  }
  array.dtype = tensor.dtype();
  int64_t count = 1;
  for (int64_t dim : tensor.shape()) {
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count)) {
      return absl::InvalidArgumentError("tensor shape is negative or overflows");
    }
    array.shape.push_back(dim);
  }
  const int64_t size = ElementSize(tensor.dtype());
  if (count > static_cast<int64_t>(tensor.data().size()) / size ||
      static_cast<int64_t>(tensor.data().size()) != count * size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor holds ", tensor.data().size(), " bytes for ", count, " elements"));
  }
  array.values.resize(static_cast<size_t>(count));
  const char* p = tensor.data().data();
  for (int64_t i = 0; i < count; ++i) {
    array.values[i] =
        tensor.dtype() == v1::FLOAT32 ? LoadLE<float>(p + 4 * i) : LoadLE<double>(p + 8 * i);
  }
  return array;
}

v1::Problem ArgmaxProblem() {
  v1::Problem problem;
  problem.mutable_argmax();
  return problem;
}

v1::Problem TopKProblem(uint32_t k) {
  v1::Problem problem;
  problem.mutable_top_k()->set_k(k);
  return problem;
}

v1::Problem ThresholdProblem() {
  v1::Problem problem;
  problem.mutable_threshold();
  return problem;
}

v1::Problem RankingProblem() {
  v1::Problem problem;
  problem.mutable_ranking();
  return problem;
}

v1::Problem GridShortestPathProblem(uint32_t rows, uint32_t cols, v1::Connectivity connectivity) {
  v1::Problem problem;
  v1::GridShortestPathProblem* grid = problem.mutable_grid_shortest_path();
  grid->set_rows(rows);
  grid->set_cols(cols);
  grid->set_connectivity(connectivity);
  return problem;
}

v1::Problem GraphShortestPathProblem(uint32_t num_nodes,
                                     absl::Span<const std::pair<uint32_t, uint32_t>> edges,
                                     uint32_t source, uint32_t target) {
  v1::Problem problem;
  v1::GraphShortestPathProblem* graph = problem.mutable_graph_shortest_path();
  graph->set_num_nodes(num_nodes);
  for (const auto& [from, to] : edges) {
    graph->add_edge_sources(from);
    graph->add_edge_targets(to);
  }
  graph->set_source(source);
  graph->set_target(target);
  return problem;
}

v1::Problem AssignmentProblem(uint32_t rows, uint32_t cols) {
  v1::Problem problem;
  problem.mutable_assignment()->set_rows(rows);
  problem.mutable_assignment()->set_cols(cols);
  return problem;
}

v1::Problem SpanningTreeProblem(uint32_t num_nodes,
                                absl::Span<const std::pair<uint32_t, uint32_t>> edges) {
  v1::Problem problem;
  v1::SpanningTreeProblem* tree = problem.mutable_spanning_tree();
  tree->set_num_nodes(num_nodes);
  for (const auto& [from, to] : edges) {
    tree->add_edge_sources(from);
    tree->add_edge_targets(to);
  }
  return problem;
}

v1::Problem KnapsackProblem(absl::Span<const int64_t> weights, int64_t capacity) {
  v1::Problem problem;
  problem.mutable_knapsack()->mutable_weights()->Add(weights.begin(), weights.end());
  problem.mutable_knapsack()->set_capacity(capacity);
  return problem;
}

v1::Noise MakeNoise(double epsilon, uint32_t num_samples, uint64_t seed) {
  v1::Noise noise;
  noise.set_epsilon(epsilon);
  noise.set_num_samples(num_samples);
  noise.set_seed(seed);
  return noise;
}

absl::StatusOr<SolveResult> ReadSolveResponse(const v1::SolveResponse& response) {
  SolveResult result;
  result.request_id = response.request_id();
  struct Field {
    const v1::Tensor& tensor;
    Array& array;
  };
  for (const Field& field :
       {Field{response.solution(), result.solution}, Field{response.value(), result.value},
        Field{response.jacobian(), result.jacobian}, Field{response.loss(), result.loss},
        Field{response.loss_grad(), result.loss_grad},
        Field{response.solution_stderr(), result.solution_stderr},
        Field{response.samples(), result.samples}}) {
    absl::StatusOr<Array> array = ReadTensor(field.tensor);
    if (!array.ok()) return array.status();
    field.array = *std::move(array);
  }
  result.stats = response.stats();
  return result;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::unique_ptr<PerturbdClient> PerturbdClient::Connect(const std::string& address,
                                                        ClientOptions options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  return std::make_unique<PerturbdClient>(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args), options);
}

PerturbdClient::PerturbdClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : channel_(std::move(channel)),
      options_(options),
      stub_(v1::PerturbedOptimizer::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

void PerturbdClient::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
}

absl::StatusOr<v1::SolveResponse> PerturbdClient::Solve(const v1::SolveRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SolveResponse response;
  grpc::Status status = stub_->Solve(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::BackwardResponse> PerturbdClient::Backward(
    const v1::BackwardRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::BackwardResponse response;
  grpc::Status status = stub_->Backward(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ListSolversResponse> PerturbdClient::ListSolvers() const {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListSolversResponse response;
  grpc::Status status = stub_->ListSolvers(&context, v1::ListSolversRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> PerturbdClient::Health(
    const std::string& service) const {
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

absl::StatusOr<SolveResult> PerturbdClient::Solve(const v1::Problem& problem, const Array& theta,
                                                  const v1::Noise& noise,
                                                  const SolveOutputs& outputs,
                                                  const Array& targets) const {
  v1::SolveRequest request;
  *request.mutable_problem() = problem;
  *request.mutable_theta() = MakeTensor(theta);
  *request.mutable_noise() = noise;
  if (!targets.empty()) *request.mutable_targets() = MakeTensor(targets);
  request.mutable_outputs()->set_jacobian(outputs.jacobian);
  request.mutable_outputs()->set_samples(outputs.samples);
  request.mutable_outputs()->set_stderr(outputs.solution_stderr);
  absl::StatusOr<v1::SolveResponse> response = Solve(request);
  if (!response.ok()) return response.status();
  return ReadSolveResponse(*response);
}

absl::StatusOr<Array> PerturbdClient::Backward(const v1::Problem& problem, const Array& theta,
                                               const v1::Noise& noise,
                                               const Array& cotangent) const {
  v1::BackwardRequest request;
  *request.mutable_problem() = problem;
  *request.mutable_theta() = MakeTensor(theta);
  *request.mutable_noise() = noise;
  *request.mutable_cotangent() = MakeTensor(cotangent);
  absl::StatusOr<v1::BackwardResponse> response = Backward(request);
  if (!response.ok()) return response.status();
  return ReadTensor(response->grad_theta());
}

}  // namespace perturbd::client
