#include "solvers/oracles/linear_program_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "CbcHeuristic.hpp"
#include "CbcModel.hpp"
#include "CglClique.hpp"
#include "CglFlowCover.hpp"
#include "CglGomory.hpp"
#include "CglKnapsackCover.hpp"
#include "CglMixedIntegerRounding2.hpp"
#include "ClpSimplex.hpp"
#include "CoinError.hpp"
#include "CoinFinite.hpp"
#include "OsiClpSolverInterface.hpp"
#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace oracle_internal {

// The structure in COIN's terms: A column-major with duplicates summed, ±∞ as ±COIN_DBL_MAX,
// plus the creation-time starting point.
struct LinearProgramModel {
  int num_columns = 0;
  int num_rows = 0;
  std::vector<CoinBigIndex> column_start;  // num_columns + 1
  std::vector<int> row;
  std::vector<double> value;
  std::vector<double> column_lower, column_upper, row_lower, row_upper;
  std::vector<uint8_t> is_integer;   // per column
  std::vector<int> integer_columns;  // the columns with is_integer
  double direction = -1.0;           // COIN's objective sense: 1 minimise, −1 maximise
  // Where every LP workspace starts (and returns to on Reset): the basis and solution of the
  // zero-objective feasibility solve.
  std::vector<unsigned char> basis;  // Clp status array, num_columns + num_rows
  std::vector<double> start;         // num_columns
};

}  // namespace oracle_internal

namespace {

using oracle_internal::LinearProgramModel;

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr absl::string_view kField = "problem.linear_program";

double ToCoin(double bound) {
  if (bound == kInfinity) return COIN_DBL_MAX;
  if (bound == -kInfinity) return -COIN_DBL_MAX;
  return bound;
}

absl::Status FieldError(absl::string_view field, size_t i, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kField, ".", field, "[", i, "]: ", what));
}

absl::Status LengthError(absl::string_view field, size_t length, absl::string_view other,
                         size_t expected) {
  return absl::InvalidArgumentError(absl::StrCat(kField, ".", field, ": has length ", length,
                                                 " but ", other, " has length ", expected,
                                                 "; they must be equal"));
}

// Bounds pairs: no NaN, lower < +∞, upper > −∞, lower ≤ upper.
absl::Status CheckBounds(absl::string_view lower_field, const std::vector<double>& lower,
                         absl::string_view upper_field, const std::vector<double>& upper) {
  for (size_t i = 0; i < lower.size(); ++i) {
    if (std::isnan(lower[i]) || lower[i] == kInfinity) {
      return FieldError(lower_field, i,
                        absl::StrCat("must be a number below +inf, got ", lower[i]));
    }
    if (std::isnan(upper[i]) || upper[i] == -kInfinity) {
      return FieldError(upper_field, i,
                        absl::StrCat("must be a number above -inf, got ", upper[i]));
    }
    if (lower[i] > upper[i]) {
      return FieldError(
          upper_field, i,
          absl::StrCat("must be >= ", lower_field, "[", i, "] = ", lower[i], ", got ", upper[i]));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateStructure(const LinearProgramSpec& spec) {
  const size_t n = spec.num_variables;
  if (n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kField, ".num_variables: must be >= 1, got 0"));
  }
  const size_t nnz = spec.row_index.size();
  if (spec.column_index.size() != nnz) {
    return LengthError("column_index", spec.column_index.size(), "row_index", nnz);
  }
  if (spec.coefficient.size() != nnz) {
    return LengthError("coefficient", spec.coefficient.size(), "row_index", nnz);
  }
  const size_t m = spec.row_lower.size();
  if (spec.row_upper.size() != m) {
    return LengthError("row_upper", spec.row_upper.size(), "row_lower", m);
  }
  if (m > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      nnz > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ".row_index: more than 2^31 - 1 rows or coefficients"));
  }
  for (size_t k = 0; k < nnz; ++k) {
    if (spec.row_index[k] >= m) {
      return FieldError("row_index", k,
                        absl::StrCat("row ", spec.row_index[k],
                                     " is out of range [0, len(row_lower) = ", m, ")"));
    }
    if (spec.column_index[k] >= n) {
      return FieldError("column_index", k,
                        absl::StrCat("column ", spec.column_index[k],
                                     " is out of range [0, num_variables = ", n, ")"));
    }
    if (!std::isfinite(spec.coefficient[k])) {
      return FieldError("coefficient", k,
                        absl::StrCat("must be finite, got ", spec.coefficient[k]));
    }
  }
  RETURN_IF_ERROR(CheckBounds("row_lower", spec.row_lower, "row_upper", spec.row_upper));
  for (const auto* bounds : {&spec.variable_lower, &spec.variable_upper}) {
    if (!bounds->empty() && bounds->size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          kField, bounds == &spec.variable_lower ? ".variable_lower" : ".variable_upper",
          ": must be empty or have length num_variables = ", n, ", got ", bounds->size()));
    }
  }
  const std::vector<double> lower =
      spec.variable_lower.empty() ? std::vector<double>(n, 0.0) : spec.variable_lower;
  const std::vector<double> upper =
      spec.variable_upper.empty() ? std::vector<double>(n, kInfinity) : spec.variable_upper;
  RETURN_IF_ERROR(CheckBounds("variable_lower", lower, "variable_upper", upper));
  if (!spec.integer.empty() && spec.integer.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ".integer: must be empty or have length num_variables = ", n, ", got ",
                     spec.integer.size()));
  }
  return absl::OkStatus();
}

std::unique_ptr<LinearProgramModel> BuildModel(const LinearProgramSpec& spec, Sense sense) {
  auto model = std::make_unique<LinearProgramModel>();
  const int n = static_cast<int>(spec.num_variables);
  const int m = static_cast<int>(spec.row_lower.size());
  model->num_columns = n;
  model->num_rows = m;
  model->direction = sense == Sense::kMaximize ? -1.0 : 1.0;
  // Column-major, duplicates summed in input order (deterministic rounding).
  std::vector<size_t> order(spec.row_index.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&spec](size_t a, size_t b) {
    if (spec.column_index[a] != spec.column_index[b]) {
      return spec.column_index[a] < spec.column_index[b];
    }
    if (spec.row_index[a] != spec.row_index[b]) return spec.row_index[a] < spec.row_index[b];
    return a < b;
  });
  model->column_start.assign(static_cast<size_t>(n) + 1, 0);
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t t = order[k];
    if (k > 0 && spec.column_index[order[k - 1]] == spec.column_index[t] &&
        spec.row_index[order[k - 1]] == spec.row_index[t]) {
      model->value.back() += spec.coefficient[t];
      continue;
    }
    model->row.push_back(static_cast<int>(spec.row_index[t]));
    model->value.push_back(spec.coefficient[t]);
    ++model->column_start[spec.column_index[t] + 1];
  }
  for (int j = 0; j < n; ++j) model->column_start[j + 1] += model->column_start[j];
  for (int i = 0; i < m; ++i) {
    model->row_lower.push_back(ToCoin(spec.row_lower[i]));
    model->row_upper.push_back(ToCoin(spec.row_upper[i]));
  }
  for (int j = 0; j < n; ++j) {
    model->column_lower.push_back(spec.variable_lower.empty() ? 0.0
                                                              : ToCoin(spec.variable_lower[j]));
    model->column_upper.push_back(spec.variable_upper.empty() ? COIN_DBL_MAX
                                                              : ToCoin(spec.variable_upper[j]));
    const bool integer = !spec.integer.empty() && spec.integer[j];
    model->is_integer.push_back(integer ? 1 : 0);
    if (integer) model->integer_columns.push_back(j);
  }
  return model;
}

void LoadClp(const LinearProgramModel& model, ClpSimplex& clp) {
  const std::vector<double> zero(static_cast<size_t>(model.num_columns), 0.0);
  clp.setLogLevel(0);
  clp.loadProblem(model.num_columns, model.num_rows, model.column_start.data(), model.row.data(),
                  model.value.data(), model.column_lower.data(), model.column_upper.data(),
                  zero.data(), model.row_lower.data(), model.row_upper.data());
  clp.setOptimizationDirection(model.direction);
}

void LoadOsi(const LinearProgramModel& model, OsiClpSolverInterface& solver) {
  const std::vector<double> zero(static_cast<size_t>(model.num_columns), 0.0);
  solver.messageHandler()->setLogLevel(0);
  solver.getModelPtr()->setLogLevel(0);
  solver.loadProblem(model.num_columns, model.num_rows, model.column_start.data(), model.row.data(),
                     model.value.data(), model.column_lower.data(), model.column_upper.data(),
                     zero.data(), model.row_lower.data(), model.row_upper.data());
  solver.setObjSense(model.direction);
  if (!model.integer_columns.empty()) {
    solver.setInteger(model.integer_columns.data(), static_cast<int>(model.integer_columns.size()));
  }
}

// Quiet, time-limited branch and bound with the usual cut generators and a rounding heuristic.
// Not CglProbing: with Cbc 2.10 it cut off the optimum of small maximisation problems with
// negative integer bounds (found by the brute-force tests).
void ConfigureCbc(CbcModel& cbc) {
  cbc.setLogLevel(0);
  cbc.messageHandler()->setLogLevel(0);
  cbc.solver()->messageHandler()->setLogLevel(0);
  cbc.setUseElapsedTime(true);
  cbc.setMaximumSeconds(LinearProgramOracle::kSolveTimeLimitSeconds);
  cbc.setNumberThreads(0);
  // Cbc's default asks a new incumbent to improve by 1e-5, so a heuristic's first solution
  // could stand although up to 1e-5 worse than the optimum.
  cbc.setDblParam(CbcModel::CbcCutoffIncrement, 1e-9);
  // Plain (not pseudo-cost-trusting) branching: Debian's Cbc 2.10 asserts in
  // OsiClpSolverInterface::markHotStart on some tiny problems otherwise (tests found one).
  cbc.setNumberBeforeTrust(0);
  CglGomory gomory;
  gomory.setLimit(300);
  CglKnapsackCover knapsack_cover;
  CglClique clique;
  clique.setStarCliqueReport(false);
  clique.setRowCliqueReport(false);
  CglMixedIntegerRounding2 mixed_integer_rounding;
  CglFlowCover flow_cover;
  cbc.addCutGenerator(&gomory, -1, "Gomory");
  cbc.addCutGenerator(&knapsack_cover, -1, "Knapsack");
  cbc.addCutGenerator(&clique, -1, "Clique");
  cbc.addCutGenerator(&mixed_integer_rounding, -1, "MixedIntegerRounding2");
  cbc.addCutGenerator(&flow_cover, -1, "FlowCover");
  CbcRounding rounding(cbc);
  cbc.addHeuristic(&rounding);
}

absl::Status TimeLimitError(absl::string_view what) {
  return absl::ResourceExhaustedError(absl::StrCat(kField, ": ", what, " did not finish within ",
                                                   LinearProgramOracle::kSolveTimeLimitSeconds,
                                                   " s"));
}

absl::Status UnboundedError() {
  return absl::FailedPreconditionError(
      absl::StrCat(kField,
                   ": the perturbed objective is unbounded over the feasible set (bound the "
                   "variables, or lower epsilon)"));
}

absl::Status SolverTrouble(absl::string_view solver, int status) {
  return absl::FailedPreconditionError(
      absl::StrCat(kField, ": ", solver, " stopped with status ", status,
                   " (numerical difficulties); scale the problem or bound the variables"));
}

// x cleaned as documented in the header: integers rounded, near-integers snapped.
double Clean(double v, bool integer) {
  const double r = std::nearbyint(v);
  if (integer) return r;
  return std::abs(v - r) <= LinearProgramOracle::kSnapTolerance * std::max(1.0, std::abs(v)) ? r
                                                                                             : v;
}

// Reset rebuilds the solver from the model, so that a workspace after Reset is exactly a new
// one (no scaling, factorization or perturbation state survives).
struct LpWorkspace final : OracleWorkspace {
  explicit LpWorkspace(std::shared_ptr<const LinearProgramModel> m) : model(std::move(m)) {
    Reset();
  }
  void Reset() override {
    clp = std::make_unique<ClpSimplex>();
    LoadClp(*model, *clp);
    clp->copyinStatus(model->basis.data());
    clp->setColSolution(model->start.data());
  }
  std::shared_ptr<const LinearProgramModel> model;
  std::unique_ptr<ClpSimplex> clp;
};

// The LP relaxation is solved first in `solver` (warm-started from the previous relaxation's
// basis), which also detects unboundedness: Cbc reports an unbounded MILP as infeasible.
struct MipWorkspace final : OracleWorkspace {
  explicit MipWorkspace(std::shared_ptr<const LinearProgramModel> m) : model(std::move(m)) {
    Reset();
  }
  void Reset() override {
    solver = std::make_unique<OsiClpSolverInterface>();
    LoadOsi(*model, *solver);
    solved = false;
  }
  std::shared_ptr<const LinearProgramModel> model;
  std::unique_ptr<OsiClpSolverInterface> solver;
  bool solved = false;  // whether `solver` holds a basis to resolve from
};

// The zero-objective solve of Create: finds the starting point or proves infeasibility.
absl::Status FindStart(LinearProgramModel& model) {
  if (model.integer_columns.empty()) {
    ClpSimplex clp;
    LoadClp(model, clp);
    clp.setMaximumWallSeconds(LinearProgramOracle::kSolveTimeLimitSeconds);
    clp.dual();
    switch (clp.status()) {
      case 0:
        break;
      case 1:
        return absl::InvalidArgumentError(
            absl::StrCat(kField,
                         ": the constraints are infeasible: no y satisfies the row and variable "
                         "bounds"));
      case 3:
        return TimeLimitError("the feasibility check");
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(kField, ": the feasibility check stopped with Clp status ", clp.status(),
                         " (numerical difficulties); scale the problem"));
    }
    const unsigned char* status = clp.statusArray();
    model.basis.assign(status, status + model.num_columns + model.num_rows);
    const double* x = clp.primalColumnSolution();
    model.start.assign(x, x + model.num_columns);
    return absl::OkStatus();
  }
  OsiClpSolverInterface solver;
  LoadOsi(model, solver);
  CbcModel cbc(solver);
  ConfigureCbc(cbc);
  cbc.branchAndBound();
  if (cbc.bestSolution() != nullptr) return absl::OkStatus();
  if (cbc.isSecondsLimitReached()) return TimeLimitError("the feasibility check");
  if (cbc.isProvenInfeasible() || cbc.isInitialSolveProvenPrimalInfeasible()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField,
                     ": the constraints are infeasible: no y satisfies the row and variable bounds "
                     "and the integer flags"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(kField, ": the feasibility check stopped with Cbc status ", cbc.status(),
                   " (numerical difficulties); scale the problem"));
}

}  // namespace

LinearProgramOracle::~LinearProgramOracle() = default;

absl::StatusOr<std::unique_ptr<LinearProgramOracle>> LinearProgramOracle::Create(
    const LinearProgramSpec& spec, int64_t dimension, Sense sense) {
  RETURN_IF_ERROR(ValidateStructure(spec));
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, spec.num_variables, "problem.linear_program.num_variables"));
  std::unique_ptr<LinearProgramModel> model = BuildModel(spec, sense);
  try {
    RETURN_IF_ERROR(FindStart(*model));
  } catch (const CoinError& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ": the feasibility check failed in COIN-OR: ", e.message()));
  }
  auto oracle = std::unique_ptr<LinearProgramOracle>(new LinearProgramOracle());
  oracle->dimension_ = dimension;
  oracle->sense_ = sense;
  bool binary = !model->integer_columns.empty() &&
                static_cast<int>(model->integer_columns.size()) == model->num_columns;
  for (int j = 0; binary && j < model->num_columns; ++j) {
    binary = std::ceil(model->column_lower[j]) >= 0.0 && std::floor(model->column_upper[j]) <= 1.0;
  }
  oracle->binary_ = binary;
  // Aiming at about 1 ns per unit, like the other oracles (bench/oracle_benchmark.cc): a
  // warm-started Clp solve of the benchmark LPs took 120–240 ns per (nonzero + row + column).
  // Branch and bound has no such bound; 10^4 per unit is a guess, within an order of magnitude
  // on the benchmark MILPs (up to 30 variables).
  const double size =
      static_cast<double>(model->value.size() + model->num_rows + model->num_columns);
  oracle->cost_per_solve_ = (model->integer_columns.empty() ? 300.0 : 1e4) * size;
  oracle->model_ = std::move(model);
  return oracle;
}

bool LinearProgramOracle::is_mip() const { return !model_->integer_columns.empty(); }

int64_t LinearProgramOracle::num_rows() const { return model_->num_rows; }

std::unique_ptr<OracleWorkspace> LinearProgramOracle::NewWorkspace() const {
  if (is_mip()) return std::make_unique<MipWorkspace>(model_);
  return std::make_unique<LpWorkspace>(model_);
}

int64_t LinearProgramOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                   SparseVector& y) const {
  absl::StatusOr<int64_t> clamped = SolveChecked(theta, workspace, y);
  return clamped.ok() ? *clamped : 0;
}

absl::StatusOr<int64_t> LinearProgramOracle::SolveChecked(absl::Span<double> theta,
                                                          OracleWorkspace& workspace,
                                                          SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  y.Clear();
  const LinearProgramModel& model = *model_;
  try {
    if (!is_mip()) {
      auto& ws = static_cast<LpWorkspace&>(workspace);
      ws.clp->chgObjCoefficients(theta.data());
      ws.clp->setMaximumWallSeconds(kSolveTimeLimitSeconds);
      ws.clp->primal();
      if (ws.clp->status() == 1 || ws.clp->status() >= 4) {
        // Numerical trouble from the warm start (the basis is primal feasible, so status 1 is
        // round-off): once more from the creation-time basis.
        ws.Reset();
        ws.clp->chgObjCoefficients(theta.data());
        ws.clp->setMaximumWallSeconds(kSolveTimeLimitSeconds);
        ws.clp->primal();
      }
      const int status = ws.clp->status();
      if (status != 0) {
        ws.Reset();
        if (status == 2) return UnboundedError();
        if (status == 3) return TimeLimitError("a solve");
        return SolverTrouble("Clp", status);
      }
      const double* x = ws.clp->primalColumnSolution();
      for (int j = 0; j < model.num_columns; ++j) {
        const double v = Clean(x[j], false);
        if (v != 0.0) y.Push(j, v);
      }
      return 0;
    }

    auto& ws = static_cast<MipWorkspace&>(workspace);
    OsiClpSolverInterface& solver = *ws.solver;
    solver.setObjective(theta.data());
    solver.getModelPtr()->setMaximumWallSeconds(kSolveTimeLimitSeconds);
    if (ws.solved) {
      solver.resolve();
    } else {
      solver.initialSolve();
    }
    ws.solved = true;
    if (solver.isProvenDualInfeasible()) {
      ws.Reset();
      return UnboundedError();
    }
    if (!solver.isProvenOptimal()) {
      const bool time = solver.isIterationLimitReached();
      const int status = solver.getModelPtr()->status();
      ws.Reset();  // destroys `solver`
      if (time) return TimeLimitError("a solve");
      return SolverTrouble("Clp (relaxation)", status);
    }
    CbcModel cbc(solver);
    ConfigureCbc(cbc);
    cbc.branchAndBound();
    if (!cbc.isProvenOptimal() || cbc.bestSolution() == nullptr) {
      ws.Reset();
      if (cbc.isSecondsLimitReached()) return TimeLimitError("a solve");
      return SolverTrouble("Cbc", cbc.status() * 100 + cbc.secondaryStatus());
    }
    const double* x = cbc.bestSolution();
    for (int j = 0; j < model.num_columns; ++j) {
      const double v = Clean(x[j], model.is_integer[j] != 0);
      if (v != 0.0) y.Push(j, v);
    }
    return 0;
  } catch (const CoinError& e) {
    y.Clear();
    workspace.Reset();
    return absl::InternalError(absl::StrCat(kField, ": COIN-OR failed: ", e.message()));
  }
}

}  // namespace perturbd
