// The GPU backend through the real server (label gpu): `perturbd --gpu=required` on loopback,
// requests with `backend: GPU`, `CPU` and `AUTO`, compared with each other; ListSolvers and the
// metrics. Without a usable CUDA device the GPU tests skip, and the one that checks that
// `--gpu=required` refuses to start runs instead.
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/cpp/perturbd_client.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "solvers/perturbed/cuda/gpu_backend.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_helpers.h"

namespace perturbd {
namespace {

using ::perturbd::client::Array;
using ::perturbd::client::PerturbdClient;
using ::perturbd::testing::ServerProcess;

constexpr uint64_t kGpuMinWork = 100000;

TEST(ServerGpuModeTest, RequiredRefusesToStartWithoutAUsableGpu) {
  if (GpuBackend::Available()) GTEST_SKIP() << "a GPU is present; see ServerGpuTest";
  ::perturbd::testing::CommandResult r = ::perturbd::testing::RunCommand(
      {::perturbd::testing::ServerBinary(), "--listen=127.0.0.1:0", "--metrics_listen=",
       "--gpu=required"},
      absl::Seconds(30));
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--gpu=required")) << r.err;
}

class ServerGpuTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!GpuBackend::Available()) return;
    absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
        {"--threads=4", "--gpu=required", "--drain_seconds=0",
         absl::StrCat("--gpu_min_work=", kGpuMinWork)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
    client_ = PerturbdClient::Connect(server_->address()).release();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
    client_ = nullptr;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!GpuBackend::Available()) {
      GTEST_SKIP() << "no usable CUDA device (built with CUDA: " << GpuBackend::BuiltWithCuda()
                   << ")";
    }
    ASSERT_NE(client_, nullptr);
  }

  static ServerProcess* server_;
  static PerturbdClient* client_;
};
ServerProcess* ServerGpuTest::server_ = nullptr;
PerturbdClient* ServerGpuTest::client_ = nullptr;

struct Case {
  std::string name;
  v1::Problem problem;
  int64_t d;
  bool costs;  // grid: positive costs, multiplicative noise
};

std::vector<Case> Cases() {
  return {{"argmax", client::ArgmaxProblem(), 40, false},
          {"top_k", client::TopKProblem(5), 40, false},
          {"threshold", client::ThresholdProblem(), 40, false},
          {"ranking", client::RankingProblem(), 30, false},
          {"grid", client::GridShortestPathProblem(6, 7), 42, true}};
}

v1::SolveRequest MakeRequest(const Case& c, int64_t batch, uint32_t samples, v1::DType dtype,
                             v1::Backend backend) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> cost(0.5, 3.0);
  std::vector<double> theta(static_cast<size_t>(batch * c.d));
  for (double& t : theta) t = c.costs ? cost(rng) : normal(rng);
  v1::SolveRequest request;
  *request.mutable_problem() = c.problem;
  *request.mutable_theta() = client::MakeTensor(theta, {batch, c.d}, dtype);
  *request.mutable_noise() = client::MakeNoise(0.5, samples, 1234);
  if (c.costs) request.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
  request.mutable_outputs()->set_samples(true);
  request.mutable_outputs()->set_stderr(true);
  request.set_backend(backend);
  return request;
}

TEST_F(ServerGpuTest, ListSolversReportsTheDeviceAndTheOraclesItRuns) {
  absl::StatusOr<v1::ListSolversResponse> list = client_->ListSolvers();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->devices_size(), 1);
  EXPECT_TRUE(absl::StrContains(list->devices(0), "sm_")) << list->devices(0);
  int on_gpu = 0;
  for (const v1::SolverInfo& s : list->solvers()) {
    bool gpu = false;
    for (int b : s.backends()) gpu |= b == v1::GPU;
    EXPECT_EQ(gpu, GpuBackend::SupportsOracleName(s.name())) << s.name();
    on_gpu += gpu ? 1 : 0;
  }
  EXPECT_EQ(on_gpu, 5);
}

TEST_F(ServerGpuTest, GpuAndCpuGiveTheSameSamplesAndEstimates) {
  for (const Case& c : Cases()) {
    for (v1::DType dtype : {v1::FLOAT64, v1::FLOAT32}) {
      SCOPED_TRACE(c.name + (dtype == v1::FLOAT32 ? " float32" : " float64"));
      absl::StatusOr<v1::SolveResponse> cpu = client_->Solve(MakeRequest(c, 3, 64, dtype, v1::CPU));
      absl::StatusOr<v1::SolveResponse> gpu = client_->Solve(MakeRequest(c, 3, 64, dtype, v1::GPU));
      ASSERT_TRUE(cpu.ok()) << cpu.status();
      ASSERT_TRUE(gpu.ok()) << gpu.status();
      EXPECT_EQ(cpu->stats().backend(), "cpu");
      EXPECT_EQ(gpu->stats().backend(), "gpu");
      EXPECT_EQ(gpu->stats().solves(), cpu->stats().solves());
      // Identical per-sample solutions (same noise, same tie rules) ...
      EXPECT_EQ(gpu->samples().data(), cpu->samples().data());
      // ... so equal estimates up to the order of float64 sums, then the cast to the dtype.
      absl::StatusOr<Array> ys = client::ReadTensor(cpu->solution());
      absl::StatusOr<Array> yg = client::ReadTensor(gpu->solution());
      absl::StatusOr<Array> vs = client::ReadTensor(cpu->value());
      absl::StatusOr<Array> vg = client::ReadTensor(gpu->value());
      ASSERT_TRUE(ys.ok() && yg.ok() && vs.ok() && vg.ok());
      const double tol = dtype == v1::FLOAT32 ? 1e-6 : 1e-12;
      for (size_t k = 0; k < ys->values.size(); ++k) {
        EXPECT_NEAR(yg->values[k], ys->values[k], tol) << k;
      }
      for (size_t k = 0; k < vs->values.size(); ++k) {
        EXPECT_NEAR(vg->values[k], vs->values[k], tol * (1 + std::fabs(vs->values[k]))) << k;
      }
    }
  }
}

TEST_F(ServerGpuTest, BackwardOnTheGpuMatchesTheCpu) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const v1::SolveRequest solve = MakeRequest(c, 2, 200, v1::FLOAT64, v1::CPU);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal;
    std::vector<double> g(static_cast<size_t>(2 * c.d));
    for (double& x : g) x = normal(rng);
    v1::BackwardRequest request;
    *request.mutable_problem() = solve.problem();
    *request.mutable_theta() = solve.theta();
    *request.mutable_noise() = solve.noise();
    *request.mutable_cotangent() = client::MakeTensor(g, {2, c.d});
    request.set_backend(v1::CPU);
    absl::StatusOr<v1::BackwardResponse> cpu = client_->Backward(request);
    request.set_backend(v1::GPU);
    absl::StatusOr<v1::BackwardResponse> gpu = client_->Backward(request);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    EXPECT_EQ(gpu->stats().backend(), "gpu");
    absl::StatusOr<Array> a = client::ReadTensor(cpu->grad_theta());
    absl::StatusOr<Array> b = client::ReadTensor(gpu->grad_theta());
    ASSERT_TRUE(a.ok() && b.ok());
    double scale = 0;
    for (double x : a->values) scale = std::max(scale, std::fabs(x));
    for (size_t k = 0; k < a->values.size(); ++k) {
      EXPECT_NEAR(b->values[k], a->values[k], 1e-12 * (1 + scale)) << k;
    }
  }
}

TEST_F(ServerGpuTest, AutoSendsOnlyLargeWorkToTheGpu) {
  const Case argmax = Cases()[0];  // d = 40
  // 2·100·40 = 8,000 < kGpuMinWork; 64·100·40 = 256,000 ≥ kGpuMinWork.
  absl::StatusOr<v1::SolveResponse> small =
      client_->Solve(MakeRequest(argmax, 2, 100, v1::FLOAT32, v1::AUTO));
  absl::StatusOr<v1::SolveResponse> large =
      client_->Solve(MakeRequest(argmax, 64, 100, v1::FLOAT32, v1::BACKEND_UNSPECIFIED));
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(small->stats().backend(), "cpu");
  EXPECT_EQ(large->stats().backend(), "gpu");
}

TEST_F(ServerGpuTest, OraclesTheGpuDoesNotRunAreRefusedNamingBackend) {
  v1::SolveRequest request;
  *request.mutable_problem() = client::AssignmentProblem(3, 3);
  *request.mutable_theta() = client::MakeTensor(std::vector<double>(9, 1.0), {9});
  *request.mutable_noise() = client::MakeNoise(0.5, 10, 1);
  request.set_backend(v1::GPU);
  absl::StatusOr<v1::SolveResponse> r = client_->Solve(request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "backend")) << r.status();
  // AUTO runs it on the CPU.
  request.set_backend(v1::AUTO);
  r = client_->Solve(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stats().backend(), "cpu");
}

TEST_F(ServerGpuTest, MetricsCountGpuSolvesAndGpuMemory) {
  const Case argmax = Cases()[0];
  absl::StatusOr<v1::SolveResponse> r =
      client_->Solve(MakeRequest(argmax, 4, 50, v1::FLOAT64, v1::GPU));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(::perturbd::testing::Metric(*server_, "perturbd_solves_total{backend=\"gpu\"}"),
            static_cast<double>(r->stats().solves()));
  EXPECT_GT(::perturbd::testing::Metric(*server_,
                                        "perturbd_gpu_memory_bytes{kind=\"device_total\"}"),
            1e9);
  EXPECT_GT(::perturbd::testing::Metric(*server_, "perturbd_gpu_memory_bytes{kind=\"arena\"}"), 0);
}

}  // namespace
}  // namespace perturbd
