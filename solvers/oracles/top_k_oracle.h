// TopKOracle: the k-hot vector of the k best scores.
//
//   MAXIMIZE: y*(θ) = argmax_{y ∈ {0,1}^d, Σy = k} ⟨y, θ⟩ = 1[i among the k largest θ_i]
//   MINIMIZE: the k smallest θ_i                           (= MAXIMIZE(−θ) exactly)
//
// C = the k-subsets of {0..d−1} as 0/1 vectors (vertices of the hypersimplex Δ(d, k)).
// Selection uses the total order "better score first, then lower index", so among tied scores
// the lowest indices are chosen (the lexicographically smallest optimal index set). A NaN score
// ranks as the worst possible score (θ is expected finite).
//
// Shapes: θ ∈ R^d, 1 ≤ k ≤ d; y has exactly k non-zeros equal to 1. O(d) per solve
// (`std::nth_element` on an index array held in the workspace).
#ifndef PERTURBD_SOLVERS_ORACLES_TOP_K_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_TOP_K_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class TopKOracle final : public Oracle {
 public:
  // Both senses. INVALID_ARGUMENT `problem.top_k.k` unless 1 ≤ k ≤ d, `theta.shape` unless
  // d ≥ 1.
  static absl::StatusOr<std::unique_ptr<TopKOracle>> Create(const TopKSpec& spec, int64_t dimension,
                                                            Sense sense);

  absl::string_view name() const override { return "top_k"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  int64_t k() const { return k_; }
  int64_t max_nonzeros() const override { return k_; }
  double cost_per_solve() const override { return 4.0 * static_cast<double>(dimension_); }
  int64_t selection_k() const override { return k_; }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  TopKOracle(int64_t dimension, int64_t k, Sense sense)
      : dimension_(dimension), k_(k), sense_(sense) {}

  int64_t dimension_;
  int64_t k_;
  Sense sense_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_TOP_K_ORACLE_H_
