// The real perturbd binary on loopback, operational side: health (liveness and readiness),
// reflection, /metrics, admission (max_inflight), deadlines and cancellation, SIGTERM drain and
// the second signal, and perturbd-cli.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cpp/npy.h"
#include "client/cpp/perturbd_client.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_helpers.h"

namespace perturbd {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::perturbd::client::Array;
using ::perturbd::client::PerturbdClient;
using ::perturbd::testing::BackgroundSolve;
using ::perturbd::testing::CommandResult;
using ::perturbd::testing::HttpGet;
using ::perturbd::testing::Json;
using ::perturbd::testing::Metric;
using ::perturbd::testing::MetricValue;
using ::perturbd::testing::ParseJson;
using ::perturbd::testing::RunCommand;
using ::perturbd::testing::SamplesForSeconds;
using ::perturbd::testing::Scrape;
using ::perturbd::testing::ServerProcess;
using ::perturbd::testing::SmallRequest;
using ::perturbd::testing::WaitForMetric;
using ::perturbd::testing::WideRequest;
using ::testing::HasSubstr;

constexpr char kReadiness[] = "perturbd.v1.PerturbedOptimizer";

std::unique_ptr<ServerProcess> StartServer(const std::vector<std::string>& flags) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(flags);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

absl::StatusOr<HealthCheckResponse::ServingStatus> Health(const PerturbdClient& client,
                                                          const std::string& service) {
  return client.Health(service);
}

// --- Health and reflection. ---

TEST(OperationsTest, HealthLivenessAndReadinessServe) {
  auto server = StartServer({"--drain_seconds=0"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  EXPECT_EQ(Health(*client, "").value(), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*client, kReadiness).value(), HealthCheckResponse::SERVING);
  absl::StatusOr<HealthCheckResponse::ServingStatus> unknown = Health(*client, "no.such.Service");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST(OperationsTest, ReflectionListsServicesAndDescribesTheContract) {
  auto server = StartServer({"--drain_seconds=0"});
  ASSERT_NE(server, nullptr);
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);

  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
  EXPECT_THAT(services,
              ::testing::IsSupersetOf({"perturbd.v1.PerturbedOptimizer", "grpc.health.v1.Health",
                                       "grpc.reflection.v1alpha.ServerReflection"}));

  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("perturbd.v1.SolveRequest");
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  ASSERT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "perturbd/v1/perturbd.proto");
  EXPECT_EQ(file.package(), "perturbd.v1");
  ASSERT_EQ(file.service_size(), 1);
  std::vector<std::string> methods;
  for (const auto& m : file.service(0).method()) methods.push_back(m.name());
  EXPECT_THAT(methods, ::testing::ElementsAre("Solve", "Backward", "SolveStream", "ListSolvers"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// --- Metrics. ---

TEST(OperationsTest, MetricsAreScrapedAndCountersMove) {
  auto server = StartServer({"--drain_seconds=0", "--threads=2"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const std::string ok = R"(perturbd_requests_total{code="OK",method="Solve",oracle="argmax"})";
  const std::string bad =
      R"(perturbd_requests_total{code="INVALID_ARGUMENT",method="Solve",oracle="argmax"})";
  const std::string backward =
      R"(perturbd_requests_total{code="OK",method="Backward",oracle="argmax"})";
  const std::string solves = R"(perturbd_solves_total{backend="cpu"})";
  const std::string duration =
      R"(perturbd_request_duration_seconds_count{method="Solve",oracle="argmax"})";
  const std::string rejected = R"(perturbd_rejected_requests_total{reason="max_work"})";

  const std::string before = Scrape(*server);
  EXPECT_EQ(MetricValue(before, R"(perturbd_build_info{version="0.1.0"})"), 1.0) << before;
  EXPECT_EQ(MetricValue(before, "perturbd_inflight_requests"), 0.0);
  EXPECT_EQ(MetricValue(before, rejected), 0.0);

  ASSERT_TRUE(client->Solve(SmallRequest()).ok());
  ASSERT_TRUE(client->Solve(SmallRequest()).ok());
  v1::SolveRequest invalid = SmallRequest();
  invalid.mutable_noise()->set_epsilon(0);
  ASSERT_FALSE(client->Solve(invalid).ok());
  v1::SolveRequest huge = SmallRequest();
  huge.mutable_noise()->set_num_samples(1u << 31);  // B·M·d = 1.3e10 > max_work
  ASSERT_EQ(client->Solve(huge).status().code(), absl::StatusCode::kResourceExhausted);
  v1::BackwardRequest backward_request;
  *backward_request.mutable_problem() = client::ArgmaxProblem();
  *backward_request.mutable_theta() = SmallRequest().theta();
  *backward_request.mutable_noise() = SmallRequest().noise();
  *backward_request.mutable_cotangent() = SmallRequest().theta();
  ASSERT_TRUE(client->Backward(backward_request).ok());
  ASSERT_TRUE(client->ListSolvers().ok());

  const std::string after = Scrape(*server);
  EXPECT_THAT(after, HasSubstr("# TYPE perturbd_request_duration_seconds histogram"));
  EXPECT_EQ(MetricValue(after, ok), 2.0) << after;
  EXPECT_EQ(MetricValue(after, bad), 1.0);
  EXPECT_EQ(MetricValue(after, backward), 1.0);
  EXPECT_EQ(
      MetricValue(
          after,
          R"(perturbd_requests_total{code="RESOURCE_EXHAUSTED",method="Solve",oracle="argmax"})"),
      1.0);
  EXPECT_EQ(MetricValue(after,
                        R"(perturbd_requests_total{code="OK",method="ListSolvers",oracle="none"})"),
            1.0);
  EXPECT_EQ(MetricValue(after, rejected), 1.0);
  EXPECT_EQ(MetricValue(after, solves), 3.0 * 2 * 10);  // three solved requests, B·M = 20 each
  EXPECT_EQ(MetricValue(after, duration), 4.0);         // OK, OK, INVALID, RESOURCE_EXHAUSTED
  EXPECT_EQ(MetricValue(after, "perturbd_request_samples_count"), 3.0);
  EXPECT_EQ(MetricValue(after, R"(perturbd_request_batch_size_bucket{le="2"})"), 3.0);
  EXPECT_EQ(MetricValue(after, "perturbd_inflight_requests"), 0.0);
}

// --- Admission, deadlines, cancellation. ---

TEST(OperationsTest, MaxInflightRejectsTheRequestBeyondTheLimitAndCancelFreesIt) {
  // No admission queue: the request beyond max_inflight is refused at once.
  auto server =
      StartServer({"--drain_seconds=0", "--threads=1", "--max_inflight=1", "--max_queue=0"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);

  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, "perturbd_inflight_requests", 1.0, absl::Seconds(10)));
  absl::StatusOr<v1::SolveResponse> rejected = client->Solve(SmallRequest());
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(rejected.status().message()),
              HasSubstr("max_inflight (1) requests already in flight"));
  // Malformed requests are still told so, not rejected for load.
  v1::SolveRequest invalid = SmallRequest();
  invalid.clear_noise();
  EXPECT_EQ(client->Solve(invalid).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Metric(*server, R"(perturbd_rejected_requests_total{reason="max_inflight"})"), 1.0);

  // Cancelling the slow request stops its work: the slot frees long before it would finish.
  const absl::Time cancelled_at = absl::Now();
  slow.Cancel();
  EXPECT_EQ(slow.Join().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForMetric(*server, "perturbd_inflight_requests", 0.0, absl::Seconds(3)));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(3));
  EXPECT_TRUE(client->Solve(SmallRequest()).ok());
}

TEST(OperationsTest, DeadlineStopsASolveMidway) {
  auto server = StartServer({"--drain_seconds=0", "--threads=1"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);
  const absl::Time start = absl::Now();
  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Milliseconds(300));
  EXPECT_EQ(slow.Join().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(slow.finished_at() - start, absl::Seconds(3));
  // The server stops working on it too (the in-flight slot frees well before 5 s).
  EXPECT_TRUE(WaitForMetric(*server, "perturbd_inflight_requests", 0.0, absl::Seconds(3)));
  EXPECT_TRUE(client->Solve(SmallRequest()).ok());
}

// --- SIGTERM. ---

TEST(OperationsTest, SigtermDrainsFinishesInFlightWorkAndExitsZero) {
  auto server = StartServer({"--threads=1", "--drain_seconds=1", "--shutdown_grace_seconds=30"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 3.0);
  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, "perturbd_inflight_requests", 1.0, absl::Seconds(10)));

  const absl::Time signalled_at = absl::Now();
  server->Signal(SIGTERM);
  // Readiness goes NOT_SERVING at once; liveness stays SERVING; requests are still served.
  bool not_ready = false;
  for (int i = 0; i < 50 && !not_ready; ++i) {
    absl::StatusOr<HealthCheckResponse::ServingStatus> ready = Health(*client, kReadiness);
    not_ready = ready.ok() && *ready == HealthCheckResponse::NOT_SERVING;
    if (!not_ready) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(not_ready);
  EXPECT_LT(absl::Now() - signalled_at, absl::Seconds(1));
  EXPECT_EQ(Health(*client, "").value_or(HealthCheckResponse::UNKNOWN),
            HealthCheckResponse::SERVING);
  // (threads=1 and the slow request holds the worker, so ask for something cheap that is
  // answered before any solving: the solver list.)
  EXPECT_TRUE(client->ListSolvers().ok());

  // After the drain, new connections are refused while the slow request still runs.
  absl::SleepFor(absl::Seconds(1.5) - (absl::Now() - signalled_at));
  if (!slow.done()) {
    client::ClientOptions options;
    options.timeout = absl::Seconds(2);
    auto fresh = PerturbdClient::Connect(server->address(), options);
    absl::StatusOr<v1::ListSolversResponse> late = fresh->ListSolvers();
    EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  }

  const grpc::Status status = slow.Join();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(server->WaitForExit(absl::Seconds(30)), std::optional<int>(0)) << server->Output();
  EXPECT_THAT(server->Output(), HasSubstr("readiness NOT_SERVING"));
}

TEST(OperationsTest, WorkPastTheShutdownGraceIsCancelledAndTheServerStillExitsZero) {
  auto server = StartServer({"--threads=1", "--drain_seconds=0", "--shutdown_grace_seconds=0.5"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 10.0);
  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, "perturbd_inflight_requests", 1.0, absl::Seconds(10)));
  const absl::Time signalled_at = absl::Now();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->WaitForExit(absl::Seconds(20)), std::optional<int>(0)) << server->Output();
  EXPECT_LT(absl::Now() - signalled_at, absl::Seconds(5));
  const grpc::Status status = slow.Join();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(server->Output(), HasSubstr("1 requests in flight"));
}

TEST(OperationsTest, SecondSignalExitsAtOnce) {
  auto server = StartServer({"--drain_seconds=60"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  server->Signal(SIGTERM);
  // Wait until the first signal took effect, then send the second.
  bool not_ready = false;
  for (int i = 0; i < 200 && !not_ready; ++i) {
    absl::StatusOr<HealthCheckResponse::ServingStatus> ready = Health(*client, kReadiness);
    not_ready = ready.ok() && *ready == HealthCheckResponse::NOT_SERVING;
    if (!not_ready) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(not_ready);
  server->Signal(SIGINT);
  const std::optional<int> status = server->WaitForExit(absl::Seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
}

// --- perturbd-cli. ---

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer({"--drain_seconds=0"});
    ASSERT_NE(server_, nullptr);
    client_ = PerturbdClient::Connect(server_->address());
  }
  CommandResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::CliBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(absl::StrCat("--address=", server_->address()));
    return RunCommand(argv, absl::Seconds(30));
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<PerturbdClient> client_;
};

TEST_F(CliTest, SolvePrintsTheSameNumbersAsTheRpc) {
  const std::string out_path =
      absl::StrCat(::testing::TempDir(), "/perturbd_cli_solution_", getpid(), ".npy");
  for (const std::string dtype : {"float64", "float32"}) {
    SCOPED_TRACE(dtype);
    const CommandResult result =
        Cli({"solve", "--oracle=top_k", "--k=2", "--theta=0.1,0.5,-0.3,0.9;1,0.2,0.4,0.3",
             "--epsilon=0.5", "--samples=50", "--seed=7", "--jacobian", "--request_id=cli",
             absl::StrCat("--dtype=", dtype), absl::StrCat("--output=", out_path)});
    ASSERT_EQ(result.exit_status, 0) << result.err;
    absl::StatusOr<Json> json = ParseJson(result.out);
    ASSERT_TRUE(json.ok()) << json.status() << "\n" << result.out;

    const v1::DType wire = dtype == "float32" ? v1::FLOAT32 : v1::FLOAT64;
    // The CLI prints the shortest text that reads back to the same value in the wire dtype.
    auto read_back = [wire](const Json& json) {
      std::vector<double> values = json.Flatten();
      if (wire == v1::FLOAT32) {
        for (double& v : values) v = static_cast<float>(v);
      }
      return values;
    };
    const Array theta{{2, 4}, {0.1, 0.5, -0.3, 0.9, 1, 0.2, 0.4, 0.3}, wire};
    absl::StatusOr<client::SolveResult> rpc = client_->Solve(
        client::TopKProblem(2), theta, client::MakeNoise(0.5, 50, 7), {.jacobian = true});
    ASSERT_TRUE(rpc.ok()) << rpc.status();
    EXPECT_EQ(std::get<std::string>((*json)["request_id"].value), "cli");
    EXPECT_EQ(read_back((*json)["solution"]), rpc->solution.values);
    EXPECT_EQ((*json)["solution"].array().size(), 2u);
    EXPECT_EQ(read_back((*json)["value"]), rpc->value.values);
    EXPECT_EQ(read_back((*json)["jacobian"]), rpc->jacobian.values);
    EXPECT_EQ((*json)["stats"]["solves"].number(), 100.0);
    EXPECT_FALSE(json->has("samples"));

    absl::StatusOr<Array> npy = client::ReadNpy(out_path);
    ASSERT_TRUE(npy.ok()) << npy.status();
    EXPECT_EQ(npy->shape, (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(npy->dtype, wire);
    EXPECT_EQ(npy->values, rpc->solution.values);
  }
  std::remove(out_path.c_str());
}

TEST_F(CliTest, SingleInstanceThetaFileAndBackward) {
  const std::string csv =
      absl::StrCat(::testing::TempDir(), "/perturbd_cli_theta_", getpid(), ".csv");
  {
    FILE* f = std::fopen(csv.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("1,2,3\n4,5,6\n", f);
    std::fclose(f);
  }
  const CommandResult grid =
      Cli({"solve", "--oracle=grid_shortest_path", "--rows=2", "--cols=3", "--theta=1,2,3,4,5,6",
           "--perturbation=multiplicative", "--epsilon=0.2", "--samples=20"});
  ASSERT_EQ(grid.exit_status, 0) << grid.err;
  absl::StatusOr<Json> grid_json = ParseJson(grid.out);
  ASSERT_TRUE(grid_json.ok()) << grid_json.status();
  EXPECT_EQ((*grid_json)["solution"].array().size(), 6u);  // θ [d] → solution [d]
  EXPECT_TRUE(std::holds_alternative<double>((*grid_json)["value"].value));  // value []

  // Every oracle the CLI builds from flags.
  std::vector<std::vector<std::string>> oracles = {
      {"--oracle=argmax", "--theta=1,2,3"},
      {"--oracle=top_k", "--k=2", "--theta=1,2,3"},
      {"--oracle=threshold", "--theta=1,-2,3"},
      {"--oracle=ranking", "--theta=1,2,3", "--sense=min"},
      {"--oracle=graph_shortest_path", "--num_nodes=3", "--edges=0-1,1-2,0-2", "--source=0",
       "--target=2", "--theta=1,1,3"},
      {"--oracle=assignment", "--rows=1", "--cols=3", "--theta=1,2,3"},
      {"--oracle=spanning_tree", "--num_nodes=3", "--edges=0-1,1-2,0-2", "--theta=1,2,3"},
      {"--oracle=knapsack", "--weights=2,3,4", "--capacity=5", "--theta=1,2,3"},
  };
  // linear_program (no dedicated flags): the problem as proto3 JSON. max ⟨θ, y⟩ over
  // y ∈ [0, 1]^3 with y0 + y1 + y2 ≤ 1.
  oracles.push_back(
      {"--problem_json={\"linearProgram\": {\"numVariables\": 3, \"rowIndex\": [0, 0, 0], "
       "\"columnIndex\": [0, 1, 2], \"coefficient\": [1, 1, 1], \"rowLower\": "
       "[\"-Infinity\"], \"rowUpper\": [1], \"variableUpper\": [1, 1, 1]}}",
       "--theta=1,2,3"});
  for (std::vector<std::string> args : oracles) {
    SCOPED_TRACE(args[0]);
    args.insert(args.begin(), "solve");
    args.push_back("--samples=8");
    const CommandResult result = Cli(args);
    ASSERT_EQ(result.exit_status, 0) << result.err;
    absl::StatusOr<Json> json = ParseJson(result.out);
    ASSERT_TRUE(json.ok()) << json.status();
    EXPECT_EQ((*json)["solution"].array().size(), 3u);
  }

  const CommandResult from_file =
      Cli({"solve", "--oracle=argmax", absl::StrCat("--theta_file=", csv), "--samples=10"});
  ASSERT_EQ(from_file.exit_status, 0) << from_file.err;
  absl::StatusOr<Json> file_json = ParseJson(from_file.out);
  ASSERT_TRUE(file_json.ok()) << file_json.status();
  EXPECT_EQ((*file_json)["solution"].array().size(), 2u);
  std::remove(csv.c_str());

  const CommandResult backward =
      Cli({"backward", "--oracle=argmax", "--theta=1,2,3", "--cotangent=1,0,0", "--epsilon=0.5",
           "--samples=40", "--seed=9"});
  ASSERT_EQ(backward.exit_status, 0) << backward.err;
  absl::StatusOr<Json> backward_json = ParseJson(backward.out);
  ASSERT_TRUE(backward_json.ok()) << backward_json.status();
  absl::StatusOr<Array> rpc =
      client_->Backward(client::ArgmaxProblem(), Array{{3}, {1, 2, 3}},
                        client::MakeNoise(0.5, 40, 9), Array{{3}, {1, 0, 0}});
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  EXPECT_EQ((*backward_json)["grad_theta"].Flatten(), rpc->values);
}

TEST_F(CliTest, ListHealthAndErrors) {
  const CommandResult list = Cli({"list"});
  ASSERT_EQ(list.exit_status, 0) << list.err;
  absl::StatusOr<Json> json = ParseJson(list.out);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ((*json)["solvers"].array().size(), 10u);
  EXPECT_THAT(list.out, HasSubstr("graph_shortest_path"));

  EXPECT_EQ(Cli({"health"}).exit_status, 0);
  EXPECT_EQ(Cli({"health", absl::StrCat("--service=", kReadiness)}).exit_status, 0);
  EXPECT_NE(Cli({"health", "--service=no.such.Service"}).exit_status, 0);

  const CommandResult invalid = Cli({"solve", "--theta=1,2,3", "--epsilon=0"});
  EXPECT_EQ(invalid.exit_status, 1);
  EXPECT_THAT(invalid.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(invalid.err, HasSubstr("noise.epsilon"));
  EXPECT_EQ(Cli({"solve", "--oracle=nope", "--theta=1"}).exit_status, 2);
  EXPECT_EQ(Cli({"solve", "--oracle=linear_program", "--theta=1"}).exit_status, 2);
  EXPECT_EQ(Cli({"solve", "--problem_json={\"nope\": 1}", "--theta=1"}).exit_status, 2);
  const CommandResult infeasible =
      Cli({"solve", "--theta=1",
           "--problem_json={\"linearProgram\": {\"numVariables\": 1, \"variableLower\": [2], "
           "\"variableUpper\": [3], \"rowIndex\": [0], \"columnIndex\": [0], "
           "\"coefficient\": [1], \"rowLower\": [0], \"rowUpper\": [1]}}"});
  EXPECT_EQ(infeasible.exit_status, 1);
  EXPECT_THAT(infeasible.err, HasSubstr("problem.linear_program"));
  EXPECT_EQ(Cli({"frobnicate"}).exit_status, 2);

  // Nothing listens on the server's port once it is gone: health fails.
  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->WaitForExit(absl::Seconds(10)).has_value());
  const CommandResult dead = Cli({"health", "--timeout=2"});
  EXPECT_NE(dead.exit_status, 0);
}

#ifdef PERTURBD_LOAD_GENERATOR_BINARY
// --- bench/load_generator (the small-request benchmark), briefly, against the real server. ---

TEST(LoadGeneratorTest, CountsEveryRequestOfEitherRpcAndRefusesOtherHosts) {
  std::unique_ptr<ServerProcess> server = StartServer({"--drain_seconds=0"});
  ASSERT_NE(server, nullptr);
  const std::string solves = R"(perturbd_requests_total{code="OK",method="Solve",oracle="argmax"})";
  auto run = [&](const std::string& rpc, const std::string& address) {
    return RunCommand(
        {PERTURBD_LOAD_GENERATOR_BINARY, absl::StrCat("--address=", address), "--concurrency=3",
         "--max_requests=120", "--duration_s=60", absl::StrCat("--rpc=", rpc)},
        absl::Seconds(60));
  };
  for (const std::string rpc : {"solve", "health"}) {
    SCOPED_TRACE(rpc);
    const double before = Metric(*server, solves);
    const CommandResult result = run(rpc, server->address());
    ASSERT_EQ(result.exit_status, 0) << result.out << result.err;
    absl::StatusOr<Json> json = ParseJson(result.out);
    ASSERT_TRUE(json.ok()) << json.status() << "\n" << result.out;
    // --max_requests bounds the requests of all threads together: exactly 120, every one OK.
    EXPECT_EQ((*json)["ok"].number(), 120.0);
    using Object = std::map<std::string, Json>;
    EXPECT_TRUE(std::get<Object>((*json)["errors"].value).empty()) << result.out;
    EXPECT_EQ(std::get<std::string>((*json)["rpc"].value),
              rpc == "solve" ? "Solve" : "grpc.health.v1.Health/Check");
    EXPECT_GT((*json)["p50_us"].number(), 0.0);
    EXPECT_LE((*json)["p50_us"].number(), (*json)["p90_us"].number());
    EXPECT_LE((*json)["p90_us"].number(), (*json)["p99_us"].number());
    EXPECT_GT((*json)["requests_per_s"].number(), 0.0);
    // The server saw 120 argmax Solves for `solve`, none for `health`.
    EXPECT_EQ(Metric(*server, solves) - before, rpc == "solve" ? 120.0 : 0.0);
  }
  EXPECT_EQ(run("solve", "10.1.2.3:50051").exit_status, 2);  // loopback only: nothing sent
  const CommandResult unknown = run("ping", server->address());
  EXPECT_EQ(unknown.exit_status, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--rpc"));
}
#endif  // PERTURBD_LOAD_GENERATOR_BINARY

}  // namespace
}  // namespace perturbd
