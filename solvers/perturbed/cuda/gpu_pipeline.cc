#include "solvers/perturbed/cuda/gpu_pipeline.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/argmax_oracle.h"
#include "solvers/oracles/grid_shortest_path_oracle.h"
#include "solvers/oracles/ranking_oracle.h"
#include "solvers/oracles/threshold_oracle.h"
#include "solvers/oracles/top_k_oracle.h"
#include "solvers/perturbed/estimator.h"

namespace perturbd::gpu_internal {
namespace {

// Ranks and indices travel as float / int32: exact below 2²⁴.
constexpr int64_t kMaxDimension = int64_t{1} << 24;
constexpr size_t kAlignment = 256;

// Hands out aligned sub-buffers of an arena; with a null base it only measures.
class Carver {
 public:
  explicit Carver(char* base) : base_(base) {}
  template <class T>
  T* Take(size_t count) {
    if (count == 0) return nullptr;
    T* p = base_ != nullptr ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += (count * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    return p;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

// Sizes of one request on the device.
struct Shape {
  size_t batch = 0;
  size_t d = 0;
  size_t k = 1;  // max_nonzeros
  int64_t samples = 0;
  int64_t per_unit = 1;
  int64_t chunk = 0;  // mc: samples per chunk, a multiple of per_unit
  size_t rows = 0;    // B · mc
  bool grid = false;
};

Shape MakeShape(const EstimatorPlan& plan, const DeviceOracle& oracle,
                const PipelineOptions& options) {
  Shape s;
  s.batch = static_cast<size_t>(plan.batch);
  s.d = static_cast<size_t>(oracle.dimension);
  s.k = static_cast<size_t>(oracle.max_nonzeros);
  s.samples = plan.samples;
  s.per_unit = plan.samples_per_unit;
  s.grid = oracle.per_thread();
  // η, dense y, sparse y, five per-row scalars, Dijkstra scratch.
  size_t row_bytes = s.d * (sizeof(double) + sizeof(float)) +
                     s.k * (sizeof(int32_t) + sizeof(float)) + 3 * sizeof(double) +
                     2 * sizeof(int32_t);
  if (s.grid) row_bytes += s.d * (sizeof(double) + 3 * sizeof(int32_t));
  const size_t unit_bytes = s.batch * static_cast<size_t>(s.per_unit) * row_bytes;
  const int64_t units =
      std::max<int64_t>(1, static_cast<int64_t>(options.chunk_bytes / unit_bytes));
  s.chunk = std::min<int64_t>(plan.samples, units * s.per_unit);
  s.rows = s.batch * static_cast<size_t>(s.chunk);
  return s;
}

struct Buffers {
  double* theta = nullptr;
  double* targets = nullptr;
  double* cotangent = nullptr;
  uint64_t* keys = nullptr;
  DeviceSums sums;
  size_t sums_offset = 0;  // [sums_offset, sums_end) is zeroed before the first chunk
  size_t sums_end = 0;
  SampleBuffers chunk;
};

Buffers Layout(const Shape& s, const EstimatorPlan& plan, Carver& c) {
  const size_t B = s.batch, d = s.d, R = s.rows;
  const bool loo = plan.variance_reduction == VarianceReduction::kLeaveOneOut;
  const bool pair_derivative = plan.need_pairs && loo;
  Buffers b;
  b.theta = c.Take<double>(B * d);
  b.targets = plan.fenchel_young ? c.Take<double>(B * d) : nullptr;
  b.cotangent = plan.vjp ? c.Take<double>(B * d) : nullptr;
  b.keys = c.Take<uint64_t>(B);

  b.sums_offset = c.used();
  DeviceSums& m = b.sums;
  m.sum_y = c.Take<double>(B * d);
  if (plan.solution_stderr) m.sum_unit2 = c.Take<double>(B * d);
  if (plan.fenchel_young && plan.perturbation == Perturbation::kMultiplicative) {
    m.sum_wy = c.Take<double>(B * d);
  }
  if (plan.need_grad_sum) m.sum_grad = c.Take<double>(B * d);
  if (plan.vjp) {
    m.ssg = c.Take<double>(B * d);
    if (pair_derivative) m.pair_ssg = c.Take<double>(B * d);
  }
  if (plan.jacobian) {
    m.syg = c.Take<double>(B * d * d);
    if (pair_derivative) m.pair_syg = c.Take<double>(B * d * d);
  }
  m.value = c.Take<double>(B);
  m.loss = c.Take<double>(B);
  m.sum_s = c.Take<double>(B);
  m.clamped = c.Take<unsigned long long>(B);
  b.sums_end = c.used();

  SampleBuffers& k = b.chunk;
  k.eta = c.Take<double>(R * d);
  k.dense = c.Take<float>(R * d);
  k.index = c.Take<int32_t>(R * s.k);
  k.value = c.Take<float>(R * s.k);
  k.nnz = c.Take<int32_t>(R);
  k.clamped = c.Take<uint32_t>(R);
  k.y_dot_eta = c.Take<double>(R);
  k.loss = c.Take<double>(R);
  k.y_dot_g = c.Take<double>(R);
  if (s.grid) {
    k.dist = c.Take<double>(R * d);
    k.pred = c.Take<int32_t>(R * d);
    k.heap = c.Take<int32_t>(R * d);
    k.state = c.Take<int32_t>(R * d);
    k.scratch_stride = static_cast<int64_t>(R);
  }
  return b;
}

absl::Span<const double> RowOf(absl::Span<const double> x, size_t b, size_t d) {
  if (x.empty()) return x;
  return x.subspan(b * d, d);
}

// Copies `count` values from the device into `host` (resized) when `device` is set.
template <class T>
absl::Status Fetch(Launcher& launcher, const T* device, size_t count, std::vector<T>& host) {
  if (device == nullptr) return absl::OkStatus();
  host.resize(count);
  return launcher.CopyToHost(host.data(), device, count * sizeof(T));
}

void CopySlice(const std::vector<double>& from, size_t b, size_t d, std::vector<double>& to) {
  if (to.empty() || from.empty()) return;
  std::copy(from.begin() + static_cast<ptrdiff_t>(b * d),
            from.begin() + static_cast<ptrdiff_t>((b + 1) * d), to.begin());
}

}  // namespace

bool SupportsOracle(const Oracle& oracle) { return DescribeOracle(oracle).ok(); }

bool SupportsOracleName(absl::string_view name) {
  return name == "argmax" || name == "top_k" || name == "threshold" || name == "ranking" ||
         name == "grid_shortest_path";
}

absl::StatusOr<DeviceOracle> DescribeOracle(const Oracle& oracle) {
  DeviceOracle o;
  bool known = true;
  if (dynamic_cast<const ArgmaxOracle*>(&oracle) != nullptr) {
    o.kind = DeviceOracleKind::kArgmax;
  } else if (const auto* top_k = dynamic_cast<const TopKOracle*>(&oracle); top_k != nullptr) {
    o.kind = DeviceOracleKind::kTopK;
    o.k = static_cast<int32_t>(top_k->k());
  } else if (dynamic_cast<const ThresholdOracle*>(&oracle) != nullptr) {
    o.kind = DeviceOracleKind::kThreshold;
  } else if (dynamic_cast<const RankingOracle*>(&oracle) != nullptr) {
    o.kind = DeviceOracleKind::kRanking;
  } else if (const auto* grid = dynamic_cast<const GridShortestPathOracle*>(&oracle);
             grid != nullptr) {
    o.kind = DeviceOracleKind::kGridShortestPath;
    o.rows = grid->rows();
    o.cols = grid->cols();
    o.eight = grid->connectivity() == Connectivity::kEight;
  } else {
    known = false;
  }
  if (!known || oracle.can_fail()) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend: the GPU backend serves argmax, top_k, threshold, ranking and "
                     "grid_shortest_path; use the CPU backend for ",
                     oracle.name()));
  }
  const int64_t d = oracle.dimension();
  if (d < 1 || d >= kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat("backend: the GPU backend serves 1 <= d < ",
                                                   kMaxDimension, "; got d = ", d, " for ",
                                                   oracle.name()));
  }
  o.dimension = static_cast<int32_t>(d);
  o.max_nonzeros = static_cast<int32_t>(std::clamp<int64_t>(oracle.max_nonzeros(), 1, d));
  o.maximize = oracle.sense() == Sense::kMaximize;
  return o;
}

size_t PipelineArenaBytes(const PerturbedRequest& request, const PipelineOptions& options) {
  const absl::StatusOr<DeviceOracle> oracle = DescribeOracle(*request.oracle);
  if (!oracle.ok()) return 0;
  const EstimatorPlan plan = EstimatorPlan::Make(request);
  Carver measure(nullptr);
  Layout(MakeShape(plan, *oracle, options), plan, measure);
  return measure.used();
}

absl::StatusOr<PerturbedResult> RunPipeline(Launcher& launcher, const PerturbedRequest& request,
                                            const PipelineOptions& options,
                                            const CancelToken* cancel) {
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ValidatePerturbedRequest(request));
  ASSIGN_OR_RETURN(const DeviceOracle oracle, DescribeOracle(*request.oracle));
  if (cancel != nullptr) RETURN_IF_ERROR(cancel->Check());
  const EstimatorPlan plan = EstimatorPlan::Make(request);
  const Shape shape = MakeShape(plan, oracle, options);
  const size_t B = shape.batch, d = shape.d;
  const int64_t M = plan.samples;
  const bool derivative = plan.jacobian || plan.vjp;
  const bool loo = plan.variance_reduction == VarianceReduction::kLeaveOneOut;
  const bool unperturbed = plan.variance_reduction == VarianceReduction::kUnperturbed && derivative;
  const bool multiplicative = plan.perturbation == Perturbation::kMultiplicative;

  Carver measure(nullptr);
  Layout(shape, plan, measure);
  ASSIGN_OR_RETURN(char* base, launcher.Reserve(measure.used()));
  Carver carve(base);
  const Buffers buf = Layout(shape, plan, carve);

  // Outputs, shaped as RunPerturbed shapes them.
  PerturbedResult result;
  result.batch = plan.batch;
  result.dimension = plan.dimension;
  result.solution.resize(B * d);
  result.value.resize(B);
  if (plan.jacobian) result.jacobian.resize(B * d * d);
  if (plan.fenchel_young) {
    result.loss.resize(B);
    result.loss_grad.resize(B * d);
  }
  if (plan.solution_stderr) result.solution_stderr.resize(B * d);
  if (plan.samples_out) result.samples.resize(B * static_cast<size_t>(M) * d);
  if (plan.vjp) result.grad_theta.resize(B * d);

  // Inputs.
  const std::vector<uint64_t>& seeds = request.noise.instance_seeds;
  std::vector<uint64_t> keys(B, request.noise.seed);
  if (!seeds.empty()) keys = seeds;
  RETURN_IF_ERROR(launcher.CopyToDevice(buf.theta, request.theta.data(), B * d * sizeof(double)));
  if (buf.targets != nullptr) {
    RETURN_IF_ERROR(
        launcher.CopyToDevice(buf.targets, request.targets.data(), B * d * sizeof(double)));
  }
  if (buf.cotangent != nullptr) {
    RETURN_IF_ERROR(
        launcher.CopyToDevice(buf.cotangent, request.cotangent.data(), B * d * sizeof(double)));
  }
  RETURN_IF_ERROR(launcher.CopyToDevice(buf.keys, keys.data(), B * sizeof(uint64_t)));
  RETURN_IF_ERROR(launcher.Zero(base + buf.sums_offset, buf.sums_end - buf.sums_offset));

  NoiseSource noise;
  noise.keys = buf.keys;
  noise.instance_seeds = !seeds.empty();
  noise.antithetic = plan.antithetic;
  noise.distribution = plan.distribution;
  noise.single = true;  // same noise as the CPU's RowBase: float transforms for every dtype

  for (int64_t m0 = 0; m0 < M; m0 += shape.chunk) {
    const int64_t mc = std::min<int64_t>(shape.chunk, M - m0);
    const int64_t rows = static_cast<int64_t>(B) * mc;

    PerturbParams perturb;
    perturb.noise = noise;
    perturb.theta = buf.theta;
    perturb.batch = plan.batch;
    perturb.d = oracle.dimension;
    perturb.m0 = m0;
    perturb.mc = mc;
    perturb.epsilon = plan.epsilon;
    perturb.multiplicative = multiplicative;
    perturb.f32 = plan.dtype == DType::kFloat32;
    perturb.eta = buf.chunk.eta;
    RETURN_IF_ERROR(launcher.Perturb(perturb));

    SolveParams solve;
    solve.oracle = oracle;
    solve.rows = rows;
    solve.buf = buf.chunk;
    RETURN_IF_ERROR(launcher.Solve(solve));

    ScalarParams scalars;
    scalars.rows = rows;
    scalars.mc = mc;
    scalars.d = oracle.dimension;
    scalars.max_nonzeros = oracle.max_nonzeros;
    scalars.maximize = oracle.maximize;
    scalars.targets = buf.targets;
    scalars.cotangent = buf.cotangent;
    scalars.buf = buf.chunk;
    RETURN_IF_ERROR(launcher.SampleScalars(scalars));

    AccumulateParams acc;
    acc.noise = noise;
    acc.batch = plan.batch;
    acc.d = oracle.dimension;
    acc.max_nonzeros = oracle.max_nonzeros;
    acc.m0 = m0;
    acc.mc = mc;
    acc.samples_per_unit = static_cast<int32_t>(plan.samples_per_unit);
    acc.epsilon = plan.epsilon;
    acc.stderr_sums = plan.solution_stderr;
    acc.fy_weights = buf.sums.sum_wy != nullptr;
    acc.grad_sum = plan.need_grad_sum;
    acc.vjp = plan.vjp;
    acc.jacobian = plan.jacobian;
    acc.pair_derivative = plan.need_pairs && loo && derivative;
    acc.buf = buf.chunk;
    acc.sums = buf.sums;
    RETURN_IF_ERROR(launcher.Accumulate(acc));

    InstanceScalarParams inst;
    inst.batch = plan.batch;
    inst.mc = mc;
    inst.loss = plan.fenchel_young;
    inst.vjp = plan.vjp;
    inst.buf = buf.chunk;
    inst.sums = buf.sums;
    RETURN_IF_ERROR(launcher.InstanceScalars(inst));

    if (plan.samples_out) {
      // Chunk row b·mc + (m − m0) is samples[b, m].
      RETURN_IF_ERROR(launcher.CopyFloatsToHost(
          result.samples.data() + static_cast<size_t>(m0) * d, static_cast<size_t>(mc) * d,
          static_cast<size_t>(M) * d, buf.chunk.dense, static_cast<size_t>(rows) * d));
    }
    if (cancel != nullptr) {
      RETURN_IF_ERROR(launcher.Synchronize());
      RETURN_IF_ERROR(cancel->Check());
    }
  }

  // y*(θ) for UNPERTURBED: θ itself as the rows of one more solve (the CPU solves θ as given,
  // not rounded to θ's dtype).
  std::vector<double> unperturbed_y;
  uint64_t clamped_total = 0;
  if (unperturbed) {
    RETURN_IF_ERROR(launcher.CopyOnDevice(buf.chunk.eta, buf.theta, B * d * sizeof(double)));
    SolveParams solve;
    solve.oracle = oracle;
    solve.rows = plan.batch;
    solve.buf = buf.chunk;
    RETURN_IF_ERROR(launcher.Solve(solve));
    unperturbed_y.resize(B * d);
    RETURN_IF_ERROR(
        launcher.CopyFloatsToHost(unperturbed_y.data(), B * d, B * d, buf.chunk.dense, B * d));
    std::vector<uint32_t> clamped(B);
    RETURN_IF_ERROR(launcher.CopyToHost(clamped.data(), buf.chunk.clamped, B * sizeof(uint32_t)));
    for (uint32_t c : clamped) clamped_total += c;
  }

  if (plan.jacobian) {
    JacobianParams jac;
    jac.batch = plan.batch;
    jac.d = oracle.dimension;
    jac.jacobian = buf.sums.syg;
    jac.pair_syg = buf.sums.pair_syg;
    jac.sum_grad = buf.sums.sum_grad;
    jac.sum_y = buf.sums.sum_y;
    jac.unperturbed = unperturbed ? buf.chunk.dense : nullptr;
    jac.theta = buf.theta;
    jac.antithetic = plan.antithetic;
    jac.samples = static_cast<double>(M);
    jac.multiplicative = multiplicative;
    double c = static_cast<double>(M);
    switch (plan.variance_reduction) {
      case VarianceReduction::kNone:
        jac.baseline = JacobianBaseline::kNone;
        break;
      case VarianceReduction::kUnperturbed:
        jac.baseline = JacobianBaseline::kUnperturbed;
        break;
      case VarianceReduction::kLeaveOneOut:
        jac.baseline = JacobianBaseline::kLeaveOneOut;
        if (plan.antithetic) {
          jac.pair_scale = 1.0 / (static_cast<double>(M) - 2.0);
        } else {
          c = static_cast<double>(M) - 1.0;
        }
        break;
    }
    jac.scale = 1.0 / (c * plan.epsilon);
    RETURN_IF_ERROR(launcher.FinalizeJacobian(jac));
    RETURN_IF_ERROR(
        launcher.CopyToHost(result.jacobian.data(), buf.sums.syg, B * d * d * sizeof(double)));
  }

  // Everything but the Jacobian is O(d) per instance: FinalizeInstance, the CPU's own code.
  const DeviceSums& m = buf.sums;
  std::vector<double> sum_y, sum_unit2, sum_wy, sum_grad, ssg, pair_ssg, value, loss, sum_s;
  std::vector<unsigned long long> clamped;
  RETURN_IF_ERROR(Fetch(launcher, m.sum_y, B * d, sum_y));
  RETURN_IF_ERROR(Fetch(launcher, m.sum_unit2, B * d, sum_unit2));
  RETURN_IF_ERROR(Fetch(launcher, m.sum_wy, B * d, sum_wy));
  RETURN_IF_ERROR(Fetch(launcher, m.sum_grad, B * d, sum_grad));
  RETURN_IF_ERROR(Fetch(launcher, m.ssg, B * d, ssg));
  RETURN_IF_ERROR(Fetch(launcher, m.pair_ssg, B * d, pair_ssg));
  RETURN_IF_ERROR(Fetch(launcher, m.value, B, value));
  RETURN_IF_ERROR(Fetch(launcher, m.loss, B, loss));
  RETURN_IF_ERROR(Fetch(launcher, m.sum_s, B, sum_s));
  RETURN_IF_ERROR(Fetch(launcher, m.clamped, B, clamped));

  EstimatorPlan host_plan = plan;
  host_plan.jacobian = false;  // finalised on the device
  for (size_t b = 0; b < B; ++b) {
    EstimatorSums sums(host_plan);
    CopySlice(sum_y, b, d, sums.sum_y);
    CopySlice(sum_unit2, b, d, sums.sum_unit2);
    CopySlice(sum_wy, b, d, sums.sum_wy);
    CopySlice(sum_grad, b, d, sums.sum_grad);
    CopySlice(ssg, b, d, sums.ssg);
    CopySlice(pair_ssg, b, d, sums.pair_ssg);
    sums.value = value[b];
    sums.loss = loss[b];
    sums.sum_s = sum_s[b];
    sums.clamped = clamped[b];
    clamped_total += clamped[b];
    const absl::Span<const double> y0 =
        unperturbed ? RowOf(unperturbed_y, b, d) : absl::Span<const double>();
    FinalizeInstance(host_plan, static_cast<int64_t>(b), sums, RowOf(request.theta, b, d),
                     RowOf(request.targets, b, d), RowOf(request.cotangent, b, d), y0, result);
  }

  result.solves = static_cast<uint64_t>(plan.batch * plan.samples);
  if (unperturbed) result.solves += static_cast<uint64_t>(plan.batch);
  result.clamped_costs = clamped_total;
  result.threads = 1;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace perturbd::gpu_internal
