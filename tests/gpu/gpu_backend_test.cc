// GpuBackend on a real CUDA device (ctest label `gpu`; every test skips without a device):
//   * for every GPU oracle and a spread of noise settings, the per-sample solutions
//     (outputs.samples) are identical to RunPerturbed's for the same seed, and every estimate
//     equals the CPU's within float64 rounding;
//   * the closed forms of DESIGN §1 hold on the GPU (GUMBEL argmax → softmax, NORMAL threshold
//     → Φ(θ/ε));
//   * results are deterministic, concurrent requests do not disturb each other, chunking does
//     not change anything, cancellation and unsupported oracles are reported.
#include "solvers/perturbed/cuda/gpu_backend.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

constexpr double kEulerGamma = 0.5772156649015329;

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!GpuBackend::Available()) {
      GTEST_SKIP() << "no usable CUDA device (built with CUDA: " << GpuBackend::BuiltWithCuda()
                   << "); GPU tests skipped";
    }
    ASSERT_NE(Shared(), nullptr) << "GpuBackend::Create failed on a machine with a device";
  }
  // One backend for the whole test binary (as a server holds one).
  static GpuBackend* Shared() {
    static GpuBackend* gpu = [] {
      absl::StatusOr<std::unique_ptr<GpuBackend>> g = GpuBackend::Create();
      if (!g.ok()) ADD_FAILURE() << g.status();
      return g.ok() ? g->release() : nullptr;
    }();
    return gpu;
  }
  static GpuBackend& Gpu() { return *Shared(); }
  PerturbedResult RunGpu(const PerturbedRequest& request, GpuBackend* gpu = nullptr) {
    absl::StatusOr<PerturbedResult> r = (gpu != nullptr ? *gpu : Gpu()).Run(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(r).value() : PerturbedResult{};
  }
  PerturbedResult RunCpu(const PerturbedRequest& request) {
    absl::StatusOr<PerturbedResult> r = RunPerturbed(executor_, request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(r).value() : PerturbedResult{};
  }
  Executor executor_{0};
};

void ExpectClose(const std::vector<double>& got, const std::vector<double>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_NEAR(got[k], want[k], 1e-9 * (1.0 + std::fabs(want[k]))) << what << " [" << k << "]";
  }
}

void ExpectSameResult(const PerturbedResult& gpu, const PerturbedResult& cpu,
                      const std::string& where) {
  ASSERT_EQ(gpu.samples.size(), cpu.samples.size()) << where;
  size_t differing = 0;
  for (size_t k = 0; k < cpu.samples.size(); ++k) differing += gpu.samples[k] != cpu.samples[k];
  EXPECT_EQ(differing, 0u) << where << ": per-sample solutions differ";
  ExpectClose(gpu.solution, cpu.solution, where + " solution");
  ExpectClose(gpu.value, cpu.value, where + " value");
  ExpectClose(gpu.jacobian, cpu.jacobian, where + " jacobian");
  ExpectClose(gpu.grad_theta, cpu.grad_theta, where + " grad_theta");
  ExpectClose(gpu.loss, cpu.loss, where + " loss");
  ExpectClose(gpu.loss_grad, cpu.loss_grad, where + " loss_grad");
  ExpectClose(gpu.solution_stderr, cpu.solution_stderr, where + " stderr");
  EXPECT_EQ(gpu.solves, cpu.solves) << where;
  EXPECT_EQ(gpu.clamped_costs, cpu.clamped_costs) << where;
}

void ExpectIdentical(const PerturbedResult& a, const PerturbedResult& b, const std::string& where) {
  EXPECT_EQ(a.samples, b.samples) << where;
  EXPECT_EQ(a.solution, b.solution) << where;
  EXPECT_EQ(a.value, b.value) << where;
  EXPECT_EQ(a.jacobian, b.jacobian) << where;
  EXPECT_EQ(a.grad_theta, b.grad_theta) << where;
  EXPECT_EQ(a.loss, b.loss) << where;
  EXPECT_EQ(a.loss_grad, b.loss_grad) << where;
  EXPECT_EQ(a.solution_stderr, b.solution_stderr) << where;
}

struct NoiseCase {
  NoiseDistribution distribution;
  Perturbation perturbation;
  std::optional<VarianceReduction> variance_reduction;
  bool antithetic;
  DType dtype;
  bool instance_seeds;
};

std::vector<NoiseCase> NoiseCases() {
  using enum NoiseDistribution;
  using enum Perturbation;
  using enum VarianceReduction;
  return {
      {kNormal, kAdditive, std::nullopt, false, DType::kFloat64, false},
      {kNormal, kAdditive, kNone, false, DType::kFloat32, true},
      {kNormal, kAdditive, kLeaveOneOut, true, DType::kFloat64, false},
      {kNormal, kAdditive, kUnperturbed, true, DType::kFloat64, true},
      {kGumbel, kAdditive, kLeaveOneOut, false, DType::kFloat64, false},
      {kGumbel, kAdditive, kLeaveOneOut, true, DType::kFloat32, false},
      // MULTIPLICATIVE: the device's exp() may differ from glibc's in the last ulp, so η may too
      // (docs/gpu.md); a solution could only change at a tie within that ulp, which continuous
      // noise makes vanishingly unlikely at these sizes.
      {kGumbel, kMultiplicative, kUnperturbed, false, DType::kFloat64, false},
      {kNormal, kMultiplicative, kLeaveOneOut, true, DType::kFloat32, true},
  };
}

std::string Describe(const NoiseCase& c) {
  return absl::StrCat(c.distribution == NoiseDistribution::kNormal ? "normal" : "gumbel",
                      c.perturbation == Perturbation::kAdditive ? " additive" : " mult",
                      c.variance_reduction.has_value()
                          ? absl::StrCat(" vr=", static_cast<int>(*c.variance_reduction))
                          : " vr=default",
                      c.antithetic ? " antithetic" : "", c.dtype == DType::kFloat32 ? " f32" : "",
                      c.instance_seeds ? " seeds" : "");
}

struct OracleCase {
  std::string name;
  OracleSpec spec;
  int64_t d;
  Sense sense;
};

void PrintTo(const OracleCase& c, std::ostream* os) { *os << c.name; }

std::vector<OracleCase> OracleCases() {
  return {
      {"argmax", ArgmaxSpec{}, 50, Sense::kMaximize},
      {"argmax_min", ArgmaxSpec{}, 7, Sense::kMinimize},
      {"top_k", TopKSpec{.k = 5}, 40, Sense::kMaximize},
      {"top_k_large_k", TopKSpec{.k = 60}, 70, Sense::kMinimize},
      {"threshold", ThresholdSpec{}, 33, Sense::kMaximize},
      {"threshold_min", ThresholdSpec{}, 5, Sense::kMinimize},
      {"ranking", RankingSpec{}, 20, Sense::kMaximize},
      {"ranking_min", RankingSpec{}, 65, Sense::kMinimize},
      {"grid4", GridShortestPathSpec{.rows = 5, .cols = 7, .connectivity = Connectivity::kFour}, 35,
       Sense::kMinimize},
      {"grid8", GridShortestPathSpec{.rows = 12, .cols = 12}, 144, Sense::kMinimize},
  };
}

struct RequestData {
  std::vector<double> theta, targets, cotangent;
};

PerturbedRequest MakeRequest(const Oracle& oracle, const NoiseCase& c, int64_t B, uint32_t M,
                             RequestData& data, bool grid) {
  const int64_t d = oracle.dimension();
  std::mt19937_64 rng(static_cast<uint64_t>(d * 131 + B));
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> positive(0.2, 2.0);
  data.theta.resize(B * d);
  data.targets.resize(B * d);
  data.cotangent.resize(B * d);
  for (double& t : data.theta) {
    t = grid ? positive(rng) : normal(rng);
    if (!grid && std::fabs(t) < 0.05) t = 0.5;  // MULTIPLICATIVE Jacobians divide by θ
  }
  if (!grid && d > 3) data.theta[2] = data.theta[3] = 1.0;  // a tie in θ
  for (double& t : data.targets) t = normal(rng) > 0 ? 1.0 : 0.0;
  for (double& g : data.cotangent) g = normal(rng);
  PerturbedRequest r;
  r.oracle = &oracle;
  r.batch = B;
  r.theta = data.theta;
  r.dtype = c.dtype;
  r.noise.distribution = c.distribution;
  r.noise.epsilon = grid && c.perturbation == Perturbation::kAdditive ? 0.8 : 0.6;
  r.noise.num_samples = M;
  r.noise.seed = 2024;
  if (c.instance_seeds) {
    for (int64_t b = 0; b < B; ++b) r.noise.instance_seeds.push_back(99 + 1000 * b);
  }
  r.noise.perturbation = c.perturbation;
  r.noise.variance_reduction = c.variance_reduction;
  r.noise.antithetic = c.antithetic;
  r.jacobian = true;
  r.solution_stderr = true;
  r.samples = true;
  r.targets = data.targets;
  r.cotangent = data.cotangent;
  return r;
}

class GpuMatchesCpu : public GpuTest, public ::testing::WithParamInterface<OracleCase> {};

TEST_P(GpuMatchesCpu, SameSamplesAndEstimates) {
  const OracleCase& oc = GetParam();
  auto oracle = *MakeOracle(oc.spec, oc.d, oc.sense);
  ASSERT_TRUE(GpuBackend::Supports(*oracle));
  const bool grid = oc.name.starts_with("grid");
  for (const NoiseCase& c : NoiseCases()) {
    RequestData data;
    const PerturbedRequest request = MakeRequest(*oracle, c, 9, 64, data, grid);
    ExpectSameResult(RunGpu(request), RunCpu(request), oc.name + " " + Describe(c));
  }
}

INSTANTIATE_TEST_SUITE_P(Oracles, GpuMatchesCpu, ::testing::ValuesIn(OracleCases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(GpuTest, ChunkingChangesNothing) {
  GpuBackendOptions options;
  options.chunk_bytes = 1;  // one sample (or antithetic pair) per chunk
  options.staging_bytes = 1 << 12;
  absl::StatusOr<std::unique_ptr<GpuBackend>> small = GpuBackend::Create(options);
  ASSERT_TRUE(small.ok()) << small.status();
  for (const OracleCase& oc : {OracleCases()[2], OracleCases()[7], OracleCases()[9]}) {
    auto oracle = *MakeOracle(oc.spec, oc.d, oc.sense);
    const NoiseCase c = NoiseCases()[3];  // antithetic, UNPERTURBED, instance seeds
    RequestData data;
    const PerturbedRequest request =
        MakeRequest(*oracle, c, 3, 10, data, oc.name.starts_with("grid"));
    const PerturbedResult chunked = RunGpu(request, small->get());
    ExpectSameResult(chunked, RunCpu(request), oc.name + " chunked");
    ExpectSameResult(chunked, RunGpu(request), oc.name + " chunked vs whole");
  }
}

TEST_F(GpuTest, LargeRequestsMatchTheCpu) {
  struct Case {
    OracleSpec spec;
    int64_t d;
    int64_t B;
    uint32_t M;
  };
  const std::vector<Case> cases = {{ArgmaxSpec{}, 1000, 32, 200},
                                   {TopKSpec{.k = 10}, 1000, 16, 100},
                                   {RankingSpec{}, 100, 32, 200},
                                   {GridShortestPathSpec{.rows = 12, .cols = 12}, 144, 32, 100}};
  for (const Case& k : cases) {
    auto oracle = *MakeOracle(k.spec, k.d, std::nullopt);
    RequestData data;
    PerturbedRequest request = MakeRequest(*oracle, NoiseCases()[0], k.B, k.M, data,
                                           oracle->name() == "grid_shortest_path");
    request.jacobian = false;
    ExpectSameResult(RunGpu(request), RunCpu(request), std::string(oracle->name()) + " large");
  }
}

TEST_F(GpuTest, DeterministicAndConcurrentRequestsDoNotInterfere) {
  const std::vector<OracleCase> cases = OracleCases();
  std::vector<std::unique_ptr<Oracle>> oracles;
  std::vector<RequestData> data(cases.size());
  std::vector<PerturbedRequest> requests;
  for (size_t k = 0; k < cases.size(); ++k) {
    oracles.push_back(*MakeOracle(cases[k].spec, cases[k].d, cases[k].sense));
    requests.push_back(MakeRequest(*oracles.back(), NoiseCases()[k % NoiseCases().size()], 5, 32,
                                   data[k], cases[k].name.starts_with("grid")));
  }
  std::vector<PerturbedResult> sequential;
  for (const PerturbedRequest& r : requests) sequential.push_back(RunGpu(r));
  std::vector<PerturbedResult> concurrent(requests.size());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < requests.size(); ++k) {
    threads.emplace_back([&, k] {
      absl::StatusOr<PerturbedResult> r = Gpu().Run(requests[k]);
      if (r.ok()) concurrent[k] = std::move(r).value();
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t k = 0; k < requests.size(); ++k) {
    ExpectIdentical(concurrent[k], sequential[k], cases[k].name);
  }
}

// GUMBEL + argmax: y_ε = softmax(θ/ε), J = (diag p − ppᵀ)/ε, F_ε = ε logsumexp(θ/ε) + εγ.
TEST_F(GpuTest, GumbelArgmaxIsSoftmax) {
  const std::vector<double> theta = {0.5, -0.2, 1.0, 0.1};
  const int64_t d = 4;
  const int M = 20000;
  const double eps = 0.5;
  auto oracle = *MakeOracle(ArgmaxSpec{}, d, std::nullopt);
  PerturbedRequest req;
  req.oracle = oracle.get();
  req.theta = theta;
  req.noise.distribution = NoiseDistribution::kGumbel;
  req.noise.epsilon = eps;
  req.noise.num_samples = M;
  req.noise.seed = 11;
  req.jacobian = true;
  const PerturbedResult r = RunGpu(req);
  std::vector<double> p(d);
  double z = 0, mx = *std::max_element(theta.begin(), theta.end());
  for (int64_t i = 0; i < d; ++i) z += p[i] = std::exp((theta[i] - mx) / eps);
  for (double& v : p) v /= z;
  for (int64_t i = 0; i < d; ++i) {
    EXPECT_NEAR(r.solution[i], p[i], 4 * std::sqrt(p[i] * (1 - p[i]) / M)) << i;
    for (int64_t j = 0; j < d; ++j) {
      const double exact = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / eps;
      EXPECT_NEAR(r.jacobian[i * d + j], exact, 4 / (eps * std::sqrt(M))) << i << "," << j;
    }
  }
  const double value = mx + eps * std::log(z) + eps * kEulerGamma;
  EXPECT_NEAR(r.value[0], value, 4 * eps * M_PI / std::sqrt(6.0 * M));
}

// NORMAL + threshold: y_ε = Φ(θ/ε).
TEST_F(GpuTest, NormalThresholdIsPhi) {
  const std::vector<double> theta = {-0.3, 0.0, 0.2, 0.7, -1.1};
  const int M = 20000;
  const double eps = 0.5;
  auto oracle = *MakeOracle(ThresholdSpec{}, 5, std::nullopt);
  PerturbedRequest req;
  req.oracle = oracle.get();
  req.theta = theta;
  req.noise.epsilon = eps;
  req.noise.num_samples = M;
  req.noise.seed = 3;
  const PerturbedResult r = RunGpu(req);
  for (size_t i = 0; i < theta.size(); ++i) {
    const double phi = 0.5 * std::erfc(-theta[i] / eps / std::sqrt(2.0));
    EXPECT_NEAR(r.solution[i], phi, 4 * std::sqrt(phi * (1 - phi) / M) + 1e-12) << i;
  }
}

TEST_F(GpuTest, ReportsDevicesCancellationAndUnsupportedOracles) {
  EXPECT_FALSE(GpuBackend::Devices().empty());
  auto argmax = *MakeOracle(ArgmaxSpec{}, 3, std::nullopt);
  std::vector<double> theta = {1.0, 2.0, 3.0};
  PerturbedRequest req;
  req.oracle = argmax.get();
  req.theta = theta;
  req.noise.num_samples = 4;
  CancelToken cancel;
  cancel.Cancel();
  EXPECT_EQ(Gpu().Run(req, &cancel).status().code(), absl::StatusCode::kCancelled);

  auto graph = *MakeOracle(GraphShortestPathSpec{.num_nodes = 3,
                                                 .edge_sources = {0, 1, 0},
                                                 .edge_targets = {1, 2, 2},
                                                 .source = 0,
                                                 .target = 2},
                           3, std::nullopt);
  EXPECT_FALSE(GpuBackend::Supports(*graph));
  req.oracle = graph.get();
  const absl::StatusOr<PerturbedResult> r = Gpu().Run(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "backend")) << r.status();
}

}  // namespace
}  // namespace perturbd
