// Perturbed optimizers (Berthet et al., NeurIPS 2020): Monte-Carlo estimates of the smoothed
// solution y_ε(θ) = E[y*(η)], value F_ε(θ) = E[⟨y*(η), η⟩], Jacobian, vector–Jacobian
// product and Fenchel–Young loss of any `Oracle`, with
//   η = θ + εZ                       (ADDITIVE)
//   η = θ ⊙ exp(εZ − ε²/2)            (MULTIPLICATIVE)
// and the estimators of ../DESIGN.md §1 (all sums in float64, one pass over the samples, no
// M·d storage unless samples are asked for):
//   y_ε  ≈ (1/M) Σ y_m
//   J    ≈ Σ (y_m − a) ∇ν(Z_m)ᵀ / (c ε)           (column j also / θ_j when multiplicative)
//   Jᵀg  ≈ Σ ⟨y_m − a, g⟩ ∇ν(Z_m) / (c ε)
// with (a, c) = (0, M) for NONE, (ȳ, M−1) for LEAVE_ONE_OUT, (y*(θ), M) for UNPERTURBED;
// antithetic pairs with LEAVE_ONE_OUT leave the pair out together (see estimator.h).
//
// Usage:
//   Executor executor(/*num_threads=*/2);
//   ASSIGN_OR_RETURN(auto oracle, MakeOracle(ArgmaxSpec{}, d, std::nullopt));
//   PerturbedRequest request{.oracle = oracle.get(), .batch = B, .theta = theta, ...};
//   ASSIGN_OR_RETURN(PerturbedResult result, RunPerturbed(executor, request));
//
// Thread safety: `RunPerturbed` may be called from any number of threads at once; requests
// share the executor's workers. Lifetimes: the oracle and every span in the request must
// outlive the call (for `RunPerturbedAsync`, until `done` has been called).
#ifndef PERTURBD_SOLVERS_PERTURBED_PERTURBED_OPTIMIZER_H_
#define PERTURBD_SOLVERS_PERTURBED_PERTURBED_OPTIMIZER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/noise.h"

namespace perturbd {

enum class Perturbation { kAdditive, kMultiplicative };
enum class VarianceReduction { kNone, kLeaveOneOut, kUnperturbed };
// The dtype of θ: η is rounded to it before the oracle sees it (DESIGN §5).
enum class DType { kFloat32, kFloat64 };

struct NoiseOptions {
  NoiseDistribution distribution = NoiseDistribution::kNormal;
  double epsilon = 1.0;      // ε > 0
  uint32_t num_samples = 1;  // M ≥ 1 (even when antithetic)
  uint64_t seed = 0;         // any value; 0 is an ordinary seed
  // Empty, or exactly one seed per instance: then instance b's noise depends on
  // (instance_seeds[b], m, i) only, not on b.
  std::vector<uint64_t> instance_seeds;
  Perturbation perturbation = Perturbation::kAdditive;
  // nullopt: LEAVE_ONE_OUT when there are ≥ 2 independent draws, NONE otherwise.
  std::optional<VarianceReduction> variance_reduction;
  bool antithetic = false;  // samples 2k and 2k+1 form a pair (Z, −Z) / (U, 1−U)
};

// The variance reduction a request gets once defaults are resolved.
VarianceReduction EffectiveVarianceReduction(const NoiseOptions& noise);

struct PerturbedRequest {
  const Oracle* oracle = nullptr;
  int64_t batch = 1;               // B ≥ 1
  absl::Span<const double> theta;  // [B, d], row-major
  DType dtype = DType::kFloat64;
  NoiseOptions noise;
  bool jacobian = false;               // J, [B, d, d], jacobian[b,i,j] = ∂y_i/∂θ_j
  bool solution_stderr = false;        // per-coordinate standard error of y_ε, [B, d]
  bool samples = false;                // the y_m, [B, M, d]
  absl::Span<const double> targets;    // empty or [B, d]: Fenchel–Young loss and gradient
  absl::Span<const double> cotangent;  // empty or [B, d]: VJP Jᵀg
};

struct PerturbedResult {
  int64_t batch = 0;
  int64_t dimension = 0;
  std::vector<double> solution;         // [B, d]
  std::vector<double> value;            // [B]
  std::vector<double> jacobian;         // [B, d, d] when asked
  std::vector<double> loss;             // [B] when targets are given
  std::vector<double> loss_grad;        // [B, d] when targets are given
  std::vector<double> solution_stderr;  // [B, d] when asked
  std::vector<double> samples;          // [B, M, d] when asked
  std::vector<double> grad_theta;       // [B, d] when a cotangent is given
  uint64_t solves = 0;                  // oracle calls, including UNPERTURBED's extra solve
  uint64_t clamped_costs = 0;           // negative perturbed costs clamped by Dijkstra oracles
  uint32_t threads = 0;                 // worker threads that took part
  double seconds = 0.0;                 // wall time from start of work to completion
  const char* backend = "cpu";          // "cpu", or "gpu" from GpuBackend::Run
};

// Checks everything about a request that does not depend on the wire encoding: ε, M,
// antithetic parity, instance seed count, span sizes, finite θ/targets/cotangent,
// MULTIPLICATIVE with zero θ when a Jacobian or VJP is asked, M ≥ 2 draws for stderr and
// LEAVE_ONE_OUT. Errors are INVALID_ARGUMENT naming the wire field (`noise.epsilon`, ...).
absl::Status ValidatePerturbedRequest(const PerturbedRequest& request);

// The index of the first element of x that is NaN or of magnitude above `limit`, or x.size()
// when there is none: a branch-free pass first (it vectorises; valid tensors, the common case,
// cost one compare per element), the search only when that pass finds one.
size_t FirstBeyond(absl::Span<const double> x, double limit);

// Total B·M·d: the work measure the server's limits bound.
double PerturbedWork(const PerturbedRequest& request);

// Runs the request on the executor and blocks until done. Honours `cancel` between chunks
// (CANCELLED or DEADLINE_EXCEEDED).
absl::StatusOr<PerturbedResult> RunPerturbed(Executor& executor, const PerturbedRequest& request,
                                             const CancelToken* cancel = nullptr);

// Non-blocking form: validates, queues the work and returns. `done` is called exactly once,
// on a worker thread, with the result; inline, before this returns, when validation fails or
// the request is small enough to run on the calling thread (EstimatorPlan::run_inline).
void RunPerturbedAsync(Executor& executor, const PerturbedRequest& request,
                       std::shared_ptr<const CancelToken> cancel,
                       std::function<void(absl::StatusOr<PerturbedResult>)> done);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_PERTURBED_OPTIMIZER_H_
