#include "solvers/oracles/internal/validation.h"

#include "absl/strings/str_cat.h"

namespace perturbd::oracle_internal {

absl::Status CheckDimension(int64_t dimension) {
  if (dimension < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: the last dimension d must be >= 1, got ", dimension));
  }
  if (dimension > kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "theta.shape: the last dimension d must be <= ", kMaxDimension, ", got ", dimension));
  }
  return absl::OkStatus();
}

absl::Status CheckStructuralDimension(int64_t dimension, int64_t expected,
                                      absl::string_view structure) {
  if (dimension != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("theta.shape: the last dimension d = ", dimension, " must equal ", structure,
                     " = ", expected));
  }
  return CheckDimension(dimension);
}

absl::Status UnsupportedSense(absl::string_view oracle, Sense sense, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("problem.sense: ", oracle, " does not support ", SenseName(sense), ": ", why));
}

}  // namespace perturbd::oracle_internal
