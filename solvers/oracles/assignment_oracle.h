// AssignmentOracle: the best matching of a rows × cols score matrix (linear assignment).
//
//   MAXIMIZE: y*(θ) = argmax_{y ∈ C} ⟨y, θ⟩ = argmax Σ_{(i,j) matched} θ[i·cols + j]
//   MINIMIZE: argmin                          (= MAXIMIZE(−θ) exactly)
//
// C = the 0/1 rows × cols matrices (row-major, d = rows·cols) with at most one 1 per row and
// per column and exactly min(rows, cols) ones: every row is matched when rows ≤ cols, every
// column when rows > cols (a rectangular matrix matches its shorter side completely). With
// rows = cols these are the permutation matrices (vertices of the Birkhoff polytope).
//
// Algorithm: shortest augmenting paths with dual potentials (the Jonker–Volgenant form of the
// Hungarian method), one augmentation per row of the shorter side, O(n²·m) with
// n = min(rows, cols), m = max(rows, cols); any sign of θ. The costs are copied once per solve
// into the workspace, shorter side first, so a tall matrix costs the same as its transpose.
// Ties are broken deterministically (the same θ always gives the same y) but not by a simple
// index rule. θ is expected finite: a NaN entry is treated as the worst score, and non-finite
// scores give a valid matching that need not be optimal.
//
// Shapes: θ ∈ R^{rows·cols}; y ∈ {0,1}^{rows·cols} with exactly min(rows, cols) non-zeros.
#ifndef PERTURBD_SOLVERS_ORACLES_ASSIGNMENT_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_ASSIGNMENT_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class AssignmentOracle final : public Oracle {
 public:
  // Both senses. INVALID_ARGUMENT `problem.assignment.rows` / `.cols` unless ≥ 1,
  // `theta.shape` unless d = rows·cols.
  static absl::StatusOr<std::unique_ptr<AssignmentOracle>> Create(const AssignmentSpec& spec,
                                                                  int64_t dimension, Sense sense);

  absl::string_view name() const override { return "assignment"; }
  int64_t dimension() const override { return rows_ * cols_; }
  Sense sense() const override { return sense_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t max_nonzeros() const override { return rows_ < cols_ ? rows_ : cols_; }
  double cost_per_solve() const override;

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  AssignmentOracle(int64_t rows, int64_t cols, Sense sense)
      : rows_(rows), cols_(cols), sense_(sense) {}

  int64_t rows_;
  int64_t cols_;
  Sense sense_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ASSIGNMENT_ORACLE_H_
