// LinearProgramOracle: a generic LP or MILP over a fixed feasible set, solved by COIN-OR.
//
//   MAXIMIZE: y*(θ) = argmax ⟨θ, y⟩  s.t.  row_lower ≤ A y ≤ row_upper,
//                                         variable_lower ≤ y ≤ variable_upper,
//                                         y_j ∈ Z for every j with integer[j]
//   MINIMIZE: argmin over the same set
//
// θ is the objective (d = num_variables); the structure (A, bounds, integrality) is the
// LinearProgramSpec of the request, shared by every instance and sample. Without integer
// variables C is the vertex set of a polyhedron and Clp's primal simplex returns an optimal
// vertex; with any, Cbc's branch and bound returns an optimal integer point (integrality
// tolerance 1e-6, Cbc's default; a new incumbent must improve by more than 1e-9).
//
// Structure, checked once by `Create`: A as (row_index, column_index, coefficient) triplets,
// duplicates summed, coefficients finite; rows = len(row_lower) = len(row_upper); empty
// variable_lower means 0 for every variable, empty variable_upper +∞, empty integer all
// continuous; bounds may be ±∞ but not NaN, a lower bound not +∞, an upper bound not −∞, and
// lower ≤ upper. (COIN's convention applies: finite bounds beyond ±1e27 count as infinite.)
// Create then solves the problem once with a zero objective: an infeasible structure is
// INVALID_ARGUMENT naming `problem.linear_program`; for an LP, the basis it finds is where every
// workspace starts.
//
// Per solve (one solver object per workspace, so per worker thread):
//  * LP: the Clp model is kept; only the objective changes, and primal simplex restarts from
//    the previous optimal basis, which stays primal feasible. A perturbed θ close to the last
//    one typically needs a few pivots.
//  * MILP: the LP relaxation is re-solved the same way (Clp, warm basis), which also detects
//    unboundedness (Cbc itself reports an unbounded MILP as infeasible), and Cbc's branch and
//    bound starts from that solved relaxation, with Gomory, knapsack-cover, clique, MIR and
//    flow-cover cuts and a rounding heuristic. (Not CglProbing and not pseudo-cost trust
//    branching: with Debian's Cbc 2.10 the first cut off optima and the second tripped an
//    assertion on tiny problems that the brute-force tests generate.)
//  `OracleWorkspace::Reset` rebuilds the solver as a new workspace has it (LP: at the basis of
//  the creation-time feasibility solve), so that a sequence of solves after a Reset depends on
//  its θs alone.
// A perturbed objective that is unbounded over C is a failure of that solve:
// `SolveChecked` returns FAILED_PRECONDITION (`problem.linear_program: ...unbounded...`), and
// a solve that runs past kSolveTimeLimitSeconds (wall clock) RESOURCE_EXHAUSTED. Plain
// `Solve` cannot report it and returns y = 0; callers use SolveChecked (`can_fail()` is true).
//
// Output: y is the solver's solution, cleaned: integer variables are rounded to the nearest
// integer; a continuous value within kSnapTolerance·max(1, |v|) of an integer (0 included) is
// set to that integer. So vertices with integral coordinates (network-flow and assignment LPs,
// every MILP) come out exact and reproducible whatever the starting basis; a fractional vertex
// carries the simplex's round-off (~1e-12 relative), which may depend on the starting basis.
// Only non-zeros are output; y is non-binary in general (`binary_solutions()` is true only
// when every variable is integer with bounds inside [0, 1]).
//
// Ties (degenerate objectives) are broken by the solver path: deterministic for a given
// starting state, not by an index rule. Solves allocate (COIN allocates internally), unlike
// the other oracles.
#ifndef PERTURBD_SOLVERS_ORACLES_LINEAR_PROGRAM_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_LINEAR_PROGRAM_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

namespace oracle_internal {
struct LinearProgramModel;  // the validated, merged structure; COIN types stay in the .cc
}  // namespace oracle_internal

class LinearProgramOracle final : public Oracle {
 public:
  // Wall-clock limit of one solve (and of the feasibility solve in Create).
  static constexpr double kSolveTimeLimitSeconds = 10.0;
  // Relative distance under which a continuous value is snapped to the nearest integer.
  static constexpr double kSnapTolerance = 1e-9;

  // Both senses. INVALID_ARGUMENT naming `problem.linear_program.<field>[i]` for malformed
  // structure, `theta.shape` when d ≠ num_variables, `problem.linear_program` when no y is
  // feasible; RESOURCE_EXHAUSTED when the feasibility solve runs past the time limit.
  static absl::StatusOr<std::unique_ptr<LinearProgramOracle>> Create(const LinearProgramSpec& spec,
                                                                     int64_t dimension,
                                                                     Sense sense);
  ~LinearProgramOracle() override;

  absl::string_view name() const override { return "linear_program"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  bool binary_solutions() const override { return binary_; }
  double cost_per_solve() const override { return cost_per_solve_; }
  bool can_fail() const override { return true; }
  // True when some variable is integer (Cbc), false for a pure LP (Clp).
  bool is_mip() const;
  // The number of rows of A.
  int64_t num_rows() const;

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;
  absl::StatusOr<int64_t> SolveChecked(absl::Span<double> theta, OracleWorkspace& workspace,
                                       SparseVector& y) const override;

 private:
  LinearProgramOracle() = default;

  int64_t dimension_ = 0;
  Sense sense_ = Sense::kMaximize;
  bool binary_ = false;
  double cost_per_solve_ = 0.0;
  // Shared with the workspaces, so that a workspace refers to nothing the oracle owns alone.
  std::shared_ptr<const oracle_internal::LinearProgramModel> model_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_LINEAR_PROGRAM_ORACLE_H_
