// The backend policy (AUTO / CPU / GPU) and the router on the CPU. The GPU half of the router
// runs in tests/gpu/server_gpu_test.cc (label gpu).
#include "server/backend_router.h"

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/oracles/oracle_spec.h"
#include "solvers/perturbed/cuda/gpu_backend.h"

namespace perturbd {
namespace {

TEST(GpuModeTest, ParsesTheThreeModesAndNamesTheFlagOtherwise) {
  EXPECT_EQ(*ParseGpuMode("auto"), GpuMode::kAuto);
  EXPECT_EQ(*ParseGpuMode("off"), GpuMode::kOff);
  EXPECT_EQ(*ParseGpuMode("required"), GpuMode::kRequired);
  absl::StatusOr<GpuMode> bad = ParseGpuMode("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--gpu"), absl::string_view::npos);
}

TEST(ChooseBackendTest, FollowsTheRequestAndSendsAutoToTheGpuOnlyWhenItPays) {
  constexpr uint64_t kMin = 1000;
  const auto cpu = ComputeBackend::kCpu;
  const auto gpu = ComputeBackend::kGpu;
  // CPU is always the CPU, even for huge work on a GPU server.
  EXPECT_EQ(ChooseBackend(v1::CPU, true, true, 1u << 30, kMin), cpu);
  // GPU on a GPU server for an oracle it runs, whatever the size.
  EXPECT_EQ(ChooseBackend(v1::GPU, true, true, 1, kMin), gpu);
  // AUTO and UNSPECIFIED: the threshold is inclusive.
  for (v1::Backend automatic : {v1::AUTO, v1::BACKEND_UNSPECIFIED}) {
    EXPECT_EQ(ChooseBackend(automatic, true, true, kMin - 1, kMin), cpu);
    EXPECT_EQ(ChooseBackend(automatic, true, true, kMin, kMin), gpu);
    EXPECT_EQ(ChooseBackend(automatic, false, true, 1u << 30, kMin), cpu);  // no GPU
    EXPECT_EQ(ChooseBackend(automatic, true, false, 1u << 30, kMin), cpu);  // e.g. knapsack
  }
}

PerturbedRequest ArgmaxRequest(const Oracle& oracle, const std::vector<double>& theta) {
  PerturbedRequest request;
  request.oracle = &oracle;
  request.batch = static_cast<int64_t>(theta.size()) / oracle.dimension();
  request.theta = theta;
  request.noise.num_samples = 64;
  request.noise.epsilon = 0.5;
  request.noise.seed = 7;
  return request;
}

TEST(BackendRouterTest, CpuOnlyRouterRunsEveryRequestOnTheExecutorBitForBit) {
  Executor executor(2);
  BackendRouter router(executor);
  EXPECT_FALSE(router.has_gpu());
  EXPECT_TRUE(router.devices().empty());
  EXPECT_FALSE(router.GpuRuns("argmax"));
  EXPECT_EQ(router.gpu_memory().device_total_bytes, 0u);

  std::unique_ptr<Oracle> oracle = *MakeOracle(ArgmaxSpec{}, 50, std::nullopt);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  std::vector<double> theta(4 * 50);
  for (double& t : theta) t = normal(rng);
  const PerturbedRequest request = ArgmaxRequest(*oracle, theta);
  absl::StatusOr<PerturbedResult> expected = RunPerturbed(executor, request);
  ASSERT_TRUE(expected.ok()) << expected.status();

  for (v1::Backend backend : {v1::AUTO, v1::CPU, v1::GPU}) {
    EXPECT_EQ(router.Choose(request, backend), ComputeBackend::kCpu);
    absl::Notification done;
    absl::StatusOr<PerturbedResult> got;
    router.RunAsync(request, backend, std::make_shared<CancelToken>(),
                    [&](absl::StatusOr<PerturbedResult> r) {
                      got = std::move(r);
                      done.Notify();
                    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_STREQ(got->backend, "cpu");
    EXPECT_EQ(got->solution, expected->solution);
    EXPECT_EQ(got->value, expected->value);
  }
}

TEST(BackendRouterTest, ModesDecideWhetherTheGpuBackendExists) {
  Executor executor(1);
  BackendOptions off;
  off.gpu = GpuMode::kOff;
  absl::StatusOr<std::unique_ptr<BackendRouter>> router = BackendRouter::Create(executor, off);
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_FALSE((*router)->has_gpu());

  BackendOptions automatic;
  router = BackendRouter::Create(executor, automatic);
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ((*router)->has_gpu(), GpuBackend::Available());

  BackendOptions required;
  required.gpu = GpuMode::kRequired;
  router = BackendRouter::Create(executor, required);
  if (GpuBackend::Available()) {
    ASSERT_TRUE(router.ok()) << router.status();
    EXPECT_TRUE((*router)->has_gpu());
    EXPECT_EQ((*router)->devices().size(), 1u);
    EXPECT_TRUE((*router)->GpuRuns("grid_shortest_path"));
    EXPECT_FALSE((*router)->GpuRuns("knapsack"));
  } else {
    ASSERT_FALSE(router.ok());
    EXPECT_EQ(router.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(router.status().message().find("--gpu=required"), absl::string_view::npos);
  }
}

// ListSolvers advertises GPU by name; the engine accepts by oracle class: they must agree.
TEST(BackendRouterTest, GpuOracleNamesAgreeWithTheOraclesTheGpuAccepts) {
  const std::vector<std::pair<OracleSpec, int64_t>> specs = {
      {ArgmaxSpec{}, 5},
      {TopKSpec{.k = 2}, 5},
      {ThresholdSpec{}, 5},
      {RankingSpec{}, 5},
      {GridShortestPathSpec{.rows = 2, .cols = 3}, 6},
      {AssignmentSpec{.rows = 2, .cols = 2}, 4},
      {KnapsackSpec{.weights = {1, 2, 3}, .capacity = 3}, 3},
  };
  int on_gpu = 0;
  for (const auto& [spec, d] : specs) {
    absl::StatusOr<std::unique_ptr<Oracle>> oracle = MakeOracle(spec, d, std::nullopt);
    ASSERT_TRUE(oracle.ok()) << oracle.status();
    EXPECT_EQ(GpuBackend::Supports(**oracle), GpuBackend::SupportsOracleName((*oracle)->name()))
        << (*oracle)->name();
    on_gpu += GpuBackend::Supports(**oracle) ? 1 : 0;
  }
  EXPECT_EQ(on_gpu, 5);
}

}  // namespace
}  // namespace perturbd
