// Statistical and exact tests of the perturbed estimators against the closed forms of
// DESIGN §1. Every statistical tolerance is a few standard errors at the chosen M (fixed
// seeds), so each test would catch a missing 1/ε, a sum instead of a mean, ε² for ε²/2 or a
// flipped MINIMIZE sign.
#include "solvers/perturbed/perturbed_optimizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/estimator.h"
#include "solvers/perturbed/executor.h"

namespace perturbd {
namespace {

constexpr double kEulerGamma = 0.5772156649015329;

double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }

// y*(η) = η: not a finite set, but the estimators hold for any f, and its smoothing is known
// exactly (E[η] = θ, J = I for additive and for centred multiplicative noise).
class IdentityOracle : public Oracle {
 public:
  explicit IdentityOracle(int64_t d) : d_(d) {}
  absl::string_view name() const override { return "identity"; }
  int64_t dimension() const override { return d_; }
  Sense sense() const override { return Sense::kMaximize; }
  bool binary_solutions() const override { return false; }
  std::unique_ptr<OracleWorkspace> NewWorkspace() const override {
    return std::make_unique<OracleWorkspace>();
  }
  int64_t Solve(absl::Span<double> theta, OracleWorkspace&, SparseVector& y) const override {
    y.Clear();
    for (int64_t i = 0; i < d_; ++i) y.Push(i, theta[static_cast<size_t>(i)]);
    return 0;
  }

 private:
  int64_t d_;
};

// An oracle as it is, but without a selection k: the estimator takes its full pass (noise, η,
// Solve) with the same plan otherwise, so results can be compared bit for bit.
class WithoutSelection : public Oracle {
 public:
  explicit WithoutSelection(const Oracle& inner) : inner_(inner) {}
  absl::string_view name() const override { return inner_.name(); }
  int64_t dimension() const override { return inner_.dimension(); }
  Sense sense() const override { return inner_.sense(); }
  bool binary_solutions() const override { return inner_.binary_solutions(); }
  int64_t max_nonzeros() const override { return inner_.max_nonzeros(); }
  double cost_per_solve() const override { return inner_.cost_per_solve(); }
  std::unique_ptr<OracleWorkspace> NewWorkspace() const override { return inner_.NewWorkspace(); }
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& ws, SparseVector& y) const override {
    return inner_.Solve(theta, ws, y);
  }

 private:
  const Oracle& inner_;
};

std::unique_ptr<Oracle> Make(const OracleSpec& spec, int64_t d,
                             std::optional<Sense> sense = std::nullopt) {
  auto oracle = MakeOracle(spec, d, sense);
  EXPECT_TRUE(oracle.ok()) << oracle.status();
  return std::move(oracle).value();
}

NoiseOptions Noise(NoiseDistribution dist, double eps, uint32_t m, uint64_t seed = 1) {
  NoiseOptions n;
  n.distribution = dist;
  n.epsilon = eps;
  n.num_samples = m;
  n.seed = seed;
  return n;
}

class PerturbedTest : public ::testing::Test {
 protected:
  PerturbedResult Run(const PerturbedRequest& request) {
    absl::StatusOr<PerturbedResult> r = RunPerturbed(executor_, request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(r).value() : PerturbedResult{};
  }
  PerturbedRequest Request(const Oracle& oracle, const std::vector<double>& theta,
                           NoiseOptions noise) {
    PerturbedRequest r;
    r.oracle = &oracle;
    r.batch = static_cast<int64_t>(theta.size()) / oracle.dimension();
    r.theta = theta;
    r.noise = std::move(noise);
    return r;
  }
  Executor executor_{2};
};

std::vector<double> Softmax(const std::vector<double>& theta, double eps) {
  const double mx = *std::max_element(theta.begin(), theta.end());
  std::vector<double> p(theta.size());
  double z = 0;
  for (size_t i = 0; i < p.size(); ++i) z += p[i] = std::exp((theta[i] - mx) / eps);
  for (double& v : p) v /= z;
  return p;
}

// GUMBEL + argmax: y_ε = softmax(θ/ε), J = (diag p − ppᵀ)/ε, F_ε = ε logsumexp(θ/ε) + εγ.
// Run at two ε and two M so a missing 1/ε or a sum instead of a mean fails.
class GumbelArgmaxClosedForm : public PerturbedTest,
                               public ::testing::WithParamInterface<std::tuple<double, int>> {};

TEST_P(GumbelArgmaxClosedForm, SolutionJacobianAndValue) {
  const auto [eps, M] = GetParam();
  const std::vector<double> theta = {0.5, -0.2, 1.0, 0.1};
  const int64_t d = 4;
  auto oracle = Make(ArgmaxSpec{}, d);
  PerturbedRequest req = Request(*oracle, theta, Noise(NoiseDistribution::kGumbel, eps, M, 11));
  req.jacobian = true;
  req.solution_stderr = true;
  const PerturbedResult r = Run(req);
  const std::vector<double> p = Softmax(theta, eps);
  for (int64_t i = 0; i < d; ++i) {
    const double se = std::sqrt(p[i] * (1 - p[i]) / M);
    EXPECT_NEAR(r.solution[i], p[i], 4 * se + 1e-12) << i;
    EXPECT_NEAR(r.solution_stderr[i], se, 0.2 * se + 1e-9) << i;
    for (int64_t j = 0; j < d; ++j) {
      const double exact = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / eps;
      // |y_i − ȳ_i| ≤ 1 and Var ∇ν = 1 for the standard Gumbel: SE ≤ 1/(ε√M).
      EXPECT_NEAR(r.jacobian[i * d + j], exact, 4 / (eps * std::sqrt(M))) << i << "," << j;
    }
  }
  double lse = 0;
  const double mx = *std::max_element(theta.begin(), theta.end());
  for (double t : theta) lse += std::exp((t - mx) / eps);
  const double value = eps * (mx / eps + std::log(lse)) + eps * kEulerGamma;
  // ⟨y_m, η_m⟩ = max_i η_i is Gumbel with scale ε: standard deviation επ/√6.
  EXPECT_NEAR(r.value[0], value, 4 * eps * M_PI / std::sqrt(6.0 * M));
  EXPECT_EQ(r.solves, static_cast<uint64_t>(M));
}

INSTANTIATE_TEST_SUITE_P(EpsilonAndSamples, GumbelArgmaxClosedForm,
                         ::testing::Values(std::make_tuple(0.5, 20000), std::make_tuple(1.0, 20000),
                                           std::make_tuple(0.25, 5000)));

TEST_F(PerturbedTest, NormalThresholdIsPhiWithDiagonalJacobianInBothSenses) {
  const std::vector<double> theta = {-0.3, 0.0, 0.2, 0.7, -1.1};
  const int64_t d = 5;
  const int M = 20000;
  for (double eps : {0.5, 1.5}) {
    for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
      auto oracle = Make(ThresholdSpec{}, d, sense);
      PerturbedRequest req = Request(*oracle, theta, Noise(NoiseDistribution::kNormal, eps, M, 3));
      req.jacobian = true;
      const PerturbedResult r = Run(req);
      const double s = sense == Sense::kMaximize ? 1.0 : -1.0;
      for (int64_t i = 0; i < d; ++i) {
        const double p = Phi(s * theta[i] / eps);
        EXPECT_NEAR(r.solution[i], p, 4 * std::sqrt(p * (1 - p) / M)) << eps << " " << i;
        for (int64_t j = 0; j < d; ++j) {
          // (y_i − ȳ_i) z_j/ε has standard deviation ≤ 1/ε.
          const double exact = i == j ? s * phi(theta[i] / eps) / eps : 0.0;
          EXPECT_NEAR(r.jacobian[i * d + j], exact, 4 / (eps * std::sqrt(M)));
        }
      }
    }
  }
}

TEST_F(PerturbedTest, NormalTwoWayArgmaxIsPhiOfScaledDifference) {
  const int M = 40000;
  auto oracle = Make(ArgmaxSpec{}, 2);
  for (double eps : {0.3, 1.0}) {
    const std::vector<double> theta = {0.4, 0.1};
    const PerturbedResult r =
        Run(Request(*oracle, theta, Noise(NoiseDistribution::kNormal, eps, M, 5)));
    const double p = Phi((theta[0] - theta[1]) / (std::sqrt(2.0) * eps));
    EXPECT_NEAR(r.solution[0], p, 4 * std::sqrt(p * (1 - p) / M));
    EXPECT_DOUBLE_EQ(r.solution[0] + r.solution[1], 1.0);
  }
}

TEST_F(PerturbedTest, IdentityOracleAdditiveNormalHasIdentityJacobian) {
  const std::vector<double> theta = {2.0, -1.0, 0.5};
  IdentityOracle oracle(3);
  const int M = 20000;
  PerturbedRequest req = Request(oracle, theta, Noise(NoiseDistribution::kNormal, 0.5, M, 8));
  req.jacobian = true;
  const PerturbedResult r = Run(req);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(r.solution[i], theta[i], 4 * 0.5 / std::sqrt(M));
    for (int j = 0; j < 3; ++j) {
      // LOO: (ε z_i)(z_j)/ε = z_i z_j, standard deviation ≤ √2.
      EXPECT_NEAR(r.jacobian[i * 3 + j], i == j ? 1.0 : 0.0, 4 * std::sqrt(2.0 / M));
    }
  }
}

TEST_F(PerturbedTest, IdentityOracleMultiplicativeIsCentredWithIdentityJacobian) {
  // E[θ exp(εZ − ε²/2)] = θ: ε² in place of ε²/2 would shrink it by e^{−ε²/2} ≈ 0.88.
  const std::vector<double> theta = {2.0, 1.0, 3.0};
  IdentityOracle oracle(3);
  const int M = 40000;
  const double eps = 0.5;
  NoiseOptions noise = Noise(NoiseDistribution::kNormal, eps, M, 9);
  noise.perturbation = Perturbation::kMultiplicative;
  PerturbedRequest req = Request(oracle, theta, noise);
  req.jacobian = true;
  const PerturbedResult r = Run(req);
  const double w_sd = std::sqrt(std::exp(eps * eps) - 1.0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(r.solution[i], theta[i], 4 * theta[i] * w_sd / std::sqrt(M));
    for (int j = 0; j < 3; ++j) {
      // (θ_i (w_i − w̄_i)) z_j / (ε θ_j): standard deviation ≈ (θ_i/θ_j)·sd(w z)/ε.
      const double sd =
          (theta[i] / theta[j]) * std::sqrt(std::exp(2 * eps * eps) * (1 + 4 * eps * eps)) / eps;
      EXPECT_NEAR(r.jacobian[i * 3 + j], i == j ? 1.0 : 0.0, 4 * sd / std::sqrt(M)) << i << j;
    }
  }
}

TEST_F(PerturbedTest, SmallEpsilonRecoversTheUnperturbedSolution) {
  const std::vector<double> theta = {0.3, 1.2, -0.5, 1.1, 0.0, 0.7};
  auto argmax = Make(ArgmaxSpec{}, 6);
  auto topk = Make(TopKSpec{.k = 3}, 6);
  const PerturbedResult a =
      Run(Request(*argmax, theta, Noise(NoiseDistribution::kNormal, 1e-6, 50)));
  const PerturbedResult t = Run(Request(*topk, theta, Noise(NoiseDistribution::kGumbel, 1e-6, 50)));
  EXPECT_EQ(a.solution, (std::vector<double>{0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(t.solution, (std::vector<double>{0, 1, 0, 1, 0, 1}));
}

TEST_F(PerturbedTest, FenchelYoungGradientHasTheSenseSign) {
  const std::vector<double> theta = {0.3, -0.4, 0.9, 0.05};
  const std::vector<double> target = {1, 0, 0, 1};
  for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
    auto oracle = Make(ThresholdSpec{}, 4, sense);
    PerturbedRequest req = Request(*oracle, theta, Noise(NoiseDistribution::kNormal, 0.5, 200));
    req.targets = target;
    const PerturbedResult r = Run(req);
    for (int i = 0; i < 4; ++i) {
      const double expected =
          sense == Sense::kMaximize ? r.solution[i] - target[i] : target[i] - r.solution[i];
      EXPECT_EQ(r.loss_grad[i], expected) << SenseName(sense) << " " << i;
    }
    // Each sample's ⟨η, y_m − y⟩ (sign by sense) is ≥ 0 since y_m is optimal for η.
    EXPECT_GE(r.loss[0], 0.0);
  }
}

TEST_F(PerturbedTest, FenchelYoungLossIsShiftedValueForCentredNoise) {
  // E[loss] = F_ε(θ) − ⟨θ, y⟩ for NORMAL: compare with the value output on the same samples.
  const std::vector<double> theta = {0.3, -0.4, 0.9, 0.05};
  const std::vector<double> target = {0, 0, 1, 0};
  auto oracle = Make(ArgmaxSpec{}, 4);
  const int M = 20000;
  PerturbedRequest req = Request(*oracle, theta, Noise(NoiseDistribution::kNormal, 0.5, M, 4));
  req.targets = target;
  const PerturbedResult r = Run(req);
  const double shifted = r.value[0] - 0.9;  // ⟨θ, y⟩ = θ_2
  // The two differ by (1/M) Σ ε⟨Z_m, y⟩ = ε·mean(Z_2), standard error ε/√M.
  EXPECT_NEAR(r.loss[0], shifted, 4 * 0.5 / std::sqrt(M));
}

TEST_F(PerturbedTest, MultiplicativeFenchelYoungGradientWeighsSamples) {
  // With y*(η) = η the weighted mean (1/M) Σ w_m ⊙ y_m = θ ⊙ mean(w²), not ȳ.
  const std::vector<double> theta = {2.0, 1.0};
  IdentityOracle oracle(2);
  NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.3, 20000, 12);
  noise.perturbation = Perturbation::kMultiplicative;
  PerturbedRequest req = Request(oracle, theta, noise);
  const std::vector<double> target = {0.0, 0.0};
  req.targets = target;
  const PerturbedResult r = Run(req);
  const double ew2 = std::exp(0.09);  // E[w²] = e^{ε²}
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(r.loss_grad[i], theta[i] * ew2, 0.02 * theta[i]);
}

TEST_F(PerturbedTest, VjpEqualsJacobianTransposeTimesCotangentOnTheSameSeed) {
  const std::vector<double> theta = {0.2, 0.9, -0.4, 0.5, 0.1, 0.3};  // B = 2, d = 3
  const std::vector<double> g = {1.0, -2.0, 0.5, 0.3, 0.0, -1.0};
  auto oracle = Make(ArgmaxSpec{}, 3);
  for (auto vr : {VarianceReduction::kNone, VarianceReduction::kLeaveOneOut,
                  VarianceReduction::kUnperturbed}) {
    for (bool antithetic : {false, true}) {
      for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
        NoiseOptions noise = Noise(dist, 0.7, 64, 21);
        noise.variance_reduction = vr;
        noise.antithetic = antithetic;
        PerturbedRequest jreq = Request(*oracle, theta, noise);
        jreq.jacobian = true;
        PerturbedRequest vreq = Request(*oracle, theta, noise);
        vreq.cotangent = g;
        const PerturbedResult J = Run(jreq), V = Run(vreq);
        for (int b = 0; b < 2; ++b) {
          for (int j = 0; j < 3; ++j) {
            double jt_g = 0;
            for (int i = 0; i < 3; ++i) jt_g += J.jacobian[b * 9 + i * 3 + j] * g[b * 3 + i];
            EXPECT_NEAR(V.grad_theta[b * 3 + j], jt_g, 1e-10);
          }
        }
      }
    }
  }
}

// The estimators recomputed from their definitions on explicit samples and noise (small M,
// so a factor M/(M−1) or a wrong leave-one-out baseline shows): J = (1/(Mε)) Σ (y_m − a_m) ∇ν_mᵀ
// with a_m = 0 (NONE), y*(θ) (UNPERTURBED), the mean of the other samples (LEAVE_ONE_OUT) or of
// the samples outside m's antithetic pair; multiplicative divides column j by θ_j.
TEST_F(PerturbedTest, JacobianMatchesItsDefinitionOnExplicitSamples) {
  const int64_t d = 3;
  const std::vector<double> theta = {0.7, 0.4, 1.1};
  auto oracle = Make(ArgmaxSpec{}, d);
  const double eps = 0.8;
  for (auto vr : {VarianceReduction::kNone, VarianceReduction::kLeaveOneOut,
                  VarianceReduction::kUnperturbed}) {
    for (bool antithetic : {false, true}) {
      for (auto pert : {Perturbation::kAdditive, Perturbation::kMultiplicative}) {
        for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
          const int M = 6;
          NoiseOptions noise = Noise(dist, eps, M, 99);
          noise.variance_reduction = vr;
          noise.antithetic = antithetic;
          noise.perturbation = pert;
          PerturbedRequest req = Request(*oracle, theta, noise);
          req.jacobian = true;
          req.samples = true;
          const PerturbedResult r = Run(req);
          std::vector<std::vector<double>> grads(M, std::vector<double>(d));
          for (int m = 0; m < M; ++m) {
            std::vector<double> z(d);
            NoiseRow row{.key = 99,
                         .instance = 0,
                         .sample = static_cast<uint32_t>(m),
                         .antithetic = antithetic,
                         .distribution = dist,
                         .single = true};  // RunPerturbed's noise: float transforms, any dtype
            FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(grads[m]));
          }
          auto y = [&](int m, int64_t i) { return r.samples[m * d + i]; };
          const std::vector<double> y0 = {0, 0, 1};  // argmax θ
          for (int64_t i = 0; i < d; ++i) {
            for (int64_t j = 0; j < d; ++j) {
              double sum = 0;
              for (int m = 0; m < M; ++m) {
                double a = 0;
                if (vr == VarianceReduction::kUnperturbed) a = y0[i];
                if (vr == VarianceReduction::kLeaveOneOut) {
                  int count = 0;
                  for (int k = 0; k < M; ++k) {
                    const bool same = antithetic ? k / 2 == m / 2 : k == m;
                    if (same) continue;
                    a += y(k, i);
                    ++count;
                  }
                  a /= count;
                }
                sum += (y(m, i) - a) * grads[m][j];
              }
              double expected = sum / (M * eps);
              if (pert == Perturbation::kMultiplicative) expected /= theta[j];
              EXPECT_NEAR(r.jacobian[i * d + j], expected, 1e-12)
                  << static_cast<int>(vr) << antithetic << static_cast<int>(pert)
                  << static_cast<int>(dist) << " " << i << j;
            }
          }
        }
      }
    }
  }
}

TEST_F(PerturbedTest, JacobianAgreesWithCommonRandomNumberFiniteDifferences) {
  const std::vector<double> theta = {0.5, -0.2, 1.0, 0.1};
  const std::vector<double> v = {0.3, -0.5, 0.2, 0.6};
  const double eps = 0.5, h = 0.05;
  const int M = 40000;
  auto oracle = Make(ArgmaxSpec{}, 4);
  const NoiseOptions noise = Noise(NoiseDistribution::kGumbel, eps, M, 31);
  PerturbedRequest jreq = Request(*oracle, theta, noise);
  jreq.jacobian = true;
  const PerturbedResult J = Run(jreq);
  std::vector<double> plus = theta, minus = theta;
  for (int i = 0; i < 4; ++i) {
    plus[i] += h * v[i];
    minus[i] -= h * v[i];
  }
  const PerturbedResult yp = Run(Request(*oracle, plus, noise));
  const PerturbedResult ym = Run(Request(*oracle, minus, noise));
  for (int i = 0; i < 4; ++i) {
    double jv = 0;
    for (int j = 0; j < 4; ++j) jv += J.jacobian[i * 4 + j] * v[j];
    const double fd = (yp.solution[i] - ym.solution[i]) / (2 * h);
    // Same noise on both sides: only samples whose argmax flips contribute, a fraction O(h).
    EXPECT_NEAR(fd, jv, 0.06) << i;
  }
}

TEST_F(PerturbedTest, SameSeedIsBitIdenticalForAnyThreadCount) {
  std::vector<double> theta(3 * 7);
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = std::sin(1.0 + i);
  std::vector<double> target(theta.size(), 0.0), g(theta.size());
  for (size_t i = 0; i < theta.size(); i += 7) target[i] = 1.0;
  for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(2.0 * i);
  auto oracle = Make(TopKSpec{.k = 2}, 7);
  NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.4, 3000, 77);
  noise.antithetic = true;
  PerturbedRequest req = Request(*oracle, theta, noise);
  req.jacobian = true;
  req.solution_stderr = true;
  req.targets = target;
  req.cotangent = g;
  std::optional<PerturbedResult> first;
  for (int threads : {1, 2, 8}) {
    Executor executor(threads);
    absl::StatusOr<PerturbedResult> r = RunPerturbed(executor, req);
    ASSERT_TRUE(r.ok()) << r.status();
    if (!first) {
      first = *r;
      continue;
    }
    EXPECT_EQ(r->solution, first->solution) << threads;
    EXPECT_EQ(r->value, first->value);
    EXPECT_EQ(r->jacobian, first->jacobian);
    EXPECT_EQ(r->solution_stderr, first->solution_stderr);
    EXPECT_EQ(r->loss, first->loss);
    EXPECT_EQ(r->loss_grad, first->loss_grad);
    EXPECT_EQ(r->grad_theta, first->grad_theta);
  }
}

// A forward or FY pass of argmax / top-k takes NoiseSelector's path (most Z never computed); a
// request with a cotangent takes the full one. On one seed their solutions, values, stderrs,
// samples and FY losses must be the same bits.
TEST_F(PerturbedTest, SelectionForwardEqualsTheFullPassBitForBit) {
  const int64_t d = 300, batch = 3;
  std::vector<double> theta(static_cast<size_t>(batch * d));
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = std::sin(0.37 * static_cast<double>(i));
  const std::vector<double> cotangent(theta.size(), 1.0);
  for (const OracleSpec& spec : {OracleSpec(ArgmaxSpec{}), OracleSpec(TopKSpec{.k = 7})}) {
    for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
      auto oracle = Make(spec, d, sense);
      for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
        for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
          NoiseOptions noise = Noise(dist, 0.3, 40, 5);
          noise.antithetic = true;
          PerturbedRequest forward = Request(*oracle, theta, noise);
          forward.dtype = dtype;
          forward.solution_stderr = true;
          forward.samples = true;
          // The full pass (FillNoise, η, the oracle) through WithoutSelection; a VJP takes the
          // selector's y with NoiseSelector::GumbelGrad's ∇ν (GUMBEL).
          const WithoutSelection plain(*oracle);
          PerturbedRequest full = forward;
          full.oracle = &plain;
          full.cotangent = cotangent;
          PerturbedRequest vjp = forward;
          vjp.cotangent = cotangent;
          const PerturbedResult a = Run(forward);
          const PerturbedResult b = Run(full);
          const PerturbedResult v = Run(vjp);
          EXPECT_EQ(a.solution, b.solution) << oracle->name();
          EXPECT_EQ(a.value, b.value) << oracle->name();
          EXPECT_EQ(a.solution_stderr, b.solution_stderr) << oracle->name();
          EXPECT_EQ(a.samples, b.samples) << oracle->name();
          EXPECT_FALSE(a.solution.empty());
          EXPECT_EQ(v.grad_theta, b.grad_theta) << oracle->name();
          EXPECT_EQ(v.solution, b.solution) << oracle->name();
          EXPECT_EQ(v.samples, b.samples) << oracle->name();
          EXPECT_FALSE(v.grad_theta.empty());

          // Fenchel–Young with one-hot targets: the selector computes η at the targets too and
          // the loss skips the zero ones. The full pass: the same request through WithoutSelection.
          std::vector<double> targets(theta.size(), 0.0);
          for (int64_t b = 0; b < batch; ++b) targets[static_cast<size_t>(b * d + 7 * b + 3)] = 1.0;
          PerturbedRequest fy = Request(*oracle, theta, noise);
          fy.dtype = dtype;
          fy.targets = targets;
          PerturbedRequest fy_full = fy;
          fy_full.oracle = &plain;
          const PerturbedResult c = Run(fy);
          const PerturbedResult e = Run(fy_full);
          EXPECT_EQ(c.loss, e.loss) << oracle->name();
          EXPECT_EQ(c.loss_grad, e.loss_grad) << oracle->name();
          EXPECT_EQ(c.solution, e.solution) << oracle->name();
          EXPECT_FALSE(c.loss.empty());
        }
      }
    }
  }
}

TEST_F(PerturbedTest, InstanceSeedsMakeResultsIndependentOfBatchPosition) {
  const int64_t d = 5;
  std::vector<double> theta(4 * d);
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = std::sin(3.0 * i);
  auto oracle = Make(RankingSpec{}, d);
  NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.3, 100, 0);
  noise.instance_seeds = {101, 202, 303, 404};
  PerturbedRequest whole = Request(*oracle, theta, noise);
  whole.samples = true;
  const PerturbedResult all = Run(whole);
  // Instances 2 and 0, in reversed order, in a batch of their own.
  std::vector<double> sub(theta.begin() + 2 * d, theta.begin() + 3 * d);
  sub.insert(sub.end(), theta.begin(), theta.begin() + d);
  NoiseOptions sub_noise = noise;
  sub_noise.instance_seeds = {303, 101};
  PerturbedRequest part = Request(*oracle, sub, sub_noise);
  part.samples = true;
  const PerturbedResult split = Run(part);
  for (int64_t i = 0; i < d; ++i) {
    EXPECT_EQ(split.solution[i], all.solution[2 * d + i]);
    EXPECT_EQ(split.solution[d + i], all.solution[i]);
  }
  EXPECT_TRUE(std::equal(split.samples.begin(), split.samples.begin() + 100 * d,
                         all.samples.begin() + 2 * 100 * d));
  EXPECT_EQ(split.value[1], all.value[0]);
}

// A request of at most one minimum work item runs on the submitting thread (no worker
// wake-up); one big enough for the workers gives the same bits for the same instance.
TEST_F(PerturbedTest, SmallRequestRunsOnTheCallerWithTheQueuedPathsBits) {
  const int64_t d = 10;
  std::vector<double> theta(d), g(d);
  for (int64_t i = 0; i < d; ++i) {
    theta[static_cast<size_t>(i)] = std::sin(0.37 * i);
    g[static_cast<size_t>(i)] = std::cos(1.3 * i);
  }
  auto oracle = Make(ArgmaxSpec{}, d);
  NoiseOptions noise = Noise(NoiseDistribution::kGumbel, 0.5, 10, 0);
  noise.instance_seeds = {5};
  PerturbedRequest small = Request(*oracle, theta, noise);
  small.cotangent = g;
  ASSERT_TRUE(EstimatorPlan::Make(small).run_inline);
  const std::thread::id caller = std::this_thread::get_id();
  std::optional<PerturbedResult> inline_result;
  std::thread::id done_on;
  RunPerturbedAsync(executor_, small, nullptr, [&](absl::StatusOr<PerturbedResult> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    done_on = std::this_thread::get_id();
    inline_result = *std::move(r);
  });
  ASSERT_TRUE(inline_result.has_value());  // done before RunPerturbedAsync returned
  EXPECT_EQ(done_on, caller);
  EXPECT_EQ(inline_result->threads, 1u);

  // The same instance 64 times, with the same seed: the workers' path.
  const int64_t B = 64;
  std::vector<double> thetas, gs;
  for (int64_t b = 0; b < B; ++b) {
    thetas.insert(thetas.end(), theta.begin(), theta.end());
    gs.insert(gs.end(), g.begin(), g.end());
  }
  NoiseOptions batch_noise = noise;
  batch_noise.instance_seeds.assign(B, 5);
  PerturbedRequest big = Request(*oracle, thetas, batch_noise);
  big.cotangent = gs;
  ASSERT_FALSE(EstimatorPlan::Make(big).run_inline);
  const PerturbedResult queued = Run(big);
  for (int64_t b : {int64_t{0}, B - 1}) {
    const auto row = [&](const std::vector<double>& v) {
      return std::vector<double>(v.begin() + b * d, v.begin() + (b + 1) * d);
    };
    EXPECT_EQ(row(queued.solution), inline_result->solution) << b;
    EXPECT_EQ(row(queued.grad_theta), inline_result->grad_theta) << b;
    EXPECT_EQ(queued.value[static_cast<size_t>(b)], inline_result->value[0]) << b;
  }
}

TEST_F(PerturbedTest, DifferentSeedsGiveDifferentNoise) {
  const std::vector<double> theta = {0.1, 0.2, 0.3, 0.4};
  IdentityOracle oracle(4);
  const PerturbedResult a = Run(Request(oracle, theta, Noise(NoiseDistribution::kNormal, 1, 4, 1)));
  const PerturbedResult b = Run(Request(oracle, theta, Noise(NoiseDistribution::kNormal, 1, 4, 2)));
  const PerturbedResult c = Run(Request(oracle, theta, Noise(NoiseDistribution::kNormal, 1, 4, 1)));
  EXPECT_NE(a.solution, b.solution);
  EXPECT_EQ(a.solution, c.solution);
}

TEST_F(PerturbedTest, BatchInstancesGetIndependentNoise) {
  const std::vector<double> theta = {0.0, 0.0, 0.0, 0.0};  // two identical instances, d = 2
  IdentityOracle oracle(2);
  const PerturbedResult r = Run(Request(oracle, theta, Noise(NoiseDistribution::kNormal, 1, 3, 1)));
  EXPECT_NE(r.solution[0], r.solution[2]);
}

// Jacobian entry estimates over many seeds, NORMAL threshold (J_00 = φ(θ₀/ε)/ε, J_01 = 0):
// all three reductions are unbiased, and LEAVE_ONE_OUT and UNPERTURBED have a much smaller
// variance than NONE here (y is nearly constant, so subtracting a baseline removes most of
// y·∇ν's spread). Baselines need not help everywhere: for GUMBEL argmax with p > 1/2, y and
// ∇ν are correlated and LEAVE_ONE_OUT can be noisier than NONE.
TEST_F(PerturbedTest, VarianceReductionIsUnbiasedAndLowersVariance) {
  const std::vector<double> theta = {1.0, -0.5, 0.3};
  const double eps = 0.5;
  const int M = 100, R = 60;
  auto oracle = Make(ThresholdSpec{}, 3);
  const double exact[2] = {phi(theta[0] / eps) / eps, 0.0};  // J_00, J_01
  double var[3][2];
  int idx = 0;
  for (auto vr : {VarianceReduction::kNone, VarianceReduction::kLeaveOneOut,
                  VarianceReduction::kUnperturbed}) {
    for (int e = 0; e < 2; ++e) {
      double s = 0, s2 = 0;
      for (int rep = 0; rep < R; ++rep) {
        NoiseOptions noise = Noise(NoiseDistribution::kNormal, eps, M, 1000 + rep);
        noise.variance_reduction = vr;
        PerturbedRequest req = Request(*oracle, theta, noise);
        req.jacobian = true;
        const double j = Run(req).jacobian[e];
        s += j;
        s2 += j * j;
      }
      const double mean = s / R;
      var[idx][e] = (s2 - R * mean * mean) / (R - 1);
      EXPECT_NEAR(mean, exact[e], 4 * std::sqrt(var[idx][e] / R)) << idx << " " << e;
    }
    ++idx;
  }
  for (int e = 0; e < 2; ++e) {
    EXPECT_LT(var[1][e], 0.2 * var[0][e]) << e;
    EXPECT_LT(var[2][e], 0.2 * var[0][e]) << e;
  }
}

TEST_F(PerturbedTest, AntitheticLeaveOneOutGumbelIsUnbiased) {
  const std::vector<double> theta = {0.5, -0.2, 1.0, 0.1};
  const double eps = 0.5;
  const int M = 20000;
  auto oracle = Make(ArgmaxSpec{}, 4);
  NoiseOptions noise = Noise(NoiseDistribution::kGumbel, eps, M, 17);
  noise.antithetic = true;
  PerturbedRequest req = Request(*oracle, theta, noise);
  req.jacobian = true;
  const PerturbedResult r = Run(req);
  const std::vector<double> p = Softmax(theta, eps);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(r.solution[i], p[i], 4 * std::sqrt(p[i] * (1 - p[i]) / M * 2));
    for (int j = 0; j < 4; ++j) {
      const double exact = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / eps;
      EXPECT_NEAR(r.jacobian[i * 4 + j], exact, 4 * std::sqrt(2.0 / M) / eps);
    }
  }
}

TEST_F(PerturbedTest, StderrMatchesTheSamplesAndUsesPairMeansWhenAntithetic) {
  const std::vector<double> theta = {0.2, 0.1, -0.3};
  auto oracle = Make(ArgmaxSpec{}, 3);
  for (bool antithetic : {false, true}) {
    NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.5, 40, 5);
    noise.antithetic = antithetic;
    PerturbedRequest req = Request(*oracle, theta, noise);
    req.samples = true;
    req.solution_stderr = true;
    const PerturbedResult r = Run(req);
    const int units = antithetic ? 20 : 40, per = antithetic ? 2 : 1;
    for (int i = 0; i < 3; ++i) {
      std::vector<double> u(units, 0.0);
      for (int k = 0; k < units; ++k) {
        for (int q = 0; q < per; ++q) u[k] += r.samples[(k * per + q) * 3 + i] / per;
      }
      const double mean = std::accumulate(u.begin(), u.end(), 0.0) / units;
      double ss = 0;
      for (double x : u) ss += (x - mean) * (x - mean);
      EXPECT_NEAR(r.solution[i], mean, 1e-12);
      EXPECT_NEAR(r.solution_stderr[i], std::sqrt(ss / (units - 1) / units), 1e-12);
    }
  }
}

TEST_F(PerturbedTest, Float32RoundsEtaBeforeTheOracle) {
  const std::vector<double> theta = {0.1f, 0.2f};
  IdentityOracle oracle(2);
  PerturbedRequest req = Request(oracle, theta, Noise(NoiseDistribution::kNormal, 0.3, 2));
  req.dtype = DType::kFloat32;
  req.samples = true;
  const PerturbedResult r = Run(req);
  for (double y : r.samples) EXPECT_EQ(y, static_cast<double>(static_cast<float>(y)));
}

TEST_F(PerturbedTest, UnperturbedCountsItsExtraSolve) {
  const std::vector<double> theta = {0.2, 0.1, -0.3};
  auto oracle = Make(ArgmaxSpec{}, 3);
  NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.5, 10);
  noise.variance_reduction = VarianceReduction::kUnperturbed;
  PerturbedRequest req = Request(*oracle, theta, noise);
  req.jacobian = true;
  EXPECT_EQ(Run(req).solves, 11u);
}

TEST_F(PerturbedTest, DijkstraClampsAreCountedAndValueUsesClampedCosts) {
  // All-negative costs: every perturbed cost is clamped to 0 (ε tiny), so the value is 0.
  auto oracle = Make(GridShortestPathSpec{.rows = 2, .cols = 2}, 4);
  const std::vector<double> theta = {-1.0, -2.0, -3.0, -4.0};
  const PerturbedResult r =
      Run(Request(*oracle, theta, Noise(NoiseDistribution::kNormal, 1e-3, 5)));
  EXPECT_EQ(r.clamped_costs, 20u);
  EXPECT_EQ(r.value[0], 0.0);
}

// An oracle as `inner` with `width` as its batch width and the default SolveBatch (Solve on
// each θ): width 1 is the estimator's one-by-one path, width 8 groups samples as `inner` does
// but solves them one by one.
class RebatchedOracle : public Oracle {
 public:
  RebatchedOracle(const Oracle& inner, int width) : inner_(inner), width_(width) {}
  absl::string_view name() const override { return inner_.name(); }
  int64_t dimension() const override { return inner_.dimension(); }
  Sense sense() const override { return inner_.sense(); }
  int64_t max_nonzeros() const override { return inner_.max_nonzeros(); }
  double cost_per_solve() const override { return inner_.cost_per_solve(); }
  int batch_width() const override { return width_; }
  std::unique_ptr<OracleWorkspace> NewWorkspace() const override { return inner_.NewWorkspace(); }
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& ws, SparseVector& y) const override {
    return inner_.Solve(theta, ws, y);
  }

 private:
  const Oracle& inner_;
  int width_;
};

void ExpectNear(const std::vector<double>& a, const std::vector<double>& b,
                const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-12 * (1.0 + std::fabs(b[i]))) << where << " [" << i << "]";
  }
}

TEST_F(PerturbedTest, BatchedGridSolvesGiveWhatOneByOneSolvesGive) {
  // Grid shortest path solves samples 8 at a time (Oracle::SolveBatch) in blocks of whole
  // groups. Against the same grouping with one-by-one solves every output is bit-identical;
  // against no grouping at all (other blocks, so other summation orders) the per-sample
  // solutions, the solution and its stderr are, and the rest agree to round-off. M not a
  // multiple of 8 (a short last group), antithetic pairs (4 pairs a group), clamped costs
  // (small θ, large ε: some samples leave the lanes).
  for (Connectivity connectivity : {Connectivity::kFour, Connectivity::kEight}) {
    auto grid = Make(GridShortestPathSpec{.rows = 5, .cols = 7, .connectivity = connectivity}, 35);
    ASSERT_EQ(grid->batch_width(), 8);
    const RebatchedOracle one_by_one(*grid, 1);
    const RebatchedOracle grouped(*grid, 8);
    std::vector<double> theta(2 * 35);
    for (size_t i = 0; i < theta.size(); ++i) theta[i] = 0.3 + std::fabs(std::sin(0.7 * i)) * 2.0;
    std::vector<double> targets(theta.size(), 0.0), cotangent(theta.size());
    for (size_t i = 0; i < theta.size(); ++i) cotangent[i] = std::cos(0.3 * i);
    for (int i = 0; i < 7; ++i) targets[static_cast<size_t>(i) * 6] = 1.0;
    for (const bool antithetic : {false, true}) {
      for (const uint32_t m : {13u, 14u, 40u}) {
        if (antithetic && m % 2 != 0) continue;
        NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.4, m, 9);
        noise.antithetic = antithetic;
        noise.variance_reduction = VarianceReduction::kLeaveOneOut;
        auto run = [&](const Oracle& oracle) {
          PerturbedRequest req = Request(oracle, theta, noise);
          req.jacobian = true;
          req.cotangent = cotangent;
          req.targets = targets;
          req.solution_stderr = true;
          req.samples = true;
          return Run(req);
        };
        const PerturbedResult batched = run(*grid);
        const PerturbedResult same_groups = run(grouped);
        const PerturbedResult single = run(one_by_one);
        const std::string where = absl::StrCat("M=", m, " antithetic=", antithetic);
        EXPECT_GT(batched.clamped_costs, 0u) << where;
        for (const PerturbedResult* other : {&same_groups, &single}) {
          EXPECT_EQ(batched.clamped_costs, other->clamped_costs) << where;
          EXPECT_EQ(batched.samples, other->samples) << where;
          EXPECT_EQ(batched.solution, other->solution) << where;
          EXPECT_EQ(batched.solution_stderr, other->solution_stderr) << where;
        }
        EXPECT_EQ(batched.value, same_groups.value) << where;
        EXPECT_EQ(batched.jacobian, same_groups.jacobian) << where;
        EXPECT_EQ(batched.grad_theta, same_groups.grad_theta) << where;
        EXPECT_EQ(batched.loss, same_groups.loss) << where;
        EXPECT_EQ(batched.loss_grad, same_groups.loss_grad) << where;
        ExpectNear(batched.value, single.value, where + " value");
        ExpectNear(batched.jacobian, single.jacobian, where + " jacobian");
        ExpectNear(batched.grad_theta, single.grad_theta, where + " grad_theta");
        ExpectNear(batched.loss, single.loss, where + " loss");
        ExpectNear(batched.loss_grad, single.loss_grad, where + " loss_grad");
      }
    }
  }
}

struct BadRequestCase {
  std::string name;
  std::function<void(PerturbedRequest&, NoiseOptions&)> mutate;
  std::string field;
};

TEST_F(PerturbedTest, InvalidRequestsNameTheField) {
  auto oracle = Make(ArgmaxSpec{}, 2);
  const std::vector<double> theta = {0.0, 1.0, 2.0, 0.0};
  const std::vector<double> nan_theta = {0.0, NAN, 2.0, 0.0};
  const std::vector<double> short_vec = {1.0};
  const std::vector<BadRequestCase> cases = {
      {"epsilon zero", [](auto&, auto& n) { n.epsilon = 0; }, "noise.epsilon"},
      {"epsilon nan", [](auto&, auto& n) { n.epsilon = NAN; }, "noise.epsilon"},
      {"no samples", [](auto&, auto& n) { n.num_samples = 0; }, "noise.num_samples"},
      {"odd antithetic",
       [](auto&, auto& n) {
         n.antithetic = true;
         n.num_samples = 3;
       },
       "noise.antithetic"},
      {"seed count", [](auto&, auto& n) { n.instance_seeds = {1}; }, "noise.instance_seeds"},
      {"loo one draw",
       [](auto&, auto& n) {
         n.num_samples = 1;
         n.variance_reduction = VarianceReduction::kLeaveOneOut;
       },
       "noise.variance_reduction"},
      {"stderr one pair",
       [](auto& r, auto& n) {
         n.num_samples = 2;
         n.antithetic = true;
         r.solution_stderr = true;
       },
       "outputs.stderr"},
      {"nan theta", [&](auto& r, auto&) { r.theta = nan_theta; }, "theta.data"},
      {"theta size", [&](auto& r, auto&) { r.theta = short_vec; }, "theta.shape"},
      {"targets size", [&](auto& r, auto&) { r.targets = short_vec; }, "targets.shape"},
      {"cotangent size", [&](auto& r, auto&) { r.cotangent = short_vec; }, "cotangent.shape"},
      {"multiplicative zero theta",
       [](auto& r, auto& n) {
         n.perturbation = Perturbation::kMultiplicative;
         r.jacobian = true;
       },
       "theta.data"},
  };
  for (const BadRequestCase& c : cases) {
    NoiseOptions noise = Noise(NoiseDistribution::kNormal, 0.5, 4);
    PerturbedRequest req = Request(*oracle, theta, noise);
    c.mutate(req, noise);
    req.noise = noise;
    const absl::StatusOr<PerturbedResult> r = RunPerturbed(executor_, req);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_TRUE(absl::StartsWith(r.status().message(), c.field))
        << c.name << ": " << r.status().message();
  }
}

// An oracle that fails whenever η_0 > 0 (as linear_program does on an unbounded sample).
class FailingOracle : public IdentityOracle {
 public:
  using IdentityOracle::IdentityOracle;
  bool can_fail() const override { return true; }
  absl::StatusOr<int64_t> SolveChecked(absl::Span<double> theta, OracleWorkspace& ws,
                                       SparseVector& y) const override {
    if (theta[0] > 0) return absl::FailedPreconditionError("problem.test: unbounded");
    return Solve(theta, ws, y);
  }
};

TEST_F(PerturbedTest, FailedSolveNamesInstanceAndSample) {
  FailingOracle oracle(2);
  // Instance 0 never fails (θ₀ ≪ 0); instance 1 fails on its first sample.
  const std::vector<double> theta = {-100.0, 0.0, 100.0, 0.0};
  const absl::StatusOr<PerturbedResult> r =
      RunPerturbed(executor_, Request(oracle, theta, Noise(NoiseDistribution::kNormal, 1, 8)));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "problem.test: unbounded (instance 1, sample 0)");
}

TEST_F(PerturbedTest, CancelledRequestReturnsCancelled) {
  auto oracle = Make(ArgmaxSpec{}, 100);
  std::vector<double> theta(100 * 64, 0.5);
  CancelToken token;
  token.Cancel();
  const absl::StatusOr<PerturbedResult> r = RunPerturbed(
      executor_, Request(*oracle, theta, Noise(NoiseDistribution::kNormal, 1, 100)), &token);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace perturbd
