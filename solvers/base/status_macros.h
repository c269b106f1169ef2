// Status propagation helpers.
//
// Debian's abseil (20220623) has no ABSL_RETURN_IF_ERROR, so perturbd defines the usual pair
// once here:
//
//   RETURN_IF_ERROR(ValidateShape(theta));
//   ASSIGN_OR_RETURN(std::unique_ptr<Oracle> oracle, MakeOracle(spec, d));
#ifndef PERTURBD_SOLVERS_BASE_STATUS_MACROS_H_
#define PERTURBD_SOLVERS_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PERTURBD_STATUS_CONCAT_INNER_(a, b) a##b
#define PERTURBD_STATUS_CONCAT_(a, b) PERTURBD_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    const absl::Status perturbd_status_ = (expr);        \
    if (!perturbd_status_.ok()) return perturbd_status_; \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  PERTURBD_ASSIGN_OR_RETURN_IMPL_(PERTURBD_STATUS_CONCAT_(statusor_, __LINE__), lhs, expr)

#define PERTURBD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // PERTURBD_SOLVERS_BASE_STATUS_MACROS_H_
