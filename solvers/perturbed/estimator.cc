#include "solvers/perturbed/estimator.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace perturbd {
namespace {

// Aim for this many work items per request (enough to balance a few threads), but no item
// smaller than kMinItemWork elementary operations (scheduling overhead), and no more partial
// Jacobian sums in memory than kMaxPartialValues. All of it depends on the request only. A
// request of at most kMaxInlineWork in all runs on the submitting thread
// (EstimatorPlan::run_inline): oracles aim at about 1 ns per unit of cost_per_solve, so that
// is some 20 µs, less than waking a worker on a VM, and short enough for a gRPC thread.
constexpr int64_t kTargetItems = 64;
constexpr double kMinItemWork = 50000.0;
constexpr double kMaxPartialValues = 1 << 24;
constexpr double kMaxInlineWork = 20000.0;

// Element-wise loops (no reductions, no contraction: the same bits at any vector width) get
// AVX-512 / AVX2 clones on x86-64, chosen at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PERTURBD_ESTIMATOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PERTURBD_ESTIMATOR_CLONES
#endif

// η = θ + εZ or θ ⊙ w with w = exp(εZ − ε²/2), rounded to θ's dtype; one loop per case so
// that each vectorises.
PERTURBD_ESTIMATOR_CLONES
void FormEta(const EstimatorPlan& plan, const double* __restrict theta, const double* __restrict z,
             double* __restrict w, double* __restrict eta, size_t d) {
  const double eps = plan.epsilon;
  const bool f32 = plan.dtype == DType::kFloat32;
  if (plan.perturbation == Perturbation::kAdditive) {
    if (f32) {
#pragma omp simd
      for (size_t i = 0; i < d; ++i) eta[i] = AdditiveEta(theta[i], eps, z[i], true);
    } else {
#pragma omp simd
      for (size_t i = 0; i < d; ++i) eta[i] = AdditiveEta(theta[i], eps, z[i], false);
    }
    return;
  }
  const double shift = 0.5 * eps * eps;
  for (size_t i = 0; i < d; ++i) w[i] = std::exp(eps * z[i] - shift);
  if (f32) {
#pragma omp simd
    for (size_t i = 0; i < d; ++i) eta[i] = static_cast<float>(theta[i] * w[i]);
  } else {
#pragma omp simd
    for (size_t i = 0; i < d; ++i) eta[i] = theta[i] * w[i];
  }
}

PERTURBD_ESTIMATOR_CLONES
void AddScaled(absl::Span<double> acc, double scale, absl::Span<const double> x) {
  double* __restrict a = acc.data();
  const double* __restrict v = x.data();
  const size_t n = acc.size();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) a[i] += scale * v[i];
}

// ⟨a, b⟩ with eight fixed partial sums (lane l adds the terms i ≡ l mod 8 in order, then the
// eight are added in order): the same bits on every CPU and for any thread count, and no
// single latency chain of d additions.
double DotVector(const double* __restrict a, const double* __restrict b, size_t n) {
  double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
#pragma omp simd
    for (size_t l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (size_t l = 0; i + l < n; ++l) acc[l] += a[i + l] * b[i + l];
  double s = 0.0;
  for (size_t l = 0; l < 8; ++l) s += acc[l];
  return s;
}

// acc += scale·x and sum += x in one pass (the same per-element arithmetic as two AddScaled).
PERTURBD_ESTIMATOR_CLONES
void AddScaledAndSum(absl::Span<double> acc, absl::Span<double> sum, double scale,
                     absl::Span<const double> x) {
  double* __restrict a = acc.data();
  double* __restrict t = sum.data();
  const double* __restrict v = x.data();
  const size_t n = acc.size();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    a[i] += scale * v[i];
    t[i] += 1.0 * v[i];
  }
}

void AddTo(std::vector<double>& acc, const std::vector<double>& x) {
  for (size_t i = 0; i < acc.size(); ++i) acc[i] += x[i];
}

// DotVector(a, b, n) where a is zero outside `support` (ascending): the same partial sums
// term for term, without the zero terms. A zero term a_i·b_i = ±0 (b finite) leaves a partial
// sum as it is: they start at +0 and a sum of doubles is never −0 unless both terms are.
double DotVectorSparse(const double* a, const double* b, absl::Span<const int32_t> support) {
  double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  for (const int32_t i : support) acc[i % 8] += a[i] * b[i];
  double s = 0.0;
  for (size_t l = 0; l < 8; ++l) s += acc[l];
  return s;
}

// max |x_i| (x finite: validated), vectorised: a maximum is exact in any order. Once per FY
// request over all of θ (64,000 values on the e2e shapes: the scalar loop took ≈ 50 µs).
PERTURBD_ESTIMATOR_CLONES
double MaxAbs(const double* __restrict x, size_t n) {
  double max_abs = 0.0;
#pragma omp simd reduction(max : max_abs)
  for (size_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  return max_abs;
}

// y_hat − targets (MAXIMIZE) or targets − y_hat (MINIMIZE), y_hat = src / divisor: one loop per
// sense so that each vectorises (x / 1.0 is x: the additive case passes the solution).
PERTURBD_ESTIMATOR_CLONES
void FenchelYoungGrad(const double* __restrict src, double divisor,
                      const double* __restrict targets, bool maximize, size_t n,
                      double* __restrict grad) {
  if (maximize) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) grad[i] = src[i] / divisor - targets[i];
  } else {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) grad[i] = targets[i] - src[i] / divisor;
  }
}

// The additive VJP without antithetic pairs: g_j = (ssg_j − a_s·sum_grad_j)·scale, or
// ssg_j·scale without a baseline (sum_grad null) — FinalizeInstance's general loop term for
// term, vectorised.
PERTURBD_ESTIMATOR_CLONES
void AdditiveVjp(const double* __restrict ssg, const double* __restrict sum_grad, double a_s,
                 double scale, size_t n, double* __restrict g) {
  if (sum_grad == nullptr) {
#pragma omp simd
    for (size_t j = 0; j < n; ++j) g[j] = ssg[j] * scale;
  } else {
#pragma omp simd
    for (size_t j = 0; j < n; ++j) g[j] = (ssg[j] - a_s * sum_grad[j]) * scale;
  }
}

// True when every η = θ + εZ of the request is finite, Z within the float transforms' range
// (|Z| < 20): the FY dot product may then skip the zero targets (DotVectorSparse) without
// losing a 0·∞ = NaN that the full pass would produce.
bool EtaStaysFinite(const PerturbedRequest& request) {
  return MaxAbs(request.theta.data(), request.theta.size()) + 20.0 * request.noise.epsilon <
         1e38;  // below FLT_MAX, for FLOAT32 η
}

}  // namespace

EstimatorPlan EstimatorPlan::Make(const PerturbedRequest& request) {
  EstimatorPlan plan;
  const Oracle& oracle = *request.oracle;
  plan.batch = request.batch;
  plan.dimension = oracle.dimension();
  plan.samples = request.noise.num_samples;
  plan.antithetic = request.noise.antithetic;
  plan.samples_per_unit = plan.antithetic ? 2 : 1;
  plan.units = plan.samples / plan.samples_per_unit;
  plan.epsilon = request.noise.epsilon;
  plan.distribution = request.noise.distribution;
  plan.perturbation = request.noise.perturbation;
  plan.variance_reduction = EffectiveVarianceReduction(request.noise);
  plan.dtype = request.dtype;
  plan.sense = oracle.sense();
  plan.jacobian = request.jacobian;
  plan.vjp = !request.cotangent.empty();
  plan.fenchel_young = !request.targets.empty();
  plan.solution_stderr = request.solution_stderr;
  plan.samples_out = request.samples;
  const bool derivative = plan.jacobian || plan.vjp;
  plan.need_grad_sum = derivative && plan.variance_reduction != VarianceReduction::kNone;
  plan.need_pairs = plan.antithetic &&
                    (plan.solution_stderr ||
                     (derivative && plan.variance_reduction == VarianceReduction::kLeaveOneOut));

  // The selector pays off from a few dozen coordinates; below that a full pass is as cheap.
  // With a VJP it gives y and ∇ν = 1 + ln u from the words it drew (NoiseSelector::GumbelGrad):
  // worth it for GUMBEL, whose ∇ν takes one logarithm of the two of Z; NORMAL's ∇ν is Z itself,
  // so a full pass is as cheap. A Jacobian takes the full pass.
  constexpr int64_t kMinSelectDimension = 64;
  const int64_t k = oracle.selection_k();
  if (k > 0 && k <= static_cast<int64_t>(NoiseSelector::kMaxK) && k < plan.dimension &&
      plan.dimension >= kMinSelectDimension && !plan.jacobian &&
      (!plan.vjp || plan.distribution == NoiseDistribution::kGumbel) &&
      plan.perturbation == Perturbation::kAdditive && plan.epsilon >= 0.0 &&
      (!plan.fenchel_young || EtaStaysFinite(request))) {
    plan.select_k = k;
  }

  // Oracles with a batched path solve whole groups of units at once (antithetic pairs stay in
  // one group).
  if (!oracle.can_fail() && plan.select_k == 0) {
    const int64_t width = std::min(oracle.batch_width(), Oracle::kMaxBatchWidth);
    if (width > 1) {
      plan.batch_solves = true;
      plan.units_per_group = std::max<int64_t>(1, width / plan.samples_per_unit);
    }
  }

  const double d = static_cast<double>(plan.dimension);
  double unit_work = oracle.cost_per_solve() + 8.0 * d;
  if (plan.jacobian) unit_work += static_cast<double>(oracle.max_nonzeros()) * d;
  unit_work *= static_cast<double>(plan.samples_per_unit);
  int64_t blocks = (kTargetItems + plan.batch - 1) / plan.batch;
  const int64_t groups = (plan.units + plan.units_per_group - 1) / plan.units_per_group;
  blocks = std::min<int64_t>(blocks, groups);
  blocks = std::min<int64_t>(
      blocks, std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(plan.units) *
                                                        unit_work / kMinItemWork)));
  if (plan.jacobian) {
    const double per_block = static_cast<double>(plan.batch) * d * d * (plan.need_pairs ? 2 : 1);
    blocks = std::min<int64_t>(
        blocks, std::max<int64_t>(1, static_cast<int64_t>(kMaxPartialValues / per_block)));
  }
  plan.blocks_per_instance = std::max<int64_t>(1, blocks);
  plan.run_inline = static_cast<double>(plan.batch) * static_cast<double>(plan.units) * unit_work <=
                    kMaxInlineWork;
  return plan;
}

std::pair<int64_t, int64_t> EstimatorPlan::BlockUnits(int64_t block) const {
  // Whole groups per block: group boundaries split as evenly as blocks allow.
  const int64_t groups = (units + units_per_group - 1) / units_per_group;
  const int64_t first = block * groups / blocks_per_instance * units_per_group;
  const int64_t last = (block + 1) * groups / blocks_per_instance * units_per_group;
  return {std::min(first, units), std::min(last, units)};
}

EstimatorSums::EstimatorSums(const EstimatorPlan& plan) {
  const size_t d = static_cast<size_t>(plan.dimension);
  const bool loo = plan.variance_reduction == VarianceReduction::kLeaveOneOut;
  sum_y.assign(d, 0.0);
  if (plan.solution_stderr) sum_unit2.assign(d, 0.0);
  if (plan.fenchel_young && plan.perturbation == Perturbation::kMultiplicative) {
    sum_wy.assign(d, 0.0);
  }
  if (plan.need_grad_sum) sum_grad.assign(d, 0.0);
  if (plan.jacobian) {
    syg.assign(d * d, 0.0);
    if (plan.need_pairs && loo) pair_syg.assign(d * d, 0.0);
  }
  if (plan.vjp) {
    ssg.assign(d, 0.0);
    if (plan.need_pairs && loo) pair_ssg.assign(d, 0.0);
  }
}

void EstimatorSums::Add(const EstimatorSums& o) {
  AddTo(sum_y, o.sum_y);
  AddTo(sum_unit2, o.sum_unit2);
  AddTo(sum_wy, o.sum_wy);
  AddTo(sum_grad, o.sum_grad);
  AddTo(syg, o.syg);
  AddTo(pair_syg, o.pair_syg);
  AddTo(ssg, o.ssg);
  AddTo(pair_ssg, o.pair_ssg);
  sum_s += o.sum_s;
  value += o.value;
  loss += o.loss;
  clamped += o.clamped;
}

EstimatorScratch::EstimatorScratch(const EstimatorPlan& plan, const Oracle& oracle)
    : workspace_(oracle.NewWorkspace()), z_(static_cast<size_t>(plan.dimension)) {
  const size_t d = static_cast<size_t>(plan.dimension);
  if (plan.select_k > 0) {
    selector_ = std::make_unique<NoiseSelector>(d, static_cast<size_t>(plan.select_k));
  }
  const size_t slots = static_cast<size_t>(plan.units_per_group * plan.samples_per_unit);
  const bool derivative = plan.jacobian || plan.vjp;
  eta_.assign(slots, std::vector<double>(d));
  w_.assign(slots, std::vector<double>(
                       plan.perturbation == Perturbation::kMultiplicative ? d : size_t{0}));
  grad_.assign(slots, std::vector<double>(derivative ? d : size_t{0}));
  y_.assign(slots, SparseVector(plan.dimension));
  selected_.assign(slots, 0);
  if (plan.need_pairs) {
    pair_y_.assign(d, 0.0);
    pair_grad_.resize(d);
  }
}

absl::StatusOr<int64_t> EstimatorScratch::CallOracle(const Oracle& oracle, int64_t b, int64_t m,
                                                     int j) {
  const absl::Span<double> eta = absl::MakeSpan(eta_[static_cast<size_t>(j)]);
  SparseVector& y = y_[static_cast<size_t>(j)];
  if (!oracle.can_fail()) return oracle.Solve(eta, *workspace_, y);
  absl::StatusOr<int64_t> clamped = oracle.SolveChecked(eta, *workspace_, y);
  if (clamped.ok()) return clamped;
  const std::string where = m < 0 ? absl::StrCat(" (instance ", b, ", unperturbed θ)")
                                  : absl::StrCat(" (instance ", b, ", sample ", m, ")");
  return absl::Status(clamped.status().code(), absl::StrCat(clamped.status().message(), where));
}

bool EstimatorScratch::PrepareSample(const EstimatorPlan& plan, const NoiseRow& row,
                                     absl::Span<const double> theta, int j, bool same_row) {
  const size_t slot = static_cast<size_t>(j);
  // ∇ν only feeds the Jacobian and the VJP: a plain forward pass skips it.
  const bool select = selector_ != nullptr && row.single &&
                      (!plan.fenchel_young || target_support_.size() <= kMaxSparseTargets);
  if (select) {
    // The same y (and η where y or the targets are non-zero) without most of the noise
    // transforms.
    selector_->Select(row, theta, plan.epsilon, plan.dtype == DType::kFloat32, plan.sense, y_[slot],
                      eta_[slot].data(), target_support_, same_row);
    if (!grad_[slot].empty()) selector_->GumbelGrad(absl::MakeSpan(grad_[slot]));  // plan: GUMBEL
    return true;
  }
  // η in θ's dtype (DESIGN §5): computed in double, rounded once.
  if (row.single && plan.perturbation == Perturbation::kAdditive) {
    FillNoiseEta(row, theta.data(), plan.epsilon, plan.dtype == DType::kFloat32,
                 absl::MakeSpan(eta_[slot]), absl::MakeSpan(grad_[slot]));
    return false;
  }
  FillNoise(row, absl::MakeSpan(z_), absl::MakeSpan(grad_[slot]));
  FormEta(plan, theta.data(), z_.data(), w_[slot].data(), eta_[slot].data(),
          static_cast<size_t>(plan.dimension));
  return false;
}

void EstimatorScratch::FinishSample(const EstimatorPlan& plan, int j,
                                    absl::Span<const double> targets,
                                    absl::Span<const double> cotangent, EstimatorSums& sums,
                                    double* sample_out, double* s_out) {
  const size_t d = static_cast<size_t>(plan.dimension);
  const size_t slot = static_cast<size_t>(j);
  const SparseVector& y = y_[slot];
  const std::vector<double>& eta = eta_[slot];
  const std::vector<double>& grad = grad_[slot];
  const double y_dot_eta = y.Dot(eta);
  sums.value += y_dot_eta;
  for (size_t k = 0; k < y.size(); ++k) sums.sum_y[y.index(k)] += y.value(k);
  if (plan.solution_stderr && !plan.antithetic) {
    for (size_t k = 0; k < y.size(); ++k) sums.sum_unit2[y.index(k)] += y.value(k) * y.value(k);
  }
  if (plan.fenchel_young) {
    const double t_dot_eta = selected_[slot]
                                 ? DotVectorSparse(targets.data(), eta.data(), target_support_)
                                 : DotVector(targets.data(), eta.data(), d);
    sums.loss += plan.sense == Sense::kMaximize ? y_dot_eta - t_dot_eta : t_dot_eta - y_dot_eta;
    if (plan.perturbation == Perturbation::kMultiplicative) {
      const std::vector<double>& w = w_[slot];
      for (size_t k = 0; k < y.size(); ++k) sums.sum_wy[y.index(k)] += w[y.index(k)] * y.value(k);
    }
  }
  if (plan.need_grad_sum && !plan.vjp) AddScaled(absl::MakeSpan(sums.sum_grad), 1.0, grad);
  if (plan.jacobian) {
    for (size_t k = 0; k < y.size(); ++k) {
      AddScaled(absl::MakeSpan(sums.syg).subspan(static_cast<size_t>(y.index(k)) * d, d),
                y.value(k), grad);
    }
  }
  if (plan.vjp) {
    const double s = y.Dot(cotangent);
    if (plan.need_grad_sum) {
      AddScaledAndSum(absl::MakeSpan(sums.ssg), absl::MakeSpan(sums.sum_grad), s, grad);
    } else {
      AddScaled(absl::MakeSpan(sums.ssg), s, grad);
    }
    sums.sum_s += s;
    *s_out = s;
  }
  if (sample_out != nullptr) y.ToDense(absl::MakeSpan(sample_out, d));
}

void EstimatorScratch::AccumulatePair(const EstimatorPlan& plan, int j0, double pair_s,
                                      EstimatorSums& sums) {
  // Pair-level sums: s_p = y_{2k} + y_{2k+1} (dense scratch, touched entries only),
  // g_p = ∇ν(Z_{2k}) + ∇ν(Z_{2k+1}).
  const size_t d = static_cast<size_t>(plan.dimension);
  const SparseVector* pair[2] = {&y_[static_cast<size_t>(j0)], &y_[static_cast<size_t>(j0 + 1)]};
  for (const SparseVector* y : pair) {
    for (size_t k = 0; k < y->size(); ++k) pair_y_[y->index(k)] += y->value(k);
  }
  const bool pair_grad = plan.variance_reduction == VarianceReduction::kLeaveOneOut &&
                         (plan.jacobian || plan.vjp);
  if (pair_grad) {
    const std::vector<double>& g0 = grad_[static_cast<size_t>(j0)];
    const std::vector<double>& g1 = grad_[static_cast<size_t>(j0 + 1)];
    for (size_t i = 0; i < d; ++i) pair_grad_[i] = g0[i] + g1[i];
    if (plan.vjp) AddScaled(absl::MakeSpan(sums.pair_ssg), pair_s, pair_grad_);
  }
  // Visit the union of both supports once: an entry is zeroed after its visit.
  for (const SparseVector* y : pair) {
    for (size_t k = 0; k < y->size(); ++k) {
      const size_t i = static_cast<size_t>(y->index(k));
      const double v = pair_y_[i];
      if (v == 0.0) continue;
      pair_y_[i] = 0.0;
      if (plan.solution_stderr) sums.sum_unit2[i] += 0.25 * v * v;
      if (pair_grad && plan.jacobian) {
        AddScaled(absl::MakeSpan(sums.pair_syg).subspan(i * d, d), v, pair_grad_);
      }
    }
  }
}

absl::Status EstimatorScratch::AccumulateUnits(const EstimatorPlan& plan, const Oracle& oracle,
                                               int64_t b, const NoiseRow& row_base,
                                               absl::Span<const double> theta,
                                               absl::Span<const double> targets,
                                               absl::Span<const double> cotangent, int64_t first,
                                               int64_t last, EstimatorSums& sums,
                                               double* samples_instance) {
  const size_t d = static_cast<size_t>(plan.dimension);
  const int64_t spu = plan.samples_per_unit;
  workspace_->Reset();
  if (selector_ != nullptr && plan.fenchel_young) {
    // The non-zero targets of this instance: with few of them (one-hot, k-hot labels) the
    // selector computes η there too and the FY dot product skips the rest.
    target_support_.clear();
    for (size_t i = 0; i < d && target_support_.size() <= kMaxSparseTargets; ++i) {
      if (targets[i] != 0.0) target_support_.push_back(static_cast<int32_t>(i));
    }
  }
  absl::Span<double> batch_eta[Oracle::kMaxBatchWidth];
  SparseVector* batch_y[Oracle::kMaxBatchWidth];
  for (int64_t u0 = first; u0 < last; u0 += plan.units_per_group) {
    // The group's noise and η, then its oracle calls, then its sums in sample order: the
    // same arithmetic sample by sample as one sample at a time.
    const int64_t u1 = std::min(last, u0 + plan.units_per_group);
    const int n = static_cast<int>((u1 - u0) * spu);
    const int64_t m0 = u0 * spu;
    int to_solve = 0;
    for (int j = 0; j < n; ++j) {
      NoiseRow row = row_base;
      row.sample = static_cast<uint32_t>(m0 + j);
      // Every call after the first of this instance's units is another sample of its row.
      selected_[static_cast<size_t>(j)] = PrepareSample(plan, row, theta, j, u0 > first || j > 0);
      if (selected_[static_cast<size_t>(j)]) continue;
      if (plan.batch_solves) {
        batch_eta[to_solve] = absl::MakeSpan(eta_[static_cast<size_t>(j)]);
        batch_y[to_solve] = &y_[static_cast<size_t>(j)];
        ++to_solve;
      } else {
        const absl::StatusOr<int64_t> clamped = CallOracle(oracle, b, m0 + j, j);
        if (!clamped.ok()) return clamped.status();
        sums.clamped += static_cast<uint64_t>(*clamped);
      }
    }
    if (to_solve > 0) {
      sums.clamped += static_cast<uint64_t>(oracle.SolveBatch(
          absl::MakeConstSpan(batch_eta, static_cast<size_t>(to_solve)), *workspace_,
          absl::MakeConstSpan(batch_y, static_cast<size_t>(to_solve))));
    }

    for (int64_t u = u0; u < u1; ++u) {
      const int j0 = static_cast<int>((u - u0) * spu);
      double s[2] = {0.0, 0.0};
      for (int64_t p = 0; p < spu; ++p) {
        const int64_t m = u * spu + p;
        double* sample_out =
            samples_instance != nullptr ? samples_instance + static_cast<size_t>(m) * d : nullptr;
        FinishSample(plan, j0 + static_cast<int>(p), targets, cotangent, sums, sample_out, &s[p]);
      }
      if (plan.need_pairs) AccumulatePair(plan, j0, s[0] + s[1], sums);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EstimatorScratch::SolveUnperturbed(const Oracle& oracle, int64_t b,
                                                           absl::Span<const double> theta,
                                                           absl::Span<double> out) {
  std::copy(theta.begin(), theta.end(), eta_[0].begin());
  workspace_->Reset();
  absl::StatusOr<int64_t> clamped = CallOracle(oracle, b, -1, 0);
  if (clamped.ok()) y_[0].ToDense(out);
  return clamped;
}

void FinalizeInstance(const EstimatorPlan& plan, int64_t b, const EstimatorSums& sums,
                      absl::Span<const double> theta, absl::Span<const double> targets,
                      absl::Span<const double> cotangent, absl::Span<const double> unperturbed_y,
                      PerturbedResult& result) {
  const size_t d = static_cast<size_t>(plan.dimension);
  const double M = static_cast<double>(plan.samples);
  const size_t row = static_cast<size_t>(b) * d;
  double* __restrict solution = result.solution.data() + row;
  const double* __restrict sum_y = sums.sum_y.data();
  // Vectorised (GCC's -O2 cost model leaves a scalar divsd per element otherwise); a division
  // rounds the same at any width.
#pragma omp simd
  for (size_t i = 0; i < d; ++i) solution[i] = sum_y[i] / M;
  result.value[b] = sums.value / M;

  if (plan.solution_stderr) {
    const double n = static_cast<double>(plan.units);
    double* se = result.solution_stderr.data() + row;
    for (size_t i = 0; i < d; ++i) {
      const double mean = solution[i];
      const double var = std::max(0.0, (sums.sum_unit2[i] - n * mean * mean) / (n - 1.0));
      se[i] = std::sqrt(var / n);
    }
  }

  if (plan.jacobian || plan.vjp) {
    // (a, c, pair scale) of the header comment.
    std::vector<double> a;  // empty for NONE
    double c = M;
    double pair_scale = 0.0;
    switch (plan.variance_reduction) {
      case VarianceReduction::kNone:
        break;
      case VarianceReduction::kUnperturbed:
        a.assign(unperturbed_y.begin(), unperturbed_y.end());
        break;
      case VarianceReduction::kLeaveOneOut:
        a.assign(solution, solution + d);
        if (plan.antithetic) {
          for (double& v : a) v *= M / (M - 2.0);
          pair_scale = 1.0 / (M - 2.0);
        } else {
          c = M - 1.0;
        }
        break;
    }
    const double scale = 1.0 / (c * plan.epsilon);
    const bool multiplicative = plan.perturbation == Perturbation::kMultiplicative;
    if (plan.jacobian) {
      double* J = result.jacobian.data() + static_cast<size_t>(b) * d * d;
      for (size_t i = 0; i < d; ++i) {
        const double ai = a.empty() ? 0.0 : a[i];
        for (size_t j = 0; j < d; ++j) {
          double v = sums.syg[i * d + j];
          if (!a.empty()) v -= ai * sums.sum_grad[j];
          if (pair_scale != 0.0) v += pair_scale * sums.pair_syg[i * d + j];
          v *= scale;
          if (multiplicative) v /= theta[j];
          J[i * d + j] = v;
        }
      }
    }
    if (plan.vjp) {
      double a_s = 0.0;
      for (size_t i = 0; i < a.size(); ++i) a_s += a[i] * cotangent[i];
      double* g = result.grad_theta.data() + row;
      if (!multiplicative && pair_scale == 0.0) {
        AdditiveVjp(sums.ssg.data(), a.empty() ? nullptr : sums.sum_grad.data(), a_s, scale, d, g);
      } else {
        for (size_t j = 0; j < d; ++j) {
          double v = sums.ssg[j];
          if (!a.empty()) v -= a_s * sums.sum_grad[j];
          if (pair_scale != 0.0) v += pair_scale * sums.pair_ssg[j];
          v *= scale;
          if (multiplicative) v /= theta[j];
          g[j] = v;
        }
      }
    }
  }

  if (plan.fenchel_young) {
    result.loss[b] = sums.loss / M;
    double* grad = result.loss_grad.data() + row;
    const bool multiplicative = plan.perturbation == Perturbation::kMultiplicative;
    FenchelYoungGrad(multiplicative ? sums.sum_wy.data() : solution, multiplicative ? M : 1.0,
                     targets.data(), plan.sense == Sense::kMaximize, d, grad);
  }
}

}  // namespace perturbd
