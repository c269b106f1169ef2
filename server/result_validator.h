// The last check before a response is encoded: every value it will carry is finite in the
// wire dtype.
//
// Valid inputs can still overflow: θ near the float64 limit plus noise, MULTIPLICATIVE noise
// with a large ε (exp(εZ)), a denormal ε dividing the Jacobian, or any float32 value beyond
// FLT_MAX once cast. Sending such a result as OK would put Inf or NaN into a training run
// unnoticed, so the call fails instead: INVALID_ARGUMENT naming the output, the first bad
// element and what to rescale ("jacobian: element 4 is +Inf in float64 ..."). DESIGN §5: never
// OK with an error inside.
//
// Cost: one pass over the outputs (bounded by max_response_values), after the solves.
// Thread safety: pure function.
#ifndef PERTURBD_SERVER_RESULT_VALIDATOR_H_
#define PERTURBD_SERVER_RESULT_VALIDATOR_H_

#include "absl/status/status.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

absl::Status ValidateResult(const PerturbedRequest& request, const PerturbedResult& result);

}  // namespace perturbd

#endif  // PERTURBD_SERVER_RESULT_VALIDATOR_H_
