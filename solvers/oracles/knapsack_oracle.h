// KnapsackOracle: the best subset of items under one weight capacity (0/1 knapsack).
//
//   MAXIMIZE: y*(θ) = argmax_{y ∈ C} ⟨y, θ⟩,  C = {y ∈ {0,1}^n : Σ_i weights[i]·y_i ≤ capacity}
//   MINIMIZE: argmin over the same C               (= MAXIMIZE(−θ) exactly)
//
// θ[i] is the value of item i; d = n = len(weights). Weights and capacity are non-negative
// integers. MINIMIZE is supported for completeness: since ∅ ∈ C, it takes exactly the items
// that lower ⟨y, θ⟩ under the capacity (the empty set when θ ≥ 0).
//
// Algorithm: dynamic programming over the capacity, O(n·C) per solve, after a reduction done
// once at creation: items heavier than the capacity are never taken; zero-weight items are
// taken iff their (signed) value is > 0; the remaining weights and the capacity are divided by
// their gcd; and when all the remaining items fit together no DP is needed (each is taken iff
// its value is > 0). The DP keeps one decision bit per (item, capacity) cell and one double per
// capacity in the workspace, (n' + 64)·(C' + 1) bits for the n' items and the capacity C' left
// after the reduction. Over `kMaxTableBits` (16 MiB per workspace) the knapsack is
// RESOURCE_EXHAUSTED at creation, after every INVALID_ARGUMENT check; such knapsacks go through
// `linear_program` with integer flags.
//
// Ties: an item is taken only if it strictly improves the value, decided from the last item
// back, so among optimal sets the oracle returns the one whose indicator Σ_i 2^i y_i is the
// smallest (highest-index items are left out first). A NaN value is never taken.
//
// Shapes: θ ∈ R^n; y ∈ {0,1}^n.
#ifndef PERTURBD_SOLVERS_ORACLES_KNAPSACK_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_KNAPSACK_ORACLE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class KnapsackOracle final : public Oracle {
 public:
  // The largest dynamic-programming table, (n' + 64)·(C' + 1) bits: 16 MiB per workspace.
  static constexpr int64_t kMaxTableBits = int64_t{1} << 27;

  // Both senses. INVALID_ARGUMENT `problem.knapsack.weights` (no items),
  // `problem.knapsack.weights[i]` (negative), `problem.knapsack.capacity` (negative),
  // `theta.shape` (d ≠ number of items); then RESOURCE_EXHAUSTED `problem.knapsack.capacity`
  // when the reduced table exceeds kMaxTableBits.
  static absl::StatusOr<std::unique_ptr<KnapsackOracle>> Create(const KnapsackSpec& spec,
                                                                int64_t dimension, Sense sense);

  absl::string_view name() const override { return "knapsack"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  // The most items any feasible set holds.
  int64_t max_nonzeros() const override { return max_nonzeros_; }
  double cost_per_solve() const override;
  // (n' + 64)·(C' + 1): the bits of the reduced table; 0 when no DP is needed.
  int64_t table_bits() const {
    return dp_items_.empty() ? 0 : (static_cast<int64_t>(dp_items_.size()) + 64) * (capacity_ + 1);
  }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  KnapsackOracle() = default;

  int64_t dimension_ = 0;
  Sense sense_ = Sense::kMaximize;
  int64_t capacity_ = 0;             // C', in units of the gcd
  std::vector<int32_t> dp_items_;    // items with 0 < weight ≤ capacity, increasing; empty
                                     // when they all fit together
  std::vector<int64_t> dp_weights_;  // their weights / gcd
  std::vector<int32_t> free_items_;  // taken iff value > 0: zero weight, or all fit together
  int64_t max_nonzeros_ = 0;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_KNAPSACK_ORACLE_H_
