// The GPU backend's host–device code, run on the CPU (no GPU needed):
//   * NoiseAt / PerturbThread (one coordinate, as a GPU thread computes it) equal FillNoise
//     and estimator.cc's η bit for bit;
//   * the row solvers of device_oracles.h equal the CPU oracles on random inputs full of ties,
//     with one lane and with an emulated 32-lane warp (32 threads in lock step at every
//     collective, the way a CUDA warp runs them);
//   * the whole pipeline (gpu_pipeline.h) on HostLauncher equals RunPerturbed: identical
//     per-sample solutions and estimates within float64 rounding, over oracles, distributions,
//     perturbations, variance reductions, antithetic pairs, dtypes, instance seeds and chunking.
#include "solvers/perturbed/cuda/gpu_pipeline.h"

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/cuda/device_estimator.h"
#include "solvers/perturbed/cuda/device_oracles.h"
#include "solvers/perturbed/cuda/gpu_backend.h"
#include "solvers/perturbed/cuda/host_launcher.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/noise.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd::gpu_internal {
namespace {

// ------------------------------------------------------------------------------------------
// Noise.

TEST(NoiseAt, EqualsFillNoiseBitForBit) {
  for (NoiseDistribution dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    for (bool antithetic : {false, true}) {
      for (uint32_t sample : {0u, 1u, 6u, 7u}) {
        for (size_t d : {1u, 3u, 8u, 31u, 32u, 33u, 100u, 517u}) {
          const NoiseRow row{.key = 0x123456789ABCull + d,
                             .instance = 5,
                             .sample = sample,
                             .antithetic = antithetic,
                             .distribution = dist};
          std::vector<double> z(d), g(d);
          FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
          for (size_t i = 0; i < d; ++i) {
            double zi, gi;
            NoiseAt(row, static_cast<uint32_t>(i), zi, gi);
            ASSERT_EQ(zi, z[i]) << d << " " << i;
            ASSERT_EQ(gi, g[i]) << d << " " << i;
          }
        }
      }
    }
  }
}

// η as estimator.cc forms it from FillNoise.
std::vector<double> CpuEta(const std::vector<double>& theta, const NoiseRow& row, double eps,
                           bool multiplicative, bool f32) {
  const size_t d = theta.size();
  std::vector<double> z(d), g(d), eta(d);
  FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
  for (size_t i = 0; i < d; ++i) {
    const double v =
        multiplicative ? theta[i] * std::exp(eps * z[i] - 0.5 * eps * eps) : theta[i] + eps * z[i];
    eta[i] = f32 ? static_cast<float>(v) : v;
  }
  return eta;
}

TEST(PerturbThread, EqualsTheCpuPerturbation) {
  const int64_t B = 2, mc = 3, m0 = 4;
  const int32_t d = 45;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> theta(B * d);
  for (double& t : theta) t = normal(rng);
  const std::vector<uint64_t> keys = {11, 12};
  for (bool multiplicative : {false, true}) {
    for (bool f32 : {false, true}) {
      for (bool seeds : {false, true}) {
        std::vector<double> eta(B * mc * d, -1.0);
        PerturbParams p;
        p.noise = NoiseSource{keys.data(), seeds, true, NoiseDistribution::kNormal};
        p.theta = theta.data();
        p.batch = B;
        p.d = d;
        p.m0 = m0;
        p.mc = mc;
        p.epsilon = 0.7;
        p.multiplicative = multiplicative;
        p.f32 = f32;
        p.eta = eta.data();
        for (int64_t t = 0; t < p.threads(); ++t) PerturbThread(p, t);
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t mm = 0; mm < mc; ++mm) {
            const std::vector<double> th(theta.begin() + b * d, theta.begin() + (b + 1) * d);
            const std::vector<double> want =
                CpuEta(th, p.noise.Row(b, m0 + mm), 0.7, multiplicative, f32);
            for (int32_t i = 0; i < d; ++i) {
              ASSERT_EQ(eta[(b * mc + mm) * d + i], want[i]) << b << " " << mm << " " << i;
            }
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// Row solvers against the CPU oracles.

// 32 threads that meet at every collective, like the lanes of a CUDA warp.
class EmulatedWarp {
 public:
  struct Shared {
    std::barrier<> barrier{32};
    RankedIndex candidates[32];
    double sums[32];
    bool flags[32];
  };
  EmulatedWarp(Shared* shared, int32_t lane) : shared_(shared), lane_(lane) {}
  int32_t lane() const { return lane_; }
  int32_t width() const { return 32; }
  RankedIndex Reduce(RankedIndex c, bool from_best) const {
    for (int off = 16; off > 0; off /= 2) {
      shared_->candidates[lane_] = c;
      shared_->barrier.arrive_and_wait();
      const RankedIndex other = shared_->candidates[lane_ ^ off];
      shared_->barrier.arrive_and_wait();
      c = Pick(c, other, from_best);
    }
    return c;
  }
  uint32_t Ballot(bool p) const {
    shared_->flags[lane_] = p;
    shared_->barrier.arrive_and_wait();
    uint32_t mask = 0;
    for (int l = 0; l < 32; ++l) mask |= shared_->flags[l] ? 1u << l : 0u;
    shared_->barrier.arrive_and_wait();
    return mask;
  }
  double Sum(double x) const {
    for (int off = 16; off > 0; off /= 2) {
      shared_->sums[lane_] = x;
      shared_->barrier.arrive_and_wait();
      const double other = shared_->sums[lane_ ^ off];
      shared_->barrier.arrive_and_wait();
      x += other;
    }
    return x;
  }

 private:
  Shared* shared_;
  int32_t lane_;
};

// Runs f(warp) on 32 lanes in lock step.
template <class F>
void OnEmulatedWarp(const F& f) {
  EmulatedWarp::Shared shared;
  std::vector<std::thread> lanes;
  for (int32_t l = 0; l < 32; ++l) {
    lanes.emplace_back([&shared, &f, l] { f(EmulatedWarp(&shared, l)); });
  }
  for (std::thread& t : lanes) t.join();
}

struct Sparse {
  std::vector<int32_t> index;
  std::vector<double> value;
  std::vector<double> dense;
  bool operator==(const Sparse&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Sparse& s) {
  for (size_t k = 0; k < s.index.size(); ++k) os << "(" << s.index[k] << "," << s.value[k] << ")";
  return os;
}

Sparse CpuSolve(const Oracle& oracle, std::vector<double> eta) {
  auto ws = oracle.NewWorkspace();
  SparseVector y(oracle.dimension());
  oracle.Solve(absl::MakeSpan(eta), *ws, y);
  Sparse s;
  s.dense.assign(eta.size(), 0.0);
  for (size_t k = 0; k < y.size(); ++k) {
    s.index.push_back(y.index(k));
    s.value.push_back(y.value(k));
    s.dense[y.index(k)] = y.value(k);
  }
  return s;
}

// Runs a Warp-templated row solver into a fresh RowOutput.
struct RowBuffers {
  explicit RowBuffers(int32_t d) : index(d + 1, -7), value(d + 1, -7.0f), dense(d, -7.0f) {}
  RowOutput Output() { return RowOutput{index.data(), value.data(), dense.data(), &nnz}; }
  Sparse Get() const {
    Sparse s;
    for (int32_t k = 0; k < nnz; ++k) {
      s.index.push_back(index[k]);
      s.value.push_back(value[k]);
    }
    s.dense.assign(dense.begin(), dense.end());
    return s;
  }
  std::vector<int32_t> index;
  std::vector<float> value;
  std::vector<float> dense;
  int32_t nnz = -1;
};

enum class Kind { kArgmax, kTopK, kThreshold, kRanking };

template <class Warp>
void SolveWith(const Warp& w, Kind kind, const std::vector<double>& eta, int32_t k, bool maximize,
               const RowOutput& out) {
  const int32_t d = static_cast<int32_t>(eta.size());
  switch (kind) {
    case Kind::kArgmax:
      SolveArgmax(w, eta.data(), d, maximize, out);
      break;
    case Kind::kTopK:
      SolveTopK(w, eta.data(), d, k, maximize, out);
      break;
    case Kind::kThreshold:
      SolveThreshold(w, eta.data(), d, maximize, out);
      break;
    case Kind::kRanking:
      SolveRanking(w, eta.data(), d, maximize, out);
      break;
  }
}

// Scores with many exact ties (small integers, ±0) or none (continuous).
std::vector<double> RandomScores(std::mt19937_64& rng, int32_t d, bool ties) {
  std::vector<double> eta(d);
  std::uniform_int_distribution<int> small(-2, 2);
  std::normal_distribution<double> normal;
  for (double& v : eta) v = ties ? static_cast<double>(small(rng)) : normal(rng);
  if (ties && d > 2) eta[1] = -0.0;
  return eta;
}

TEST(RowSolvers, EqualCpuOraclesWithOneLaneAndWithAWarp) {
  std::mt19937_64 rng(2024);
  for (int32_t d : {1, 2, 3, 5, 31, 32, 33, 64, 70}) {
    for (int trial = 0; trial < 6; ++trial) {
      const std::vector<double> eta = RandomScores(rng, d, trial % 2 == 0);
      for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
        const bool maximize = sense == Sense::kMaximize;
        std::vector<std::pair<Kind, int32_t>> cases = {
            {Kind::kArgmax, 0}, {Kind::kThreshold, 0}, {Kind::kRanking, 0}};
        for (int32_t k = 1; k <= d; ++k) cases.emplace_back(Kind::kTopK, k);
        // The emulated warp is slow (32 threads per collective): two trials, a few k.
        const auto emulate = [&](Kind kind, int32_t k) {
          return trial < 2 && (kind != Kind::kTopK || k <= 2 || k == d / 2 || k >= d - 1);
        };
        for (const auto& [kind, k] : cases) {
          std::unique_ptr<Oracle> oracle;
          switch (kind) {
            case Kind::kArgmax:
              oracle = *MakeOracle(ArgmaxSpec{}, d, sense);
              break;
            case Kind::kTopK:
              oracle = *MakeOracle(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
              break;
            case Kind::kThreshold:
              oracle = *MakeOracle(ThresholdSpec{}, d, sense);
              break;
            case Kind::kRanking:
              oracle = *MakeOracle(RankingSpec{}, d, sense);
              break;
          }
          const Sparse want = CpuSolve(*oracle, eta);
          const std::string where =
              absl::StrCat(oracle->name(), " d=", d, " k=", k, " sense=", maximize, " t=", trial);

          RowBuffers one(d);
          SolveWith(SingleLane{}, kind, eta, k, maximize, one.Output());
          EXPECT_EQ(one.Get(), want) << where << " one lane";

          if (!emulate(kind, k)) continue;
          RowBuffers warp(d);
          OnEmulatedWarp(
              [&](const EmulatedWarp& w) { SolveWith(w, kind, eta, k, maximize, warp.Output()); });
          EXPECT_EQ(warp.Get(), want) << where << " 32 lanes";
        }
      }
    }
  }
}

TEST(SampleScalars, OneLaneIsTheCpuOrderAndAWarpAgreesOnEveryLane) {
  std::mt19937_64 rng(5);
  const int32_t d = 77;
  std::vector<double> eta = RandomScores(rng, d, false);
  std::vector<double> targets = RandomScores(rng, d, false);
  std::vector<double> cot = RandomScores(rng, d, false);
  auto oracle = *MakeOracle(RankingSpec{}, d, Sense::kMaximize);
  const Sparse y = CpuSolve(*oracle, eta);
  RowBuffers row(d);
  SolveRanking(SingleLane{}, eta.data(), d, true, row.Output());
  SampleBuffers buf;
  buf.eta = eta.data();
  buf.index = row.index.data();
  buf.value = row.value.data();
  buf.nnz = &row.nnz;
  double y_eta = -1, loss = -1, y_g = -1;
  buf.y_dot_eta = &y_eta;
  buf.loss = &loss;
  buf.y_dot_g = &y_g;
  ScalarParams p{.rows = 1,
                 .mc = 1,
                 .d = d,
                 .max_nonzeros = d,
                 .maximize = true,
                 .targets = targets.data(),
                 .cotangent = cot.data(),
                 .buf = buf};
  SampleScalarsRow(SingleLane{}, p, 0);
  double cpu_y_eta = 0, cpu_t_eta = 0, cpu_y_g = 0;
  for (size_t k = 0; k < y.index.size(); ++k) {
    cpu_y_eta += y.value[k] * eta[y.index[k]];
    cpu_y_g += y.value[k] * cot[y.index[k]];
  }
  for (int32_t i = 0; i < d; ++i) cpu_t_eta += targets[i] * eta[i];
  EXPECT_EQ(y_eta, cpu_y_eta);
  EXPECT_EQ(y_g, cpu_y_g);
  EXPECT_EQ(loss, cpu_y_eta - cpu_t_eta);

  std::vector<double> lane_sums(32);
  OnEmulatedWarp([&](const EmulatedWarp& w) {
    double local = 0;
    for (int32_t i = w.lane(); i < d; i += w.width()) local += targets[i] * eta[i];
    lane_sums[w.lane()] = w.Sum(local);
  });
  for (double s : lane_sums) EXPECT_EQ(s, lane_sums[0]);
  EXPECT_NEAR(lane_sums[0], cpu_t_eta, 1e-12 * d);
}

TEST(GridShortestPath, EqualsTheCpuOracleIncludingTiesAndClamping) {
  std::mt19937_64 rng(99);
  const std::vector<std::pair<int32_t, int32_t>> sizes = {{1, 1}, {1, 7},   {7, 1}, {2, 2},
                                                          {5, 4}, {12, 12}, {9, 13}};
  for (const auto& [rows, cols] : sizes) {
    for (Connectivity conn : {Connectivity::kFour, Connectivity::kEight}) {
      auto oracle = *MakeOracle(GridShortestPathSpec{.rows = static_cast<uint32_t>(rows),
                                                     .cols = static_cast<uint32_t>(cols),
                                                     .connectivity = conn},
                                rows * cols, Sense::kMinimize);
      for (int trial = 0; trial < 40; ++trial) {
        const int32_t d = rows * cols;
        std::vector<double> cost(d);
        // Small integers (exact ties in path cost), zeros, negatives (clamped), or continuous.
        std::uniform_int_distribution<int> small(trial % 3 == 0 ? -2 : 0, 3);
        std::normal_distribution<double> normal(1.0, 1.0);
        for (double& c : cost) c = trial % 4 == 3 ? normal(rng) : small(rng);
        if (trial == 1) std::fill(cost.begin(), cost.end(), 0.0);
        const Sparse want = CpuSolve(*oracle, cost);
        // Interleaved scratch: this sample is column 1 of 3, as on the GPU.
        const int64_t stride = 3;
        std::vector<double> dist(d * stride);
        std::vector<int32_t> pred(d * stride), heap(d * stride), state(d * stride);
        const GridScratch s{dist.data() + 1, pred.data() + 1, heap.data() + 1, state.data() + 1,
                            stride};
        RowBuffers out(d);
        std::vector<double> eta = cost;
        const uint32_t clamped = SolveGridShortestPath(
            eta.data(), rows, cols, conn == Connectivity::kEight, s, out.Output());
        EXPECT_EQ(out.Get(), want) << rows << "x" << cols << " trial " << trial;
        EXPECT_EQ(clamped, static_cast<uint32_t>(std::count_if(cost.begin(), cost.end(),
                                                               [](double c) { return c < 0; })));
        std::vector<double> cpu = cost;
        auto ws = oracle->NewWorkspace();
        SparseVector y(d);
        oracle->Solve(absl::MakeSpan(cpu), *ws, y);
        EXPECT_EQ(eta, cpu) << "clamped costs";
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// The whole pipeline on HostLauncher against RunPerturbed.

struct NoiseCase {
  NoiseDistribution distribution;
  Perturbation perturbation;
  std::optional<VarianceReduction> variance_reduction;
  bool antithetic;
  DType dtype;
  bool instance_seeds;
};

std::string Describe(const NoiseCase& c) {
  return absl::StrCat(c.distribution == NoiseDistribution::kNormal ? "normal" : "gumbel",
                      c.perturbation == Perturbation::kAdditive ? " additive" : " mult",
                      c.variance_reduction.has_value()
                          ? absl::StrCat(" vr=", static_cast<int>(*c.variance_reduction))
                          : " vr=default",
                      c.antithetic ? " antithetic" : "", c.dtype == DType::kFloat32 ? " f32" : "",
                      c.instance_seeds ? " seeds" : "");
}

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
      {kGumbel, kMultiplicative, kUnperturbed, false, DType::kFloat64, false},
      {kNormal, kMultiplicative, kLeaveOneOut, true, DType::kFloat32, true},
      {kNormal, kMultiplicative, kNone, false, DType::kFloat64, false},
  };
}

void ExpectClose(const std::vector<double>& got, const std::vector<double>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_NEAR(got[k], want[k], 1e-10 * (1.0 + std::fabs(want[k]))) << what << " [" << k << "]";
  }
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
      {"argmax", ArgmaxSpec{}, 13, Sense::kMaximize},
      {"argmax_min", ArgmaxSpec{}, 40, Sense::kMinimize},
      {"top_k", TopKSpec{.k = 3}, 11, Sense::kMaximize},
      {"top_k_large_k", TopKSpec{.k = 30}, 35, Sense::kMinimize},
      {"threshold", ThresholdSpec{}, 9, Sense::kMaximize},
      {"ranking", RankingSpec{}, 10, Sense::kMaximize},
      {"ranking_min", RankingSpec{}, 33, Sense::kMinimize},
      {"grid4", GridShortestPathSpec{.rows = 4, .cols = 5, .connectivity = Connectivity::kFour}, 20,
       Sense::kMinimize},
      {"grid8", GridShortestPathSpec{.rows = 6, .cols = 6}, 36, Sense::kMinimize},
  };
}

PerturbedRequest MakeRequest(const Oracle& oracle, const NoiseCase& c, int64_t B, uint32_t M,
                             std::vector<double>& theta, std::vector<double>& targets,
                             std::vector<double>& cotangent, bool grid) {
  const int64_t d = oracle.dimension();
  std::mt19937_64 rng(static_cast<uint64_t>(d * 31 + B));
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> positive(0.2, 2.0);
  theta.resize(B * d);
  targets.resize(B * d);
  cotangent.resize(B * d);
  for (double& t : theta) {
    t = grid ? positive(rng) : normal(rng);
    // Keep θ away from 0 (MULTIPLICATIVE Jacobians divide by it); small integers give ties.
    if (!grid && std::fabs(t) < 0.05) t = 0.5;
  }
  if (!grid && d > 3) theta[2] = theta[3] = 1.0;  // a tie in θ
  for (double& t : targets) t = normal(rng) > 0 ? 1.0 : 0.0;
  for (double& g : cotangent) g = normal(rng);
  PerturbedRequest r;
  r.oracle = &oracle;
  r.batch = B;
  r.theta = theta;
  r.dtype = c.dtype;
  r.noise.distribution = c.distribution;
  r.noise.epsilon = grid && c.perturbation == Perturbation::kAdditive ? 0.8 : 0.6;
  r.noise.num_samples = M;
  r.noise.seed = 77;
  if (c.instance_seeds) {
    for (int64_t b = 0; b < B; ++b) r.noise.instance_seeds.push_back(1000 + 17 * b);
  }
  r.noise.perturbation = c.perturbation;
  r.noise.variance_reduction = c.variance_reduction;
  r.noise.antithetic = c.antithetic;
  r.jacobian = true;
  r.solution_stderr = true;
  r.samples = true;
  r.targets = targets;
  r.cotangent = cotangent;
  return r;
}

void ExpectSameResult(const PerturbedResult& gpu, const PerturbedResult& cpu,
                      const std::string& where) {
  EXPECT_EQ(gpu.samples, cpu.samples) << where << ": per-sample solutions differ";
  ExpectClose(gpu.solution, cpu.solution, where + " solution");
  ExpectClose(gpu.value, cpu.value, where + " value");
  ExpectClose(gpu.jacobian, cpu.jacobian, where + " jacobian");
  ExpectClose(gpu.grad_theta, cpu.grad_theta, where + " grad_theta");
  ExpectClose(gpu.loss, cpu.loss, where + " loss");
  ExpectClose(gpu.loss_grad, cpu.loss_grad, where + " loss_grad");
  ExpectClose(gpu.solution_stderr, cpu.solution_stderr, where + " stderr");
  EXPECT_EQ(gpu.solves, cpu.solves) << where;
  EXPECT_EQ(gpu.clamped_costs, cpu.clamped_costs) << where;
  EXPECT_EQ(gpu.batch, cpu.batch);
  EXPECT_EQ(gpu.dimension, cpu.dimension);
}

class PipelineOnHost : public ::testing::TestWithParam<OracleCase> {};

TEST_P(PipelineOnHost, EqualsRunPerturbed) {
  const OracleCase& oc = GetParam();
  auto oracle = *MakeOracle(oc.spec, oc.d, oc.sense);
  const bool grid = oc.name.starts_with("grid");
  Executor executor(2);
  HostLauncher launcher;
  for (const NoiseCase& c : NoiseCases()) {
    std::vector<double> theta, targets, cotangent;
    const PerturbedRequest request = MakeRequest(*oracle, c, 3, 8, theta, targets, cotangent, grid);
    absl::StatusOr<PerturbedResult> cpu = RunPerturbed(executor, request);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    // Whole request in one chunk, and one antithetic unit per chunk.
    for (size_t chunk_bytes : {size_t{1} << 30, size_t{1}}) {
      PipelineOptions options;
      options.chunk_bytes = chunk_bytes;
      absl::StatusOr<PerturbedResult> gpu = RunPipeline(launcher, request, options);
      ASSERT_TRUE(gpu.ok()) << gpu.status();
      ExpectSameResult(*gpu, *cpu,
                       absl::StrCat(oc.name, " ", Describe(c), " chunk_bytes=", chunk_bytes));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Oracles, PipelineOnHost, ::testing::ValuesIn(OracleCases()),
                         [](const auto& info) { return info.param.name; });

TEST(PipelineOnHost, OnlyTheSolutionWhenNothingElseIsAsked) {
  auto oracle = *MakeOracle(TopKSpec{.k = 2}, 6, Sense::kMaximize);
  std::vector<double> theta = {0.1, 0.5, -0.2, 0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.2, 0.2, 0.2};
  PerturbedRequest request;
  request.oracle = oracle.get();
  request.batch = 2;
  request.theta = theta;
  request.noise.num_samples = 5;
  request.noise.epsilon = 0.3;
  Executor executor(1);
  absl::StatusOr<PerturbedResult> cpu = RunPerturbed(executor, request);
  HostLauncher launcher;
  absl::StatusOr<PerturbedResult> gpu = RunPipeline(launcher, request, PipelineOptions{});
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  ExpectSameResult(*gpu, *cpu, "solution only");
  EXPECT_TRUE(gpu->jacobian.empty());
  EXPECT_TRUE(gpu->samples.empty());
}

TEST(PipelineOnHost, ReusesItsArenaAcrossRequests) {
  auto oracle = *MakeOracle(ArgmaxSpec{}, 8, Sense::kMaximize);
  std::vector<double> theta(8, 0.5);
  PerturbedRequest request;
  request.oracle = oracle.get();
  request.theta = theta;
  request.noise.num_samples = 16;
  HostLauncher launcher;
  ASSERT_TRUE(RunPipeline(launcher, request, PipelineOptions{}).ok());
  const size_t capacity = launcher.capacity();
  request.noise.num_samples = 4;
  ASSERT_TRUE(RunPipeline(launcher, request, PipelineOptions{}).ok());
  EXPECT_EQ(launcher.capacity(), capacity);
  EXPECT_EQ(PipelineArenaBytes(request, PipelineOptions{}) <= capacity, true);
}

TEST(PipelineOnHost, RejectsOraclesItDoesNotServeAndBadRequests) {
  auto graph = *MakeOracle(
      GraphShortestPathSpec{
          .num_nodes = 3, .edge_sources = {0, 1}, .edge_targets = {1, 2}, .source = 0, .target = 2},
      2, std::nullopt);
  EXPECT_FALSE(SupportsOracle(*graph));
  EXPECT_FALSE(GpuBackend::Supports(*graph));
  std::vector<double> theta = {1.0, 2.0};
  PerturbedRequest request;
  request.oracle = graph.get();
  request.theta = theta;
  HostLauncher launcher;
  absl::StatusOr<PerturbedResult> r = RunPipeline(launcher, request, PipelineOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "backend")) << r.status();

  auto argmax = *MakeOracle(ArgmaxSpec{}, 2, std::nullopt);
  EXPECT_TRUE(GpuBackend::Supports(*argmax));
  request.oracle = argmax.get();
  request.noise.epsilon = -1.0;
  r = RunPipeline(launcher, request, PipelineOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "noise.epsilon")) << r.status();
}

TEST(PipelineOnHost, HonoursCancellationBetweenChunks) {
  auto oracle = *MakeOracle(ArgmaxSpec{}, 4, Sense::kMaximize);
  std::vector<double> theta(4, 0.0);
  PerturbedRequest request;
  request.oracle = oracle.get();
  request.theta = theta;
  request.noise.num_samples = 10;
  CancelToken cancel;
  cancel.Cancel();
  HostLauncher launcher;
  PipelineOptions options;
  options.chunk_bytes = 1;
  EXPECT_EQ(RunPipeline(launcher, request, options, &cancel).status().code(),
            absl::StatusCode::kCancelled);
}

TEST(GpuBackend, WithoutADeviceCreateIsFailedPrecondition) {
  if (GpuBackend::Available()) GTEST_SKIP() << "a GPU is present: tests/gpu covers it";
  absl::StatusOr<std::unique_ptr<GpuBackend>> gpu = GpuBackend::Create();
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(gpu.status().message(), "backend")) << gpu.status();
}

}  // namespace
}  // namespace perturbd::gpu_internal
