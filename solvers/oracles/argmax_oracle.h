// ArgmaxOracle: the vertex of the simplex that maximizes (or minimizes) a linear score.
//
//   MAXIMIZE: y*(θ) = e_{i*},  i* = argmax_i θ_i
//   MINIMIZE: y*(θ) = e_{i*},  i* = argmin_i θ_i      (= MAXIMIZE(−θ) exactly)
//
// C = {e_1, …, e_d}, the one-hot vectors, so ⟨y*, θ⟩ = θ_{i*}. Ties break to the lowest index.
// Under GUMBEL noise the smoothed solution is softmax(θ/ε) (DESIGN §1), the estimator tests'
// closed form.
//
// Shapes: θ ∈ R^d (any d ≥ 1); y one-hot of length d, one non-zero equal to 1. O(d) per solve,
// no workspace. A NaN score is never selected unless it sits at index 0 (θ is expected finite).
#ifndef PERTURBD_SOLVERS_ORACLES_ARGMAX_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_ARGMAX_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"

namespace perturbd {

class ArgmaxOracle final : public Oracle {
 public:
  // Both senses. INVALID_ARGUMENT `theta.shape` unless d ≥ 1.
  static absl::StatusOr<std::unique_ptr<ArgmaxOracle>> Create(int64_t dimension, Sense sense);

  absl::string_view name() const override { return "argmax"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  int64_t max_nonzeros() const override { return 1; }
  double cost_per_solve() const override { return static_cast<double>(dimension_); }
  int64_t selection_k() const override { return 1; }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  ArgmaxOracle(int64_t dimension, Sense sense) : dimension_(dimension), sense_(sense) {}

  int64_t dimension_;
  Sense sense_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ARGMAX_ORACLE_H_
