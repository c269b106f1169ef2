#include "solvers/oracles/threshold_oracle.h"

#include <cassert>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {

absl::StatusOr<std::unique_ptr<ThresholdOracle>> ThresholdOracle::Create(int64_t dimension,
                                                                         Sense sense) {
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  return std::unique_ptr<ThresholdOracle>(new ThresholdOracle(dimension, sense));
}

std::unique_ptr<OracleWorkspace> ThresholdOracle::NewWorkspace() const {
  return std::make_unique<OracleWorkspace>();
}

int64_t ThresholdOracle::Solve(absl::Span<double> theta, OracleWorkspace& /*workspace*/,
                               SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  y.Clear();
  if (sense_ == Sense::kMaximize) {
    for (size_t i = 0; i < theta.size(); ++i) {
      if (theta[i] > 0.0) y.Push(static_cast<int64_t>(i), 1.0);
    }
  } else {
    for (size_t i = 0; i < theta.size(); ++i) {
      if (theta[i] < 0.0) y.Push(static_cast<int64_t>(i), 1.0);
    }
  }
  return 0;
}

}  // namespace perturbd
