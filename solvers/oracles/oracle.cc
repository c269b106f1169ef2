#include "solvers/oracles/oracle.h"

#include <algorithm>

namespace perturbd {

absl::string_view SenseName(Sense sense) {
  return sense == Sense::kMaximize ? "MAXIMIZE" : "MINIMIZE";
}

void SparseVector::ToDense(absl::Span<double> out) const {
  std::fill(out.begin(), out.end(), 0.0);
  for (size_t k = 0; k < index_.size(); ++k) out[index_[k]] = value_[k];
}

int64_t Oracle::SolveBatch(absl::Span<const absl::Span<double>> thetas, OracleWorkspace& workspace,
                           absl::Span<SparseVector* const> ys) const {
  int64_t clamped = 0;
  for (size_t j = 0; j < thetas.size(); ++j) clamped += Solve(thetas[j], workspace, *ys[j]);
  return clamped;
}

}  // namespace perturbd
