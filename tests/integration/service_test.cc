// The real perturbd binary on loopback: every RPC and oracle, both dtypes, batched and single
// instance, results bit-identical to the engine run in-process on the same seed; SolveStream
// ordering and failure; a table of malformed requests.
#include <grpcpp/grpcpp.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/perturbd_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/oracles/oracle_spec.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"
#include "tests/integration/hostile_requests.h"
#include "tests/integration/server_process.h"

namespace perturbd {
namespace {

using ::perturbd::client::Array;
using ::perturbd::client::PerturbdClient;
using ::perturbd::client::SolveResult;
using ::perturbd::testing::ServerProcess;
using ::testing::HasSubstr;

// One server for the whole suite (each test binary run gets its own).
class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Small limits, so that the RESOURCE_EXHAUSTED rows of the table are cheap to build.
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start({"--threads=2", "--max_work=100000", "--max_response_values=10000",
                              "--max_message_bytes=60000", "--drain_seconds=0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
    client_ = PerturbdClient::Connect(server_->address()).release();
  }
  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    delete server_;
    server_ = nullptr;
  }

  static ServerProcess* server_;
  static PerturbdClient* client_;
};
ServerProcess* ServiceTest::server_ = nullptr;
PerturbdClient* ServiceTest::client_ = nullptr;

// --- The oracles under test, each with its wire problem and its in-process spec. ---

struct OracleCase {
  std::string name;
  v1::Problem problem;
  OracleSpec spec;
  int64_t d;
  bool positive_costs;  // shortest paths: costs in [1, 3], multiplicative noise
};

std::vector<OracleCase> OracleCases() {
  std::vector<OracleCase> cases;
  cases.push_back({"argmax", client::ArgmaxProblem(), ArgmaxSpec{}, 5, false});
  cases.push_back({"top_k", client::TopKProblem(2), TopKSpec{.k = 2}, 6, false});
  cases.push_back({"threshold", client::ThresholdProblem(), ThresholdSpec{}, 4, false});
  cases.push_back({"ranking", client::RankingProblem(), RankingSpec{}, 5, false});
  cases.push_back({"grid_shortest_path", client::GridShortestPathProblem(3, 4, v1::EIGHT),
                   GridShortestPathSpec{.rows = 3, .cols = 4, .connectivity = Connectivity::kEight},
                   12, true});
  // A DAG 0→1, 0→2, 1→2, 1→3, 2→3 from 0 to 3.
  const std::vector<std::pair<uint32_t, uint32_t>> edges = {{0, 1}, {0, 2}, {1, 2}, {1, 3}, {2, 3}};
  cases.push_back({"graph_shortest_path", client::GraphShortestPathProblem(4, edges, 0, 3),
                   GraphShortestPathSpec{.num_nodes = 4,
                                         .edge_sources = {0, 0, 1, 1, 2},
                                         .edge_targets = {1, 2, 2, 3, 3},
                                         .source = 0,
                                         .target = 3},
                   5, true});
  cases.push_back({"assignment", client::AssignmentProblem(2, 3),
                   AssignmentSpec{.rows = 2, .cols = 3}, 6, false});
  // A 4-cycle with one chord, undirected.
  const std::vector<std::pair<uint32_t, uint32_t>> tree_edges = {
      {0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 2}};
  cases.push_back(
      {"spanning_tree", client::SpanningTreeProblem(4, tree_edges),
       SpanningTreeSpec{
           .num_nodes = 4, .edge_sources = {0, 1, 2, 3, 0}, .edge_targets = {1, 2, 3, 0, 2}},
       5, false});
  const std::vector<int64_t> weights = {2, 3, 4, 5};
  cases.push_back({"knapsack", client::KnapsackProblem(weights, 7),
                   KnapsackSpec{.weights = weights, .capacity = 7}, 4, false});
  // max ⟨θ, y⟩ over y ∈ [0, 1]^3 with y0 + y1 + y2 ≤ 1 and y2 integer.
  v1::Problem lp;
  v1::LinearProgramProblem* program = lp.mutable_linear_program();
  program->set_num_variables(3);
  for (uint32_t j = 0; j < 3; ++j) {
    program->add_row_index(0);
    program->add_column_index(j);
    program->add_coefficient(1.0);
    program->add_variable_lower(0.0);
    program->add_variable_upper(1.0);
    program->add_integer(j == 2);
  }
  program->add_row_lower(-std::numeric_limits<double>::infinity());
  program->add_row_upper(1.0);
  cases.push_back({"linear_program", lp,
                   LinearProgramSpec{.num_variables = 3,
                                     .row_index = {0, 0, 0},
                                     .column_index = {0, 1, 2},
                                     .coefficient = {1, 1, 1},
                                     .row_lower = {-std::numeric_limits<double>::infinity()},
                                     .row_upper = {1.0},
                                     .variable_lower = {0, 0, 0},
                                     .variable_upper = {1, 1, 1},
                                     .integer = {false, false, true}},
                   3, false});
  return cases;
}

double RoundTo(double x, v1::DType dtype) {
  return dtype == v1::FLOAT32 ? static_cast<double>(static_cast<float>(x)) : x;
}

// Deterministic θ (and targets / cotangents) rounded to the wire dtype.
std::vector<double> MakeValues(int64_t n, double phase, bool positive, v1::DType dtype) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::sin(0.7 * static_cast<double>(i) + phase);
    v[i] = RoundTo(positive ? 2.0 + s : 1.5 * s, dtype);
  }
  return v;
}

// The wire noise the tests send and its engine twin.
v1::Noise TestNoise(bool multiplicative, uint64_t seed) {
  v1::Noise noise = client::MakeNoise(/*epsilon=*/multiplicative ? 0.3 : 0.7,
                                      /*num_samples=*/16, seed);
  if (multiplicative) noise.set_perturbation(v1::MULTIPLICATIVE);
  return noise;
}

NoiseOptions EngineNoise(const v1::Noise& wire) {
  NoiseOptions noise;
  noise.distribution =
      wire.distribution() == v1::GUMBEL ? NoiseDistribution::kGumbel : NoiseDistribution::kNormal;
  noise.epsilon = wire.epsilon();
  noise.num_samples = wire.num_samples();
  noise.seed = wire.seed();
  noise.instance_seeds.assign(wire.instance_seeds().begin(), wire.instance_seeds().end());
  noise.perturbation = wire.perturbation() == v1::MULTIPLICATIVE ? Perturbation::kMultiplicative
                                                                 : Perturbation::kAdditive;
  noise.antithetic = wire.antithetic();
  return noise;
}

void ExpectBitIdentical(const Array& got, const std::vector<double>& expected,
                        const std::vector<int64_t>& shape, v1::DType dtype,
                        const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.shape, shape);
  EXPECT_EQ(got.dtype, dtype);
  ASSERT_EQ(got.values.size(), expected.size());
  int mismatches = 0;
  for (size_t i = 0; i < expected.size() && mismatches < 5; ++i) {
    const double want = RoundTo(expected[i], dtype);
    if (std::bit_cast<uint64_t>(got.values[i]) != std::bit_cast<uint64_t>(want)) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got.values[i] << ", want " << want;
      ++mismatches;
    }
  }
}

struct ParityParam {
  size_t oracle;
  v1::DType dtype;
  bool batched;
};

void PrintTo(const ParityParam& p, std::ostream* os) {
  *os << OracleCases()[p.oracle].name << (p.dtype == v1::FLOAT32 ? "/float32" : "/float64")
      << (p.batched ? "/batched" : "/single");
}

std::string ParamName(const ::testing::TestParamInfo<ParityParam>& info) {
  return absl::StrCat(OracleCases()[info.param.oracle].name, "_",
                      info.param.dtype == v1::FLOAT32 ? "f32" : "f64", "_",
                      info.param.batched ? "batched" : "single");
}

class ParityTest : public ServiceTest, public ::testing::WithParamInterface<ParityParam> {};

TEST_P(ParityTest, SolveAndBackwardMatchTheEngineBitForBit) {
  const OracleCase c = OracleCases()[GetParam().oracle];
  const v1::DType dtype = GetParam().dtype;
  const bool batched = GetParam().batched;
  const int64_t batch = batched ? 3 : 1;
  const int64_t d = c.d;
  const std::vector<int64_t> shape =
      batched ? std::vector<int64_t>{batch, d} : std::vector<int64_t>{d};
  auto with_batch = [&](std::vector<int64_t> inner) {
    if (batched) inner.insert(inner.begin(), batch);
    return inner;
  };

  const Array theta{shape, MakeValues(batch * d, 0.3, c.positive_costs, dtype), dtype};
  const Array targets{shape, MakeValues(batch * d, 1.1, false, dtype), dtype};
  const Array cotangent{shape, MakeValues(batch * d, 2.9, false, dtype), dtype};
  const v1::Noise noise = TestNoise(c.positive_costs, /*seed=*/42 + GetParam().oracle);
  const uint32_t m = noise.num_samples();

  // The same oracle in process (an oracle left out of this build is skipped).
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = MakeOracle(c.spec, d, std::nullopt);
  if (oracle.status().code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << c.name << " is not built in: " << oracle.status();
  }
  ASSERT_TRUE(oracle.ok()) << oracle.status();

  // Over the wire.
  absl::StatusOr<SolveResult> got =
      client_->Solve(c.problem, theta, noise,
                     {.jacobian = true, .samples = true, .solution_stderr = true}, targets);
  ASSERT_TRUE(got.ok()) << got.status();
  absl::StatusOr<Array> got_grad = client_->Backward(c.problem, theta, noise, cotangent);
  ASSERT_TRUE(got_grad.ok()) << got_grad.status();

  // In process.
  Executor executor(2);
  PerturbedRequest request;
  request.oracle = oracle->get();
  request.batch = batch;
  request.theta = theta.values;
  request.dtype = dtype == v1::FLOAT32 ? DType::kFloat32 : DType::kFloat64;
  request.noise = EngineNoise(noise);
  request.jacobian = true;
  request.samples = true;
  request.solution_stderr = true;
  request.targets = targets.values;
  absl::StatusOr<PerturbedResult> want = RunPerturbed(executor, request);
  ASSERT_TRUE(want.ok()) << want.status();
  PerturbedRequest backward = request;
  backward.jacobian = backward.samples = backward.solution_stderr = false;
  backward.targets = {};
  backward.cotangent = cotangent.values;
  absl::StatusOr<PerturbedResult> want_grad = RunPerturbed(executor, backward);
  ASSERT_TRUE(want_grad.ok()) << want_grad.status();

  ExpectBitIdentical(got->solution, want->solution, with_batch({d}), dtype, "solution");
  ExpectBitIdentical(got->value, want->value, with_batch({}), dtype, "value");
  ExpectBitIdentical(got->jacobian, want->jacobian, with_batch({d, d}), dtype, "jacobian");
  ExpectBitIdentical(got->loss, want->loss, with_batch({}), dtype, "loss");
  ExpectBitIdentical(got->loss_grad, want->loss_grad, with_batch({d}), dtype, "loss_grad");
  ExpectBitIdentical(got->solution_stderr, want->solution_stderr, with_batch({d}), dtype,
                     "solution_stderr");
  ExpectBitIdentical(got->samples, want->samples, with_batch({m, d}), dtype, "samples");
  ExpectBitIdentical(*got_grad, want_grad->grad_theta, shape, dtype, "grad_theta");

  EXPECT_EQ(got->stats.backend(), "cpu");
  EXPECT_EQ(got->stats.solves(), want->solves);
  EXPECT_EQ(got->stats.clamped_costs(), want->clamped_costs);
  EXPECT_GE(got->stats.threads(), 1u);
}

std::vector<ParityParam> AllParityParams() {
  std::vector<ParityParam> params;
  for (size_t o = 0; o < OracleCases().size(); ++o) {
    for (v1::DType dtype : {v1::FLOAT32, v1::FLOAT64}) {
      for (bool batched : {true, false}) params.push_back({o, dtype, batched});
    }
  }
  return params;
}

INSTANTIATE_TEST_SUITE_P(AllOracles, ParityTest, ::testing::ValuesIn(AllParityParams()), ParamName);

// --- Requests built by hand. ---

v1::SolveRequest GoodRequest() {
  v1::SolveRequest request;
  request.set_request_id("good");
  *request.mutable_problem() = client::ArgmaxProblem();
  *request.mutable_theta() = client::MakeTensor({0.5, 1.0, -0.2, 0.1, 0.3, 0.2}, {2, 3});
  *request.mutable_noise() = client::MakeNoise(1.0, 10, 7);
  return request;
}

v1::BackwardRequest GoodBackward() {
  v1::BackwardRequest request;
  request.set_request_id("good-backward");
  *request.mutable_problem() = client::ArgmaxProblem();
  *request.mutable_theta() = client::MakeTensor({0.5, 1.0, -0.2, 0.1, 0.3, 0.2}, {2, 3});
  *request.mutable_noise() = client::MakeNoise(1.0, 10, 7);
  *request.mutable_cotangent() = client::MakeTensor({1, 0, 0, 0, 1, 0}, {2, 3});
  return request;
}

TEST_F(ServiceTest, SolveEchoesRequestIdAndAcceptsTargetsInTheOtherDtype) {
  v1::SolveRequest request = GoodRequest();
  *request.mutable_targets() = client::MakeTensor({0, 1, 0, 0, 1, 0}, {2, 3}, v1::FLOAT32);
  absl::StatusOr<v1::SolveResponse> response = client_->Solve(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->request_id(), "good");
  EXPECT_EQ(response->loss().dtype(), v1::FLOAT64);  // θ's dtype
  EXPECT_THAT(response->loss().shape(), ::testing::ElementsAre(2));
  EXPECT_FALSE(response->has_jacobian());
  EXPECT_FALSE(response->has_samples());
}

TEST_F(ServiceTest, ListSolversDescribesOraclesAndLimits) {
  absl::StatusOr<v1::ListSolversResponse> list = client_->ListSolvers();
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> names;
  for (const v1::SolverInfo& info : list->solvers()) {
    names.push_back(info.name());
    EXPECT_THAT(info.backends(), ::testing::ElementsAre(v1::CPU)) << info.name();
    EXPECT_FALSE(info.senses().empty()) << info.name();
  }
  EXPECT_THAT(
      names, ::testing::ElementsAre("argmax", "top_k", "threshold", "ranking", "grid_shortest_path",
                                    "graph_shortest_path", "assignment", "spanning_tree",
                                    "knapsack", "linear_program"));
  const v1::SolverInfo& grid = list->solvers(4);
  EXPECT_EQ(grid.natural_sense(), v1::MINIMIZE);
  EXPECT_THAT(grid.senses(), ::testing::ElementsAre(v1::MINIMIZE));
  ASSERT_EQ(grid.parameters_size(), 3);
  EXPECT_EQ(grid.parameters(0).name(), "rows");
  EXPECT_EQ(list->solvers(1).parameters(0).name(), "k");
  EXPECT_EQ(list->limits().max_work(), 100000u);
  EXPECT_EQ(list->limits().max_response_values(), 10000u);
  EXPECT_EQ(list->limits().max_message_bytes(), 60000u);
  EXPECT_EQ(list->limits().max_inflight(), 256u);
  EXPECT_EQ(list->threads(), 2u);
  EXPECT_TRUE(list->devices().empty());
  EXPECT_FALSE(list->version().empty());
}

// --- SolveStream. ---

std::unique_ptr<grpc::ClientReaderWriter<v1::SolveRequest, v1::SolveResponse>> OpenStream(
    v1::PerturbedOptimizer::Stub& stub, grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return stub.SolveStream(&context);
}

TEST_F(ServiceTest, SolveStreamAnswersInRequestOrder) {
  auto stub = v1::PerturbedOptimizer::NewStub(client_->channel());
  constexpr int kMessages = 8;
  std::vector<v1::SolveRequest> requests;
  for (int i = 0; i < kMessages; ++i) {
    v1::SolveRequest request = GoodRequest();
    request.set_request_id(absl::StrCat("r", i));
    request.mutable_noise()->set_seed(100 + i);
    // Alternate sizes so that a reordering server would show it.
    request.mutable_noise()->set_num_samples(i % 2 == 0 ? 2000 : 3);
    requests.push_back(request);
  }
  grpc::ClientContext context;
  auto stream = OpenStream(*stub, context);
  for (const v1::SolveRequest& request : requests) ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<v1::SolveResponse> responses;
  v1::SolveResponse response;
  while (responses.size() < kMessages + 1 && stream->Read(&response)) responses.push_back(response);
  const grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(responses[i].request_id(), absl::StrCat("r", i));
    // Same answer as the unary call.
    absl::StatusOr<v1::SolveResponse> unary = client_->Solve(requests[i]);
    ASSERT_TRUE(unary.ok()) << unary.status();
    EXPECT_EQ(responses[i].solution().data(), unary->solution().data()) << i;
    EXPECT_EQ(responses[i].value().data(), unary->value().data()) << i;
  }
}

TEST_F(ServiceTest, SolveStreamBadMessageEndsOnlyThatStream) {
  auto stub = v1::PerturbedOptimizer::NewStub(client_->channel());
  {
    grpc::ClientContext context;
    auto stream = OpenStream(*stub, context);
    v1::SolveRequest bad = GoodRequest();
    bad.set_request_id("bad");
    bad.clear_noise();
    v1::SolveRequest first = GoodRequest(), second = GoodRequest(), after = GoodRequest();
    first.set_request_id("first");
    second.set_request_id("second");
    after.set_request_id("after");
    ASSERT_TRUE(stream->Write(first));
    ASSERT_TRUE(stream->Write(second));
    stream->Write(bad);
    stream->Write(after);  // may fail: the server may have finished the stream already
    stream->WritesDone();
    std::vector<std::string> ids;
    v1::SolveResponse response;
    while (ids.size() < 4 && stream->Read(&response)) ids.push_back(response.request_id());
    const grpc::Status status = stream->Finish();
    EXPECT_THAT(ids, ::testing::ElementsAre("first", "second"));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("noise"));
  }
  // A new stream, and unary calls, still work.
  grpc::ClientContext context;
  auto stream = OpenStream(*stub, context);
  ASSERT_TRUE(stream->Write(GoodRequest()));
  stream->WritesDone();
  v1::SolveResponse response;
  EXPECT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.request_id(), "good");
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(client_->Solve(GoodRequest()).ok());
}

TEST_F(ServiceTest, SolveStreamWithNoMessagesFinishesOk) {
  auto stub = v1::PerturbedOptimizer::NewStub(client_->channel());
  grpc::ClientContext context;
  auto stream = OpenStream(*stub, context);
  ASSERT_TRUE(stream->WritesDone());
  v1::SolveResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

// --- Malformed requests: the exact code, the field named, and the server keeps serving. ---

// name, mutate (applied to GoodRequest()), code, message (a substring of the error message).
using ::perturbd::testing::BadRequestCase;

void SetTheta(v1::SolveRequest& r, std::vector<double> values, std::vector<int64_t> shape,
              v1::DType dtype = v1::FLOAT64) {
  *r.mutable_theta() = client::MakeTensor(values, shape, dtype);
}

// A knapsack whose DP table (3 items × 2^41 capacity) is over the oracle's limit.
v1::Problem HugeKnapsack() {
  return client::KnapsackProblem({1, int64_t{1} << 40, (int64_t{1} << 40) + 1}, int64_t{1} << 41);
}

std::vector<BadRequestCase> BadRequestCases() {
  using C = grpc::StatusCode;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<BadRequestCase> cases = {
      {"no_problem", [](auto& r) { r.clear_problem(); }, C::INVALID_ARGUMENT, "problem.kind"},
      {"problem_without_kind",
       [](auto& r) {
         r.clear_problem();
         r.mutable_problem()->set_sense(v1::MAXIMIZE);
       },
       C::INVALID_ARGUMENT, "problem.kind"},
      {"no_noise", [](auto& r) { r.clear_noise(); }, C::INVALID_ARGUMENT, "noise: missing"},
      {"no_theta", [](auto& r) { r.clear_theta(); }, C::INVALID_ARGUMENT, "theta"},
      {"dtype_unspecified", [](auto& r) { r.mutable_theta()->set_dtype(v1::DTYPE_UNSPECIFIED); },
       C::INVALID_ARGUMENT, "theta.dtype"},
      {"dtype_out_of_range",
       [](auto& r) { r.mutable_theta()->set_dtype(static_cast<v1::DType>(9)); },
       C::INVALID_ARGUMENT, "theta.dtype"},
      {"rank_0", [](auto& r) { SetTheta(r, {1.0}, {}); }, C::INVALID_ARGUMENT, "theta.shape"},
      {"rank_3",
       [](auto& r) {
         SetTheta(r, {1, 2, 3, 4}, {1, 2, 2});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"batch_0",
       [](auto& r) {
         SetTheta(r, {}, {0, 3});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"d_0",
       [](auto& r) {
         SetTheta(r, {}, {2, 0});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"negative_dim", [](auto& r) { r.mutable_theta()->mutable_shape()->Set(0, -2); },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"shape_overflows_int64",
       [](auto& r) {
         r.mutable_theta()->mutable_shape()->Set(0, int64_t{1} << 40);
         r.mutable_theta()->mutable_shape()->Set(1, int64_t{1} << 40);
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"bytes_overflow_int64",
       [](auto& r) {
         r.mutable_theta()->mutable_shape()->Set(0, int64_t{1} << 31);
         r.mutable_theta()->mutable_shape()->Set(1, int64_t{1} << 31);
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"data_one_byte_short", [](auto& r) { r.mutable_theta()->mutable_data()->pop_back(); },
       C::INVALID_ARGUMENT, "theta.data"},
      {"data_too_long_for_float32", [](auto& r) { r.mutable_theta()->set_dtype(v1::FLOAT32); },
       C::INVALID_ARGUMENT, "theta.data"},
      {"nan",
       [](auto& r) {
         SetTheta(r, {0, 1, 2, kNaN, 4, 5}, {2, 3});
       },
       C::INVALID_ARGUMENT, "theta.data: element 3 is NaN"},
      {"plus_inf_float32",
       [](auto& r) {
         SetTheta(r, {0, kInf, 2, 3, 4, 5}, {2, 3}, v1::FLOAT32);
       },
       C::INVALID_ARGUMENT, "theta.data: element 1 is +Inf"},
      {"minus_inf",
       [](auto& r) {
         SetTheta(r, {0, 1, 2, 3, 4, -kInf}, {2, 3});
       },
       C::INVALID_ARGUMENT, "theta.data: element 5 is -Inf"},
      {"epsilon_0", [](auto& r) { r.mutable_noise()->set_epsilon(0); }, C::INVALID_ARGUMENT,
       "noise.epsilon"},
      {"epsilon_negative", [](auto& r) { r.mutable_noise()->set_epsilon(-1); }, C::INVALID_ARGUMENT,
       "noise.epsilon"},
      {"epsilon_nan", [](auto& r) { r.mutable_noise()->set_epsilon(kNaN); }, C::INVALID_ARGUMENT,
       "noise.epsilon"},
      {"samples_0", [](auto& r) { r.mutable_noise()->set_num_samples(0); }, C::INVALID_ARGUMENT,
       "noise.num_samples"},
      {"antithetic_odd",
       [](auto& r) {
         r.mutable_noise()->set_antithetic(true);
         r.mutable_noise()->set_num_samples(3);
       },
       C::INVALID_ARGUMENT, "noise.antithetic"},
      {"instance_seeds_wrong_count", [](auto& r) { r.mutable_noise()->add_instance_seeds(1); },
       C::INVALID_ARGUMENT, "noise.instance_seeds"},
      {"distribution_out_of_range",
       [](auto& r) { r.mutable_noise()->set_distribution(static_cast<v1::Distribution>(9)); },
       C::INVALID_ARGUMENT, "noise.distribution"},
      {"perturbation_out_of_range",
       [](auto& r) { r.mutable_noise()->set_perturbation(static_cast<v1::Perturbation>(9)); },
       C::INVALID_ARGUMENT, "noise.perturbation"},
      {"variance_reduction_out_of_range",
       [](auto& r) {
         r.mutable_noise()->set_variance_reduction(static_cast<v1::VarianceReduction>(9));
       },
       C::INVALID_ARGUMENT, "noise.variance_reduction"},
      {"leave_one_out_with_one_sample",
       [](auto& r) {
         r.mutable_noise()->set_num_samples(1);
         r.mutable_noise()->set_variance_reduction(v1::LEAVE_ONE_OUT);
       },
       C::INVALID_ARGUMENT, "noise.variance_reduction"},
      {"stderr_with_one_sample",
       [](auto& r) {
         r.mutable_noise()->set_num_samples(1);
         r.mutable_outputs()->set_stderr(true);
       },
       C::INVALID_ARGUMENT, "outputs.stderr"},
      {"sense_out_of_range",
       [](auto& r) { r.mutable_problem()->set_sense(static_cast<v1::Sense>(5)); },
       C::INVALID_ARGUMENT, "problem.sense"},
      {"top_k_k_0", [](auto& r) { *r.mutable_problem() = client::TopKProblem(0); },
       C::INVALID_ARGUMENT, "problem.top_k.k"},
      {"top_k_k_above_d", [](auto& r) { *r.mutable_problem() = client::TopKProblem(4); },
       C::INVALID_ARGUMENT, "problem.top_k.k"},
      {"grid_size_mismatch",
       [](auto& r) { *r.mutable_problem() = client::GridShortestPathProblem(2, 2); },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"grid_maximize",
       [](auto& r) {
         *r.mutable_problem() = client::GridShortestPathProblem(1, 3);
         r.mutable_problem()->set_sense(v1::MAXIMIZE);
       },
       C::INVALID_ARGUMENT, "problem.sense"},
      {"grid_connectivity_out_of_range",
       [](auto& r) {
         *r.mutable_problem() =
             client::GridShortestPathProblem(1, 3, static_cast<v1::Connectivity>(9));
       },
       C::INVALID_ARGUMENT, "problem.grid_shortest_path.connectivity"},
      {"graph_edge_lists_differ",
       [](auto& r) {
         *r.mutable_problem() = client::GraphShortestPathProblem(3, {{0, 1}, {1, 2}, {0, 2}}, 0, 2);
         r.mutable_problem()->mutable_graph_shortest_path()->add_edge_targets(1);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.edge_targets"},
      {"graph_self_loop",
       [](auto& r) {
         *r.mutable_problem() = client::GraphShortestPathProblem(3, {{0, 1}, {1, 1}, {0, 2}}, 0, 2);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.edge_targets[1]"},
      {"graph_unreachable_target",
       [](auto& r) {
         *r.mutable_problem() = client::GraphShortestPathProblem(4, {{0, 1}, {1, 2}, {0, 2}}, 0, 3);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path"},
      {"knapsack_negative_weight",
       [](auto& r) {
         *r.mutable_problem() = client::KnapsackProblem({1, -2, 3}, 4);
       },
       C::INVALID_ARGUMENT, "problem.knapsack.weights"},
      {"knapsack_table_over_limit", [](auto& r) { *r.mutable_problem() = HugeKnapsack(); },
       C::RESOURCE_EXHAUSTED, "knapsack"},
      {"knapsack_over_limit_and_nan",
       [](auto& r) {
         *r.mutable_problem() = HugeKnapsack();
         SetTheta(r, {0, 1, 2, 3, kNaN, 5}, {2, 3});
       },
       C::INVALID_ARGUMENT, "theta.data: element 4 is NaN"},
      {"knapsack_over_limit_and_bad_epsilon",
       [](auto& r) {
         *r.mutable_problem() = HugeKnapsack();
         r.mutable_noise()->set_epsilon(0);
       },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      {"assignment_size_mismatch",
       [](auto& r) { *r.mutable_problem() = client::AssignmentProblem(2, 2); }, C::INVALID_ARGUMENT,
       "theta.shape"},
      {"spanning_tree_self_loop",
       [](auto& r) {
         *r.mutable_problem() = client::SpanningTreeProblem(3, {{0, 1}, {2, 2}, {0, 2}});
       },
       C::INVALID_ARGUMENT, "problem.spanning_tree"},
      {"targets_wrong_shape",
       [](auto& r) {
         *r.mutable_targets() = client::MakeTensor({0, 1, 0}, {3});
       },
       C::INVALID_ARGUMENT, "targets.shape"},
      {"targets_nan",
       [](auto& r) {
         *r.mutable_targets() = client::MakeTensor({kNaN, 1, 0, 0, 1, 0}, {2, 3});
       },
       C::INVALID_ARGUMENT, "targets.data: element 0 is NaN"},
      {"targets_dtype_unspecified",
       [](auto& r) {
         *r.mutable_targets() = client::MakeTensor({0, 1, 0, 0, 1, 0}, {2, 3});
         r.mutable_targets()->set_dtype(v1::DTYPE_UNSPECIFIED);
       },
       C::INVALID_ARGUMENT, "targets.dtype"},
      {"multiplicative_zero_theta_with_jacobian",
       [](auto& r) {
         SetTheta(r, {1, 0, 2, 3, 4, 5}, {2, 3});
         r.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
         r.mutable_outputs()->set_jacobian(true);
       },
       C::INVALID_ARGUMENT, "theta.data: element 1"},
      {"backend_out_of_range", [](auto& r) { r.set_backend(static_cast<v1::Backend>(9)); },
       C::INVALID_ARGUMENT, "backend"},
      {"backend_gpu", [](auto& r) { r.set_backend(v1::GPU); }, C::FAILED_PRECONDITION,
       "backend: GPU"},
      {"backend_gpu_and_invalid",
       [](auto& r) {
         r.set_backend(v1::GPU);
         r.mutable_noise()->set_epsilon(0);
       },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      // Limits (the suite's server: max_work 1e5, max_response_values 1e4,
      // max_message_bytes 6e4).
      {"work_over_limit", [](auto& r) { r.mutable_noise()->set_num_samples(20000); },
       C::RESOURCE_EXHAUSTED, "max_work"},
      {"jacobian_over_limit",
       [](auto& r) {
         SetTheta(r, std::vector<double>(200, 1.0), {1, 200});
         r.mutable_outputs()->set_jacobian(true);
       },
       C::RESOURCE_EXHAUSTED, "outputs.jacobian"},
      {"samples_over_limit",
       [](auto& r) {
         r.mutable_noise()->set_num_samples(5000);
         r.mutable_outputs()->set_samples(true);
       },
       C::RESOURCE_EXHAUSTED, "outputs.samples"},
      {"response_bytes_over_limit",
       [](auto& r) {
         SetTheta(r, std::vector<double>(90, 1.0), {1, 90});
         r.mutable_outputs()->set_jacobian(true);
       },
       C::RESOURCE_EXHAUSTED, "max_message_bytes"},
      {"over_limit_and_nan",
       [](auto& r) {
         std::vector<double> theta(200, 1.0);
         theta[7] = kNaN;
         SetTheta(r, theta, {1, 200});
         r.mutable_outputs()->set_jacobian(true);
         r.mutable_noise()->set_num_samples(20000);
       },
       C::INVALID_ARGUMENT, "theta.data: element 7 is NaN"},
      {"over_limit_and_bad_epsilon",
       [](auto& r) {
         r.mutable_noise()->set_num_samples(20000);
         r.mutable_noise()->set_epsilon(-1);
       },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      {"over_limit_and_no_kind",
       [](auto& r) {
         r.mutable_noise()->set_num_samples(20000);
         r.clear_problem();
       },
       C::INVALID_ARGUMENT, "problem.kind"},
  };
  return cases;
}

TEST_F(ServiceTest, MalformedSolveRequestsGetTheExactCodeAndNameTheField) {
  // This file's rows, then the hostile ones (hostile_requests.h).
  std::vector<BadRequestCase> cases = BadRequestCases();
  for (BadRequestCase& c : ::perturbd::testing::HostileSolveRequestCases()) {
    cases.push_back(std::move(c));
  }
  size_t as_expected = 0;
  for (const BadRequestCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SolveRequest request = GoodRequest();
    c.mutate(request);
    absl::StatusOr<v1::SolveResponse> response = client_->Solve(request);
    EXPECT_FALSE(response.ok()) << "accepted";
    EXPECT_EQ(static_cast<int>(response.status().code()), static_cast<int>(c.code))
        << response.status();
    EXPECT_THAT(std::string(response.status().message()), HasSubstr(c.message));
    if (!response.ok() && static_cast<int>(response.status().code()) == static_cast<int>(c.code) &&
        absl::StrContains(response.status().message(), c.message)) {
      ++as_expected;
    }
    // The server keeps serving.
    absl::StatusOr<v1::SolveResponse> good = client_->Solve(GoodRequest());
    ASSERT_TRUE(good.ok()) << good.status();
  }
  std::printf("hostile request table: %zu cases, %zu as expected\n", cases.size(), as_expected);
  EXPECT_EQ(as_expected, cases.size());
}

TEST_F(ServiceTest, MalformedBackwardRequestsNameTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::BackwardRequest&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no_cotangent", [](auto& r) { r.clear_cotangent(); }, "cotangent: missing"},
      {"cotangent_wrong_shape",
       [](auto& r) {
         *r.mutable_cotangent() = client::MakeTensor({1, 0, 0}, {3});
       },
       "cotangent.shape"},
      {"cotangent_inf",
       [](auto& r) {
         *r.mutable_cotangent() =
             client::MakeTensor({1, 0, 0, 0, std::numeric_limits<double>::infinity(), 0}, {2, 3});
       },
       "cotangent.data: element 4 is +Inf"},
      {"no_noise", [](auto& r) { r.clear_noise(); }, "noise"},
      {"no_problem", [](auto& r) { r.clear_problem(); }, "problem.kind"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::BackwardRequest request = GoodBackward();
    c.mutate(request);
    absl::StatusOr<v1::BackwardResponse> response = client_->Backward(request);
    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
    EXPECT_THAT(std::string(response.status().message()), HasSubstr(c.message));
  }
  absl::StatusOr<v1::BackwardResponse> good = client_->Backward(GoodBackward());
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->request_id(), "good-backward");
  EXPECT_THAT(good->grad_theta().shape(), ::testing::ElementsAre(2, 3));
}

TEST_F(ServiceTest, MessagesOverMaxMessageBytesAreRejectedByGrpc) {
  v1::SolveRequest request = GoodRequest();
  SetTheta(request, std::vector<double>(10000, 1.0), {1, 10000});  // 80 kB > 60 kB
  absl::StatusOr<v1::SolveResponse> response = client_->Solve(request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted) << response.status();
  EXPECT_TRUE(client_->Solve(GoodRequest()).ok());
}

}  // namespace
}  // namespace perturbd
