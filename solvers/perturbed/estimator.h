// One-pass Monte-Carlo accumulation of the perturbed estimators for one instance.
//
// The M samples of an instance are grouped into *units*: one sample, or one antithetic pair
// (samples 2k, 2k+1). A work item accumulates a contiguous range of units into an
// `EstimatorSums`; the sums of an instance's items are added in item order (fixed, so the
// result does not depend on threads) and `Finalize` turns them into estimates:
//
//   solution  ȳ = S_y / M                                S_y  = Σ_m y_m
//   value        S_v / M                                 S_v  = Σ_m ⟨y_m, η_m⟩
//   stderr_i  √(var_i / n) over the n unit means (n = M, or M/2 pairs)
//   jacobian  (S_yg − a ⊗ G + P) / (c ε)                 S_yg = Σ_m y_m ∇ν(Z_m)ᵀ, G = Σ_m ∇ν(Z_m)
//   vjp       (S_sg − a_s G + P_s) / (c ε)               S_sg = Σ_m ⟨y_m, g⟩ ∇ν(Z_m)
//     NONE:            a = 0,              P = 0,                       c = M
//     UNPERTURBED:     a = y*(θ),          P = 0,                       c = M
//     LEAVE_ONE_OUT:   a = ȳ,              P = 0,                       c = M − 1
//     LOO, antithetic: a = M ȳ / (M − 2),  P = Σ_pairs s_p g_pᵀ / (M−2), c = M
//       (s_p, g_p: the pair's sums of y and ∇ν; the pair is left out together:
//        y_m − ȳ_{−p(m)} with ȳ_{−p} = (S_y − s_p)/(M − 2))
//   multiplicative: column j of J (entry j of Jᵀg) is further divided by θ_j.
//   FY loss   MAXIMIZE (1/M) Σ ⟨η_m, y_m − t⟩, MINIMIZE (1/M) Σ ⟨η_m, t − y_m⟩
//   FY grad   MAXIMIZE ŷ − t, MINIMIZE t − ŷ, with ŷ = ȳ (additive) or (1/M) Σ w_m ⊙ y_m
//             (multiplicative, w_m = exp(εZ_m − ε²/2) = ∂η_m/∂θ).
#ifndef PERTURBD_SOLVERS_PERTURBED_ESTIMATOR_H_
#define PERTURBD_SOLVERS_PERTURBED_ESTIMATOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/perturbed/noise.h"
#include "solvers/perturbed/noise_select.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

// What a request computes, resolved once from the request.
struct EstimatorPlan {
  int64_t batch = 0;
  int64_t dimension = 0;
  int64_t samples = 0;              // M
  int64_t units = 0;                // M, or M/2 with antithetic pairs
  int64_t samples_per_unit = 1;     // 1 or 2
  int64_t blocks_per_instance = 1;  // work items per instance (depends on the request only)
  // The whole request is estimated at some 20 µs or less (estimator.cc, kMaxInlineWork): the
  // executor runs it on the submitting thread instead of waking a worker
  // (Executor::Job::run_inline).
  bool run_inline = false;
  // Units solved together by Oracle::SolveBatch (1: one unit at a time); blocks hold whole
  // groups of them, except the instance's last.
  int64_t units_per_group = 1;
  bool batch_solves = false;  // the oracle has a batched path (and the selector is not used)
  double epsilon = 1.0;
  NoiseDistribution distribution = NoiseDistribution::kNormal;
  Perturbation perturbation = Perturbation::kAdditive;
  VarianceReduction variance_reduction = VarianceReduction::kNone;
  DType dtype = DType::kFloat64;
  Sense sense = Sense::kMaximize;
  bool antithetic = false;
  bool jacobian = false;
  bool vjp = false;
  bool fenchel_young = false;
  bool solution_stderr = false;
  bool samples_out = false;
  // Derived needs.
  bool need_grad_sum = false;  // G
  bool need_pairs = false;     // unit-level sums of y (pair stderr, antithetic LOO)
  // k > 0: y_m comes from NoiseSelector (a forward, FY or GUMBEL VJP pass of an argmax / top-k
  // oracle with additive noise and no Jacobian, ∇ν then from NoiseSelector::GumbelGrad; FY only
  // with sparse targets, per instance).
  int64_t select_k = 0;

  static EstimatorPlan Make(const PerturbedRequest& request);
  // [first, last) units of work item `block` of an instance.
  std::pair<int64_t, int64_t> BlockUnits(int64_t block) const;
};

// Sums over a range of units of one instance. Sized once per request from the plan.
struct EstimatorSums {
  explicit EstimatorSums(const EstimatorPlan& plan);
  void Add(const EstimatorSums& other);

  std::vector<double> sum_y;      // d
  std::vector<double> sum_unit2;  // d, Σ over units of (unit mean)², for stderr
  std::vector<double> sum_wy;     // d, multiplicative FY
  std::vector<double> sum_grad;   // d, G
  std::vector<double> syg;        // d×d, jacobian
  std::vector<double> pair_syg;   // d×d, antithetic LOO jacobian
  std::vector<double> ssg;        // d, vjp
  std::vector<double> pair_ssg;   // d, antithetic LOO vjp
  double sum_s = 0.0;             // Σ ⟨y_m, g⟩
  double value = 0.0;
  double loss = 0.0;
  uint64_t clamped = 0;
};

// Per-thread scratch for accumulating one instance's units: noise, η, y, pair buffers and the
// oracle workspace. Nothing here allocates after construction.
class EstimatorScratch {
 public:
  EstimatorScratch(const EstimatorPlan& plan, const Oracle& oracle);

  // Accumulates units [first, last) of instance `b` into `sums`; writes y_m densely into
  // `samples_instance` + m·d when samples are asked for. Resets the oracle workspace first, so
  // the result depends on the item alone (warm-starting oracles). A failed solve (only oracles
  // with can_fail()) returns its status, naming the instance and sample.
  absl::Status AccumulateUnits(const EstimatorPlan& plan, const Oracle& oracle, int64_t b,
                               const NoiseRow& row_base, absl::Span<const double> theta,
                               absl::Span<const double> targets, absl::Span<const double> cotangent,
                               int64_t first, int64_t last, EstimatorSums& sums,
                               double* samples_instance);

  // y*(θ) of instance b for UNPERTURBED, densely into `out`; returns the clamped count.
  absl::StatusOr<int64_t> SolveUnperturbed(const Oracle& oracle, int64_t b,
                                           absl::Span<const double> theta, absl::Span<double> out);

 private:
  // One oracle call on slot j's η, through SolveChecked only for oracles that can fail.
  absl::StatusOr<int64_t> CallOracle(const Oracle& oracle, int64_t b, int64_t m, int j);
  // Slot j: the noise and η of sample row.sample, and y too when the selector takes it
  // (returns true then; the oracle is not called). `same_row`: an earlier sample of the same
  // instance went through this scratch's selector just before (NoiseSelector::Select).
  bool PrepareSample(const EstimatorPlan& plan, const NoiseRow& row, absl::Span<const double> theta,
                     int j, bool same_row);
  // Adds the pair-level sums of the antithetic pair in slots j0, j0 + 1 (pair_s = s of both,
  // the VJP's ⟨y, g⟩) to `sums`.
  void AccumulatePair(const EstimatorPlan& plan, int j0, double pair_s, EstimatorSums& sums);
  // Adds slot j's sample (y solved) to `sums`.
  void FinishSample(const EstimatorPlan& plan, int j, absl::Span<const double> targets,
                    absl::Span<const double> cotangent, EstimatorSums& sums, double* sample_out,
                    double* s_out);

  std::unique_ptr<OracleWorkspace> workspace_;
  std::unique_ptr<NoiseSelector> selector_;  // plan.select_k > 0
  // FY with the selector: the non-zero targets of the current instance, when there are at most
  // kMaxSparseTargets of them (else the full pass runs).
  static constexpr size_t kMaxSparseTargets = 64;
  std::vector<int32_t> target_support_;
  // Samples are prepared in groups of plan.units_per_group units before their oracle calls
  // (solved by one SolveBatch when plan.batch_solves); each sample of a group has a slot.
  std::vector<double> z_, pair_y_, pair_grad_;
  std::vector<std::vector<double>> eta_, w_, grad_;  // per slot; w_ multiplicative only,
                                                     // grad_ Jacobian / VJP only
  std::vector<SparseVector> y_;
  std::vector<char> selected_;
};

// Turns the summed `sums` of instance b into its outputs in `result`.
// `unperturbed_y` is y*(θ_b) (dense, d) when UNPERTURBED, else empty.
void FinalizeInstance(const EstimatorPlan& plan, int64_t b, const EstimatorSums& sums,
                      absl::Span<const double> theta, absl::Span<const double> targets,
                      absl::Span<const double> cotangent, absl::Span<const double> unperturbed_y,
                      PerturbedResult& result);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_ESTIMATOR_H_
