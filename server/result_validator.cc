#include "server/result_validator.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

absl::Status CheckFinite(absl::string_view field, const std::vector<double>& values, DType dtype) {
  const double limit = dtype == DType::kFloat32
                           ? static_cast<double>(std::numeric_limits<float>::max())
                           : std::numeric_limits<double>::max();
  const size_t k = FirstBeyond(values, limit);
  if (k < values.size()) {
    const double v = values[k];
    const std::string what = std::isnan(v)   ? "NaN"
                             : std::isinf(v) ? (v > 0 ? "+Inf" : "-Inf")
                                             : absl::StrCat(v, ", beyond float32");
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": element ", k, " is ", what, " in ",
        dtype == DType::kFloat32 ? "float32" : "float64",
        ": the estimate overflowed; theta, targets or noise.epsilon are too large (or epsilon too "
        "small) for this dtype, rescale them"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateResult(const PerturbedRequest& request, const PerturbedResult& result) {
  const DType dtype = request.dtype;
  for (const auto& [field, values] :
       {std::pair<absl::string_view, const std::vector<double>*>{"solution", &result.solution},
        {"value", &result.value},
        {"jacobian", &result.jacobian},
        {"loss", &result.loss},
        {"loss_grad", &result.loss_grad},
        {"solution_stderr", &result.solution_stderr},
        {"samples", &result.samples},
        {"grad_theta", &result.grad_theta}}) {
    if (absl::Status status = CheckFinite(field, *values, dtype); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace perturbd
