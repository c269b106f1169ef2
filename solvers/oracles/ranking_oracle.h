// RankingOracle: ranks as the vertices of the permutahedron.
//
//   MAXIMIZE: y*(θ) = argmax_{y ∈ P} ⟨y, θ⟩,  P = {permutations of (0, 1, …, d−1)}
//             = 0-based ascending ranks (argsort of argsort): the smallest θ_i gets 0, the
//               largest d−1 (rearrangement inequality).
//   MINIMIZE: argmin_{y ∈ P} ⟨y, θ⟩: the largest θ_i gets 0   (= MAXIMIZE(−θ) exactly)
//
// Ties (both senses): the lower index gets the lower rank, i.e. the lexicographically smallest
// optimal y. Indices are ordered by (key, index) with key = θ (MAXIMIZE) or −θ (MINIMIZE); a
// NaN key is ordered as −∞ (θ is expected finite).
//
// Shapes: θ ∈ R^d (any d ≥ 1); y ∈ {0, …, d−1}^d with distinct entries. Rank 0 is a zero, so y
// has d − 1 non-zeros and `binary_solutions()` is false. O(d log d) per solve (std::sort on an
// index array held in the workspace).
#ifndef PERTURBD_SOLVERS_ORACLES_RANKING_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_RANKING_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"

namespace perturbd {

class RankingOracle final : public Oracle {
 public:
  // Both senses. INVALID_ARGUMENT `theta.shape` unless d ≥ 1.
  static absl::StatusOr<std::unique_ptr<RankingOracle>> Create(int64_t dimension, Sense sense);

  absl::string_view name() const override { return "ranking"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  bool binary_solutions() const override { return false; }
  int64_t max_nonzeros() const override { return dimension_ - 1; }
  double cost_per_solve() const override;

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  RankingOracle(int64_t dimension, Sense sense) : dimension_(dimension), sense_(sense) {}

  int64_t dimension_;
  Sense sense_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_RANKING_ORACLE_H_
