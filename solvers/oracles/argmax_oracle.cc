#include "solvers/oracles/argmax_oracle.h"

#include <cassert>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {

absl::StatusOr<std::unique_ptr<ArgmaxOracle>> ArgmaxOracle::Create(int64_t dimension, Sense sense) {
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  return std::unique_ptr<ArgmaxOracle>(new ArgmaxOracle(dimension, sense));
}

std::unique_ptr<OracleWorkspace> ArgmaxOracle::NewWorkspace() const {
  return std::make_unique<OracleWorkspace>();
}

int64_t ArgmaxOracle::Solve(absl::Span<double> theta, OracleWorkspace& /*workspace*/,
                            SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  y.Clear();
  size_t best = 0;
  // Strict comparisons keep the first (lowest) index among ties.
  if (sense_ == Sense::kMaximize) {
    for (size_t i = 1; i < theta.size(); ++i) {
      if (theta[i] > theta[best]) best = i;
    }
  } else {
    for (size_t i = 1; i < theta.size(); ++i) {
      if (theta[i] < theta[best]) best = i;
    }
  }
  y.Push(static_cast<int64_t>(best), 1.0);
  return 0;
}

}  // namespace perturbd
