#include "solvers/perturbed/perturbed_optimizer.h"

#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/vector_clones.h"
#include "solvers/perturbed/estimator.h"

namespace perturbd {
namespace {

int64_t IndependentDraws(const NoiseOptions& noise) {
  return noise.antithetic ? noise.num_samples / 2 : noise.num_samples;
}

absl::Status CheckFinite(absl::Span<const double> x, absl::string_view field) {
  const size_t k = FirstBeyond(x, std::numeric_limits<double>::max());
  if (k == x.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": element ", k, " is ", x[k], "; values must be finite"));
}

absl::Status CheckOptionalTensor(absl::Span<const double> x, size_t expected,
                                 absl::string_view name) {
  if (x.empty()) return absl::OkStatus();
  if (x.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(name, ".shape: must equal theta's shape (",
                                                   expected, " values), got ", x.size()));
  }
  return CheckFinite(x, absl::StrCat(name, ".data"));
}

// Shared state of one request in flight: lives until `finish` has run.
struct RunState {
  PerturbedRequest request;
  std::shared_ptr<const CancelToken> cancel;
  EstimatorPlan plan;
  PerturbedResult result;
  std::vector<std::optional<EstimatorSums>> partials;      // [B · blocks], nb > 1 only
  std::unique_ptr<std::atomic<int64_t>[]> blocks_done;     // [B]
  std::vector<std::unique_ptr<EstimatorScratch>> scratch;  // one per worker
  std::atomic<uint64_t> clamped{0};
  std::chrono::steady_clock::time_point start;
  std::function<void(absl::StatusOr<PerturbedResult>)> done;

  NoiseRow RowBase(int64_t b) const {
    NoiseRow row;
    const auto& seeds = request.noise.instance_seeds;
    row.key = seeds.empty() ? request.noise.seed : seeds[static_cast<size_t>(b)];
    row.instance = seeds.empty() ? static_cast<uint32_t>(b) : 0u;
    row.antithetic = request.noise.antithetic;
    row.distribution = request.noise.distribution;
    // Float transforms for every dtype, so that Z depends on (seed, b, m, i, distribution)
    // only, as DESIGN §2 requires (design-notes.md, Noise).
    row.single = true;
    return row;
  }

  absl::Span<const double> Row(absl::Span<const double> x, int64_t b) const {
    if (x.empty()) return x;
    const size_t d = static_cast<size_t>(plan.dimension);
    return x.subspan(static_cast<size_t>(b) * d, d);
  }

  absl::Status RunItem(int64_t item, int worker) {
    const int64_t b = item / plan.blocks_per_instance;
    const int64_t block = item % plan.blocks_per_instance;
    auto& ws = scratch[static_cast<size_t>(worker)];
    if (ws == nullptr) ws = std::make_unique<EstimatorScratch>(plan, *request.oracle);
    const auto [first, last] = plan.BlockUnits(block);
    const absl::Span<const double> theta = Row(request.theta, b);
    const absl::Span<const double> targets = Row(request.targets, b);
    const absl::Span<const double> cotangent = Row(request.cotangent, b);
    double* samples = plan.samples_out ? result.samples.data() +
                                             static_cast<size_t>(b) * plan.samples * plan.dimension
                                       : nullptr;
    EstimatorSums sums(plan);
    RETURN_IF_ERROR(ws->AccumulateUnits(plan, *request.oracle, b, RowBase(b), theta, targets,
                                        cotangent, first, last, sums, samples));
    if (plan.blocks_per_instance > 1) {
      partials[static_cast<size_t>(item)].emplace(std::move(sums));
      if (blocks_done[b].fetch_add(1, std::memory_order_acq_rel) + 1 != plan.blocks_per_instance) {
        return absl::OkStatus();
      }
      // Last block of instance b: add the partial sums in block order (deterministic).
      const size_t base = static_cast<size_t>(b * plan.blocks_per_instance);
      EstimatorSums total = std::move(*partials[base]);
      partials[base].reset();
      for (int64_t k = 1; k < plan.blocks_per_instance; ++k) {
        total.Add(*partials[base + static_cast<size_t>(k)]);
        partials[base + static_cast<size_t>(k)].reset();
      }
      return Finish(b, *ws, total);
    }
    return Finish(b, *ws, sums);
  }

  absl::Status Finish(int64_t b, EstimatorScratch& ws, const EstimatorSums& sums) {
    const absl::Span<const double> theta = Row(request.theta, b);
    std::vector<double> unperturbed;
    uint64_t clamped_here = sums.clamped;
    if (plan.variance_reduction == VarianceReduction::kUnperturbed && (plan.jacobian || plan.vjp)) {
      unperturbed.resize(static_cast<size_t>(plan.dimension));
      ASSIGN_OR_RETURN(const int64_t clamped_y0,
                       ws.SolveUnperturbed(*request.oracle, b, theta, absl::MakeSpan(unperturbed)));
      clamped_here += static_cast<uint64_t>(clamped_y0);
    }
    clamped.fetch_add(clamped_here, std::memory_order_relaxed);
    FinalizeInstance(plan, b, sums, theta, Row(request.targets, b), Row(request.cotangent, b),
                     unperturbed, result);
    return absl::OkStatus();
  }

  void Complete(absl::Status status) {
    if (!status.ok()) {
      done(std::move(status));
      return;
    }
    result.clamped_costs = clamped.load();
    uint32_t threads = 0;
    for (const auto& ws : scratch) threads += ws != nullptr ? 1 : 0;
    result.threads = threads;
    result.solves = static_cast<uint64_t>(plan.batch * plan.samples);
    if (plan.variance_reduction == VarianceReduction::kUnperturbed && (plan.jacobian || plan.vjp)) {
      result.solves += static_cast<uint64_t>(plan.batch);
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    done(std::move(result));
  }
};

}  // namespace

namespace {

// Whether any |x_k| > limit or is NaN, on the bits: for non-negative doubles (limit, and the
// magnitudes with the sign bit cleared) the integer order is the IEEE order, and NaN's bits are
// above +∞'s. Integer compares vectorise where GCC keeps a floating compare that may see NaN
// scalar.
PERTURBD_ORACLE_VECTOR_CLONES
bool AnyBeyond(const double* __restrict x, size_t n, double limit) {
  const int64_t bound = std::bit_cast<int64_t>(limit);
  constexpr int64_t kMagnitude = std::numeric_limits<int64_t>::max();
  int64_t beyond = 0;
#pragma omp simd reduction(| : beyond)
  for (size_t k = 0; k < n; ++k) {
    beyond |= (std::bit_cast<int64_t>(x[k]) & kMagnitude) > bound ? 1 : 0;
  }
  return beyond != 0;
}

}  // namespace

size_t FirstBeyond(absl::Span<const double> x, double limit) {
  assert(limit >= 0.0);
  if (!AnyBeyond(x.data(), x.size(), limit)) return x.size();
  size_t k = 0;
  while (std::fabs(x[k]) <= limit) ++k;  // false for NaN too
  return k;
}

VarianceReduction EffectiveVarianceReduction(const NoiseOptions& noise) {
  if (noise.variance_reduction.has_value()) return *noise.variance_reduction;
  return IndependentDraws(noise) >= 2 ? VarianceReduction::kLeaveOneOut : VarianceReduction::kNone;
}

absl::Status ValidatePerturbedRequest(const PerturbedRequest& request) {
  if (request.oracle == nullptr) return absl::InternalError("PerturbedRequest.oracle is null");
  const NoiseOptions& noise = request.noise;
  const int64_t d = request.oracle->dimension();
  if (request.batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: the batch size must be at least 1, got ", request.batch));
  }
  if (d < 1) return absl::InvalidArgumentError("theta.shape: d must be at least 1");
  const size_t expected = static_cast<size_t>(request.batch) * static_cast<size_t>(d);
  if (request.theta.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("theta.shape: expected B·d = ", request.batch,
                                                   "·", d, " values, got ", request.theta.size()));
  }
  if (!std::isfinite(noise.epsilon) || noise.epsilon <= 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise.epsilon: must be finite and > 0, got ", noise.epsilon));
  }
  if (noise.num_samples < 1) {
    return absl::InvalidArgumentError("noise.num_samples: must be at least 1, got 0");
  }
  if (noise.antithetic && noise.num_samples % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise.antithetic: antithetic pairs need an even noise.num_samples, got ",
                     noise.num_samples));
  }
  if (!noise.instance_seeds.empty() &&
      noise.instance_seeds.size() != static_cast<size_t>(request.batch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise.instance_seeds: expected none or B = ", request.batch, " seeds, got ",
                     noise.instance_seeds.size()));
  }
  const int64_t draws = IndependentDraws(noise);
  if (noise.variance_reduction == VarianceReduction::kLeaveOneOut && draws < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "noise.variance_reduction: LEAVE_ONE_OUT needs at least 2 independent draws (M ≥ 2, "
        "M ≥ 4 with antithetic pairs), got ",
        draws));
  }
  if (request.solution_stderr && draws < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outputs.stderr: a standard error needs at least 2 independent draws, got ", draws));
  }
  if (absl::Status s = CheckFinite(request.theta, "theta.data"); !s.ok()) return s;
  if (absl::Status s = CheckOptionalTensor(request.targets, expected, "targets"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckOptionalTensor(request.cotangent, expected, "cotangent"); !s.ok()) {
    return s;
  }
  if (noise.perturbation == Perturbation::kMultiplicative &&
      (request.jacobian || !request.cotangent.empty())) {
    for (size_t k = 0; k < request.theta.size(); ++k) {
      if (request.theta[k] == 0.0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "theta.data: element ", k,
            " is 0; MULTIPLICATIVE noise has no Jacobian or VJP there (it divides by θ)"));
      }
    }
  }
  return absl::OkStatus();
}

double PerturbedWork(const PerturbedRequest& request) {
  const double d = request.oracle != nullptr ? static_cast<double>(request.oracle->dimension()) : 0;
  return static_cast<double>(request.batch) * static_cast<double>(request.noise.num_samples) * d;
}

void RunPerturbedAsync(Executor& executor, const PerturbedRequest& request,
                       std::shared_ptr<const CancelToken> cancel,
                       std::function<void(absl::StatusOr<PerturbedResult>)> done) {
  if (absl::Status status = ValidatePerturbedRequest(request); !status.ok()) {
    done(std::move(status));
    return;
  }
  auto state = std::make_shared<RunState>();
  state->request = request;
  state->cancel = std::move(cancel);
  state->plan = EstimatorPlan::Make(request);
  state->done = std::move(done);
  const EstimatorPlan& plan = state->plan;
  const size_t B = static_cast<size_t>(plan.batch);
  const size_t d = static_cast<size_t>(plan.dimension);
  PerturbedResult& r = state->result;
  r.batch = plan.batch;
  r.dimension = plan.dimension;
  r.solution.resize(B * d);
  r.value.resize(B);
  if (plan.jacobian) r.jacobian.resize(B * d * d);
  if (plan.fenchel_young) {
    r.loss.resize(B);
    r.loss_grad.resize(B * d);
  }
  if (plan.solution_stderr) r.solution_stderr.resize(B * d);
  if (plan.samples_out) r.samples.resize(B * static_cast<size_t>(plan.samples) * d);
  if (plan.vjp) r.grad_theta.resize(B * d);
  const int64_t items = plan.batch * plan.blocks_per_instance;
  if (plan.blocks_per_instance > 1) {
    state->partials.resize(static_cast<size_t>(items));
    state->blocks_done = std::make_unique<std::atomic<int64_t>[]>(B);
    for (size_t b = 0; b < B; ++b) state->blocks_done[b].store(0);
  }
  // One workspace per worker, and one for the submitting thread of an inline job.
  state->scratch.resize(static_cast<size_t>(executor.num_threads()) + 1);
  state->start = std::chrono::steady_clock::now();

  Executor::Job job;
  job.num_items = items;
  job.cancel = state->cancel;
  job.run_inline = plan.run_inline;
  job.run = [state](int64_t item, int worker) { return state->RunItem(item, worker); };
  job.finish = [state](absl::Status status) { state->Complete(std::move(status)); };
  executor.Submit(std::move(job));
}

absl::StatusOr<PerturbedResult> RunPerturbed(Executor& executor, const PerturbedRequest& request,
                                             const CancelToken* cancel) {
  absl::Notification finished;
  absl::StatusOr<PerturbedResult> out;
  // The caller's token outlives this call; share it without taking ownership.
  std::shared_ptr<const CancelToken> token(cancel, [](const CancelToken*) {});
  RunPerturbedAsync(executor, request, token, [&](absl::StatusOr<PerturbedResult> r) {
    out = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return out;
}

}  // namespace perturbd
