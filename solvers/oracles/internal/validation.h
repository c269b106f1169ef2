// Validation helpers shared by the oracles' `Create` functions. Every error is
// INVALID_ARGUMENT and its message starts with the wire field path it is about.
#ifndef PERTURBD_SOLVERS_ORACLES_INTERNAL_VALIDATION_H_
#define PERTURBD_SOLVERS_ORACLES_INTERNAL_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "solvers/oracles/oracle.h"

namespace perturbd::oracle_internal {

// The largest d an oracle accepts: `SparseVector` stores indices as int32.
inline constexpr int64_t kMaxDimension = INT32_MAX;

// `theta.shape: ...` unless 1 ≤ d ≤ kMaxDimension.
absl::Status CheckDimension(int64_t dimension);

// `theta.shape: ...` unless d equals the dimension the structure implies.
absl::Status CheckStructuralDimension(int64_t dimension, int64_t expected,
                                      absl::string_view structure);

// `problem.sense: ...` explaining why `oracle` does not support `sense`.
absl::Status UnsupportedSense(absl::string_view oracle, Sense sense, absl::string_view why);

}  // namespace perturbd::oracle_internal

#endif  // PERTURBD_SOLVERS_ORACLES_INTERNAL_VALIDATION_H_
