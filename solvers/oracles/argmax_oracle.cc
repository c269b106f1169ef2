#include "solvers/oracles/argmax_oracle.h"

#include <cassert>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"
#include "solvers/oracles/internal/vector_clones.h"

namespace perturbd {
namespace {

// The largest (maximize) or smallest entry of x[0..d) into `extreme`; false when x has a NaN.
PERTURBD_ORACLE_VECTOR_CLONES
bool Extreme(const double* __restrict x, size_t d, bool maximize, double& extreme) {
  double hi = x[0], lo = x[0];
  int nan = 0;
#pragma omp simd reduction(max : hi) reduction(min : lo) reduction(| : nan)
  for (size_t i = 0; i < d; ++i) {
    hi = x[i] > hi ? x[i] : hi;
    lo = x[i] < lo ? x[i] : lo;
    nan |= x[i] != x[i] ? 1 : 0;
  }
  extreme = maximize ? hi : lo;
  return nan == 0;
}

// The first index holding v, which x[0..d) holds: blocks of 32 tested by vector compares,
// then the scalar scan inside the block that has it.
PERTURBD_ORACLE_VECTOR_CLONES
size_t FirstEqual(const double* __restrict x, size_t d, double v) {
  constexpr size_t kBlock = 32;
  size_t i = 0;
  for (; i + kBlock <= d; i += kBlock) {
    int hit = 0;
#pragma omp simd reduction(| : hit)
    for (size_t j = 0; j < kBlock; ++j) hit |= x[i + j] == v ? 1 : 0;
    if (hit != 0) break;
  }
  while (!(x[i] == v)) ++i;
  return i;
}

}  // namespace

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
  const double* x = theta.data();
  const size_t d = theta.size();
  // Vector pass: the extreme value (and whether there is a NaN); then the first index holding
  // it. The same answer as the strict scalar scan (lowest index among ties, −0 = +0), which
  // still serves inputs with a NaN (its answer depends on where the NaN is).
  const bool maximize = sense_ == Sense::kMaximize;
  size_t best = 0;
  double extreme;
  if (!Extreme(x, d, maximize, extreme)) {
    if (maximize) {
      for (size_t i = 1; i < d; ++i) {
        if (x[i] > x[best]) best = i;
      }
    } else {
      for (size_t i = 1; i < d; ++i) {
        if (x[i] < x[best]) best = i;
      }
    }
  } else {
    best = FirstEqual(x, d, extreme);
  }
  y.Push(static_cast<int64_t>(best), 1.0);
  return 0;
}

}  // namespace perturbd
