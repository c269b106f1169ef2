// ThresholdOracle: independent binary decisions (multilabel classification).
//
//   MAXIMIZE: y*(θ)_i = 1[θ_i > 0]      = argmax_{y ∈ {0,1}^d} ⟨y, θ⟩
//   MINIMIZE: y*(θ)_i = 1[θ_i < 0]      = argmin_{y ∈ {0,1}^d} ⟨y, θ⟩  (= MAXIMIZE(−θ))
//
// C = {0,1}^d (the vertices of the unit cube). A zero score is a tie and gives y_i = 0 (the
// lowest vertex), as does NaN. Under NORMAL noise the smoothed solution is Φ(θ/ε) (DESIGN §1).
//
// Shapes: θ ∈ R^d (any d ≥ 1); y ∈ {0,1}^d, up to d non-zeros. O(d) per solve, no workspace.
#ifndef PERTURBD_SOLVERS_ORACLES_THRESHOLD_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_THRESHOLD_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"

namespace perturbd {

class ThresholdOracle final : public Oracle {
 public:
  // Both senses. INVALID_ARGUMENT `theta.shape` unless d ≥ 1.
  static absl::StatusOr<std::unique_ptr<ThresholdOracle>> Create(int64_t dimension, Sense sense);

  absl::string_view name() const override { return "threshold"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  int64_t max_nonzeros() const override { return dimension_; }
  double cost_per_solve() const override { return static_cast<double>(dimension_); }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  ThresholdOracle(int64_t dimension, Sense sense) : dimension_(dimension), sense_(sense) {}

  int64_t dimension_;
  Sense sense_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_THRESHOLD_ORACLE_H_
