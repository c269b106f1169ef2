#include "server/request_translator.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <variant>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/tensor_codec.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/cuda/gpu_backend.h"

namespace perturbd {
namespace {

absl::Status UnknownEnum(absl::string_view field, int value) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown value ", value));
}

absl::Status Rejected(absl::string_view reason, std::string message) {
  absl::Status status = absl::ResourceExhaustedError(std::move(message));
  status.SetPayload(kRejectReasonPayload, absl::Cord(reason));
  return status;
}

// Stands in for an oracle whose creation hit a size limit (a knapsack DP table too large), so
// that the request's remaining INVALID_ARGUMENT checks still come before RESOURCE_EXHAUSTED.
// It is only validated against, never solved.
class DimensionOnlyOracle final : public Oracle {
 public:
  explicit DimensionOnlyOracle(int64_t dimension) : dimension_(dimension) {}
  absl::string_view name() const override { return "unavailable"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return Sense::kMaximize; }
  std::unique_ptr<OracleWorkspace> NewWorkspace() const override {
    return std::make_unique<OracleWorkspace>();
  }
  int64_t Solve(absl::Span<double>, OracleWorkspace&, SparseVector& y) const override {
    y.Clear();
    return 0;
  }

 private:
  int64_t dimension_;
};

// LinearProgramOracle validates its whole structure, allocating O(num_variables), before it
// compares num_variables with d: a tiny request declaring 2^32 − 1 variables would ask for
// tens of GiB before being refused. The dimension is checked here first, with the oracle's own
// message, so that it is the INVALID_ARGUMENT it is.
absl::Status CheckLinearProgramDimension(const OracleSpec& spec, int64_t d) {
  const auto* lp = std::get_if<LinearProgramSpec>(&spec);
  if (lp == nullptr || static_cast<int64_t>(lp->num_variables) == d) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("theta.shape: the last dimension d = ", d,
                   " must equal problem.linear_program.num_variables = ", lp->num_variables));
}

// COIN-OR Clp aborts the process (an assert, not an error) on an objective coefficient of
// magnitude >= 1e25, and loses all accuracy well before. The oracle receives the perturbed
// η = θ + εZ (or θ ⊙ exp(εZ − ε²/2)), so θ and ε are bounded here from the largest |Z| the
// generator can produce (u ∈ [2⁻³³, 1 − 2⁻³³]: NORMAL |Z| ≤ √(66 ln 2) ≈ 6.8, GUMBEL
// Z ∈ [−3.2, 22.9]; bounds below rounded up).
constexpr double kMaxLinearProgramObjective = 1e20;

absl::Status CheckLinearProgramObjective(const OracleSpec& spec, absl::Span<const double> theta,
                                         const NoiseOptions& noise) {
  if (!std::holds_alternative<LinearProgramSpec>(spec)) return absl::OkStatus();
  double max_abs = 0.0;
  for (double v : theta) max_abs = std::max(max_abs, std::abs(v));
  if (max_abs >= kMaxLinearProgramObjective) {
    return absl::InvalidArgumentError(absl::StrCat(
        "theta: linear_program objective coefficients must have magnitude < ",
        kMaxLinearProgramObjective, " (the LP solver's range), got ", max_abs, "; rescale theta"));
  }
  const double max_z = noise.distribution == NoiseDistribution::kGumbel ? 23.0 : 7.0;
  const double eps = noise.epsilon;
  const double bound = noise.perturbation == Perturbation::kMultiplicative
                           ? max_abs * std::exp(std::max(0.0, eps * max_z - 0.5 * eps * eps))
                           : max_abs + eps * max_z;
  if (!(bound < kMaxLinearProgramObjective)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "noise.epsilon: with max |theta| = ", max_abs, ", epsilon = ", eps,
        " can perturb linear_program objective coefficients to magnitude ", bound,
        ", over the LP solver's range (", kMaxLinearProgramObjective, "); lower epsilon"));
  }
  return absl::OkStatus();
}

// The parts shared by Solve and Backward requests.
struct WireRequest {
  const v1::Problem* problem = nullptr;  // null when absent
  const v1::Tensor* theta = nullptr;     // null when absent
  const v1::Noise* noise = nullptr;      // null when absent
  // targets (Solve) or cotangent (Backward); null when absent.
  const v1::Tensor* second = nullptr;
  absl::string_view second_field;
  bool second_required = false;
  int backend = 0;
  bool jacobian = false;
  bool samples = false;
  bool solution_stderr = false;
};

// Decodes a tensor that must have θ's shape (either float dtype) into `out`.
absl::Status DecodeLikeTheta(const v1::Tensor& tensor, absl::string_view field,
                             const TensorLayout& theta_layout, DecodedValues& out) {
  ASSIGN_OR_RETURN(TensorLayout layout, InspectTensor(tensor, field));
  if (layout.shape != theta_layout.shape) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shape: must equal theta.shape ",
                                                   ShapeString(theta_layout.shape), ", got ",
                                                   ShapeString(layout.shape)));
  }
  out.resize(static_cast<size_t>(layout.num_elements));
  return DecodeTensorValues(tensor, layout, field, absl::MakeSpan(out));
}

absl::Status CheckLimits(const TranslatedRequest& t, const ServerLimits& limits) {
  const PerturbedRequest& r = t.request;
  const double work = PerturbedWork(r);
  if (work > static_cast<double>(limits.max_work)) {
    return Rejected("max_work",
                    absl::StrCat("work B·M·d = ", work, " exceeds the server's max_work (",
                                 limits.max_work, "); split the batch or use fewer samples"));
  }
  // Values in the response, in double arithmetic (no overflow).
  const double b = static_cast<double>(r.batch);
  const double d = static_cast<double>(r.oracle->dimension());
  const double m = static_cast<double>(r.noise.num_samples);
  const double jacobian = r.jacobian ? b * d * d : 0.0;
  const double samples = r.samples ? b * m * d : 0.0;
  double values = jacobian + samples;
  if (!r.cotangent.empty()) {
    values += b * d;  // grad_theta
  } else {
    values += b * d + b;                          // solution, value
    if (!r.targets.empty()) values += b * d + b;  // loss_grad, loss
    if (r.solution_stderr) values += b * d;
  }
  absl::string_view culprit = "theta.shape";
  if (jacobian > 0 && jacobian >= samples) {
    culprit = "outputs.jacobian";
  } else if (samples > 0) {
    culprit = "outputs.samples";
  }
  if (values > static_cast<double>(limits.max_response_values)) {
    return Rejected("max_response_values",
                    absl::StrCat(culprit, ": the response would hold ", values,
                                 " values (jacobian B·d² = ", jacobian, ", samples B·M·d = ",
                                 samples, "), over the server's max_response_values (",
                                 limits.max_response_values, ")"));
  }
  // Tensor payload plus a generous allowance for framing, shapes and stats.
  const double bytes = values * static_cast<double>(DTypeSize(r.dtype)) + 4096.0;
  if (bytes > static_cast<double>(limits.max_message_bytes)) {
    return Rejected("max_message_bytes",
                    absl::StrCat(culprit, ": the response would take about ", bytes,
                                 " bytes, over the server's max_message_bytes (",
                                 limits.max_message_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TranslatedRequest>> Translate(const WireRequest& wire,
                                                             const ServerLimits& limits) {
  // 1. INVALID_ARGUMENT, cheapest first.
  static const v1::Problem kNoProblem;
  ASSIGN_OR_RETURN(TranslatedProblem problem,
                   TranslateProblem(wire.problem ? *wire.problem : kNoProblem));
  if (wire.noise == nullptr) {
    return absl::InvalidArgumentError(
        "noise: missing; set at least noise.epsilon > 0 and noise.num_samples >= 1");
  }
  ASSIGN_OR_RETURN(NoiseOptions noise, TranslateNoise(*wire.noise));
  if (!v1::Backend_IsValid(wire.backend)) return UnknownEnum("backend", wire.backend);
  if (wire.theta == nullptr) return absl::InvalidArgumentError("theta: missing");
  ASSIGN_OR_RETURN(TensorLayout theta_layout, InspectTensor(*wire.theta, "theta"));
  const std::vector<int64_t>& shape = theta_layout.shape;
  if (shape.size() != 1 && shape.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: must be [B, d] or [d], got ", ShapeString(shape)));
  }
  const bool single = shape.size() == 1;
  const int64_t batch = single ? 1 : shape[0];
  const int64_t d = shape.back();
  if (batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: batch size B must be >= 1, got ", ShapeString(shape)));
  }
  if (d < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: dimension d must be >= 1, got ", ShapeString(shape)));
  }
  if (wire.second == nullptr && wire.second_required) {
    return absl::InvalidArgumentError(
        absl::StrCat(wire.second_field, ": missing; it must have theta's shape"));
  }

  auto t = std::make_unique<TranslatedRequest>();
  t->single_instance = single;
  t->theta.resize(static_cast<size_t>(theta_layout.num_elements));
  RETURN_IF_ERROR(DecodeTensorValues(*wire.theta, theta_layout, "theta", absl::MakeSpan(t->theta)));
  DecodedValues& second = wire.second_field == "targets" ? t->targets : t->cotangent;
  if (wire.second != nullptr) {
    RETURN_IF_ERROR(DecodeLikeTheta(*wire.second, wire.second_field, theta_layout, second));
  }
  // The oracle validates its structure (INVALID_ARGUMENT naming `problem.<kind>.<field>`); a
  // structure over an oracle's own size limit is RESOURCE_EXHAUSTED, which has to wait until
  // the remaining INVALID_ARGUMENT checks have passed.
  RETURN_IF_ERROR(CheckLinearProgramDimension(problem.spec, d));
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = MakeOracle(problem.spec, d, problem.sense);
  absl::Status oracle_limit;
  if (oracle.ok()) {
    t->oracle = std::move(oracle).value();
  } else if (oracle.status().code() == absl::StatusCode::kResourceExhausted) {
    oracle_limit = oracle.status();
    t->oracle = std::make_unique<DimensionOnlyOracle>(d);
  } else {
    return oracle.status();
  }

  PerturbedRequest& r = t->request;
  r.oracle = t->oracle.get();
  r.batch = batch;
  r.theta = t->theta;
  r.dtype = theta_layout.dtype;
  r.noise = std::move(noise);
  r.jacobian = wire.jacobian;
  r.samples = wire.samples;
  r.solution_stderr = wire.solution_stderr;
  r.targets = t->targets;
  r.cotangent = t->cotangent;
  RETURN_IF_ERROR(ValidatePerturbedRequest(r));
  RETURN_IF_ERROR(CheckLinearProgramObjective(problem.spec, r.theta, r.noise));

  // 2. Backends.
  t->backend = wire.backend == v1::BACKEND_UNSPECIFIED ? v1::AUTO
                                                       : static_cast<v1::Backend>(wire.backend);
  if (wire.backend == v1::GPU) {
    if (!limits.gpu) {
      return absl::FailedPreconditionError(
          "backend: GPU requested, but this server has no GPU backend; use AUTO or CPU");
    }
    if (!GpuBackend::Supports(*t->oracle)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "backend: the GPU backend does not run ", t->oracle->name(),
          " (it runs argmax, top_k, threshold, ranking and grid_shortest_path); use AUTO or CPU"));
    }
  }

  // 3. Limits.
  if (!oracle_limit.ok()) return Rejected("oracle_limit", std::string(oracle_limit.message()));
  RETURN_IF_ERROR(CheckLimits(*t, limits));
  return t;
}

// Shape of an output whose per-instance shape is `inner`, for θ [B, d] or [d].
std::vector<int64_t> OutputShape(const TranslatedRequest& t, std::initializer_list<int64_t> inner) {
  std::vector<int64_t> shape;
  if (!t.single_instance) shape.push_back(t.request.batch);
  shape.insert(shape.end(), inner.begin(), inner.end());
  return shape;
}

void FillStats(const PerturbedResult& result, v1::SolveStats* stats) {
  stats->set_solves(result.solves);
  stats->set_seconds(result.seconds);
  stats->set_backend(result.backend);
  stats->set_threads(result.threads);
  stats->set_clamped_costs(result.clamped_costs);
}

}  // namespace

std::string RejectReason(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRejectReasonPayload);
  return payload ? std::string(*payload) : std::string();
}

absl::string_view ProblemKindName(const v1::Problem& problem) {
  switch (problem.kind_case()) {
    case v1::Problem::kArgmax:
      return "argmax";
    case v1::Problem::kTopK:
      return "top_k";
    case v1::Problem::kThreshold:
      return "threshold";
    case v1::Problem::kRanking:
      return "ranking";
    case v1::Problem::kGridShortestPath:
      return "grid_shortest_path";
    case v1::Problem::kGraphShortestPath:
      return "graph_shortest_path";
    case v1::Problem::kAssignment:
      return "assignment";
    case v1::Problem::kSpanningTree:
      return "spanning_tree";
    case v1::Problem::kKnapsack:
      return "knapsack";
    case v1::Problem::kLinearProgram:
      return "linear_program";
    case v1::Problem::KIND_NOT_SET:
      break;
  }
  return "none";
}

absl::StatusOr<TranslatedProblem> TranslateProblem(const v1::Problem& problem) {
  TranslatedProblem out;
  switch (problem.kind_case()) {
    case v1::Problem::kArgmax:
      out.spec = ArgmaxSpec{};
      break;
    case v1::Problem::kTopK:
      out.spec = TopKSpec{.k = problem.top_k().k()};
      break;
    case v1::Problem::kThreshold:
      out.spec = ThresholdSpec{};
      break;
    case v1::Problem::kRanking:
      out.spec = RankingSpec{};
      break;
    case v1::Problem::kGridShortestPath: {
      const v1::GridShortestPathProblem& grid = problem.grid_shortest_path();
      GridShortestPathSpec spec{.rows = grid.rows(), .cols = grid.cols()};
      switch (grid.connectivity()) {
        case v1::CONNECTIVITY_UNSPECIFIED:
        case v1::EIGHT:
          spec.connectivity = Connectivity::kEight;
          break;
        case v1::FOUR:
          spec.connectivity = Connectivity::kFour;
          break;
        default:
          return UnknownEnum("problem.grid_shortest_path.connectivity", grid.connectivity());
      }
      out.spec = spec;
      break;
    }
    case v1::Problem::kGraphShortestPath: {
      const v1::GraphShortestPathProblem& graph = problem.graph_shortest_path();
      out.spec = GraphShortestPathSpec{
          .num_nodes = graph.num_nodes(),
          .edge_sources = {graph.edge_sources().begin(), graph.edge_sources().end()},
          .edge_targets = {graph.edge_targets().begin(), graph.edge_targets().end()},
          .source = graph.source(),
          .target = graph.target()};
      break;
    }
    case v1::Problem::kAssignment:
      out.spec =
          AssignmentSpec{.rows = problem.assignment().rows(), .cols = problem.assignment().cols()};
      break;
    case v1::Problem::kSpanningTree: {
      const v1::SpanningTreeProblem& tree = problem.spanning_tree();
      out.spec = SpanningTreeSpec{
          .num_nodes = tree.num_nodes(),
          .edge_sources = {tree.edge_sources().begin(), tree.edge_sources().end()},
          .edge_targets = {tree.edge_targets().begin(), tree.edge_targets().end()}};
      break;
    }
    case v1::Problem::kKnapsack: {
      const v1::KnapsackProblem& knapsack = problem.knapsack();
      out.spec = KnapsackSpec{.weights = {knapsack.weights().begin(), knapsack.weights().end()},
                              .capacity = knapsack.capacity()};
      break;
    }
    case v1::Problem::kLinearProgram: {
      const v1::LinearProgramProblem& lp = problem.linear_program();
      out.spec = LinearProgramSpec{
          .num_variables = lp.num_variables(),
          .row_index = {lp.row_index().begin(), lp.row_index().end()},
          .column_index = {lp.column_index().begin(), lp.column_index().end()},
          .coefficient = {lp.coefficient().begin(), lp.coefficient().end()},
          .row_lower = {lp.row_lower().begin(), lp.row_lower().end()},
          .row_upper = {lp.row_upper().begin(), lp.row_upper().end()},
          .variable_lower = {lp.variable_lower().begin(), lp.variable_lower().end()},
          .variable_upper = {lp.variable_upper().begin(), lp.variable_upper().end()},
          .integer = {lp.integer().begin(), lp.integer().end()}};
      break;
    }
    case v1::Problem::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "problem.kind: missing; set one of argmax, top_k, threshold, ranking, "
          "grid_shortest_path, graph_shortest_path, assignment, spanning_tree, knapsack, "
          "linear_program");
  }
  switch (problem.sense()) {
    case v1::SENSE_UNSPECIFIED:
      out.sense = std::nullopt;
      break;
    case v1::MAXIMIZE:
      out.sense = Sense::kMaximize;
      break;
    case v1::MINIMIZE:
      out.sense = Sense::kMinimize;
      break;
    default:
      return UnknownEnum("problem.sense", problem.sense());
  }
  return out;
}

absl::StatusOr<NoiseOptions> TranslateNoise(const v1::Noise& noise) {
  NoiseOptions out;
  switch (noise.distribution()) {
    case v1::DISTRIBUTION_UNSPECIFIED:
    case v1::NORMAL:
      out.distribution = NoiseDistribution::kNormal;
      break;
    case v1::GUMBEL:
      out.distribution = NoiseDistribution::kGumbel;
      break;
    default:
      return UnknownEnum("noise.distribution", noise.distribution());
  }
  switch (noise.perturbation()) {
    case v1::PERTURBATION_UNSPECIFIED:
    case v1::ADDITIVE:
      out.perturbation = Perturbation::kAdditive;
      break;
    case v1::MULTIPLICATIVE:
      out.perturbation = Perturbation::kMultiplicative;
      break;
    default:
      return UnknownEnum("noise.perturbation", noise.perturbation());
  }
  switch (noise.variance_reduction()) {
    case v1::VARIANCE_REDUCTION_UNSPECIFIED:
      out.variance_reduction = std::nullopt;
      break;
    case v1::NONE:
      out.variance_reduction = VarianceReduction::kNone;
      break;
    case v1::LEAVE_ONE_OUT:
      out.variance_reduction = VarianceReduction::kLeaveOneOut;
      break;
    case v1::UNPERTURBED:
      out.variance_reduction = VarianceReduction::kUnperturbed;
      break;
    default:
      return UnknownEnum("noise.variance_reduction", noise.variance_reduction());
  }
  out.epsilon = noise.epsilon();
  out.num_samples = noise.num_samples();
  out.seed = noise.seed();
  out.instance_seeds.assign(noise.instance_seeds().begin(), noise.instance_seeds().end());
  out.antithetic = noise.antithetic();
  return out;
}

absl::StatusOr<std::unique_ptr<TranslatedRequest>> TranslateSolveRequest(
    const v1::SolveRequest& request, const ServerLimits& limits) {
  WireRequest wire;
  wire.problem = request.has_problem() ? &request.problem() : nullptr;
  wire.theta = request.has_theta() ? &request.theta() : nullptr;
  wire.noise = request.has_noise() ? &request.noise() : nullptr;
  wire.second = request.has_targets() ? &request.targets() : nullptr;
  wire.second_field = "targets";
  wire.backend = request.backend();
  wire.jacobian = request.outputs().jacobian();
  wire.samples = request.outputs().samples();
  wire.solution_stderr = request.outputs().stderr();
  return Translate(wire, limits);
}

absl::StatusOr<std::unique_ptr<TranslatedRequest>> TranslateBackwardRequest(
    const v1::BackwardRequest& request, const ServerLimits& limits) {
  WireRequest wire;
  wire.problem = request.has_problem() ? &request.problem() : nullptr;
  wire.theta = request.has_theta() ? &request.theta() : nullptr;
  wire.noise = request.has_noise() ? &request.noise() : nullptr;
  wire.second = request.has_cotangent() ? &request.cotangent() : nullptr;
  wire.second_field = "cotangent";
  wire.second_required = true;
  wire.backend = request.backend();
  return Translate(wire, limits);
}

void FillSolveResponse(const TranslatedRequest& t, const PerturbedResult& result,
                       v1::SolveResponse* response) {
  const DType dtype = t.request.dtype;
  const int64_t d = result.dimension;
  const int64_t m = t.request.noise.num_samples;
  EncodeTensor(result.solution, OutputShape(t, {d}), dtype, response->mutable_solution());
  EncodeTensor(result.value, OutputShape(t, {}), dtype, response->mutable_value());
  if (t.request.jacobian) {
    EncodeTensor(result.jacobian, OutputShape(t, {d, d}), dtype, response->mutable_jacobian());
  }
  if (!t.request.targets.empty()) {
    EncodeTensor(result.loss, OutputShape(t, {}), dtype, response->mutable_loss());
    EncodeTensor(result.loss_grad, OutputShape(t, {d}), dtype, response->mutable_loss_grad());
  }
  if (t.request.solution_stderr) {
    EncodeTensor(result.solution_stderr, OutputShape(t, {d}), dtype,
                 response->mutable_solution_stderr());
  }
  if (t.request.samples) {
    EncodeTensor(result.samples, OutputShape(t, {m, d}), dtype, response->mutable_samples());
  }
  FillStats(result, response->mutable_stats());
}

void FillBackwardResponse(const TranslatedRequest& t, const PerturbedResult& result,
                          v1::BackwardResponse* response) {
  EncodeTensor(result.grad_theta, OutputShape(t, {result.dimension}), t.request.dtype,
               response->mutable_grad_theta());
  FillStats(result, response->mutable_stats());
}

}  // namespace perturbd
