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

}  // namespace perturbd
