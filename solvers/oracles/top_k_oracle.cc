#include "solvers/oracles/top_k_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

struct TopKWorkspace final : OracleWorkspace {
  explicit TopKWorkspace(size_t d) : key(d), order(d), chosen(d, 0) {}
  std::vector<double> key;  // θ (MAXIMIZE) or −θ (MINIMIZE); NaN → −∞; larger is better
  std::vector<int32_t> order;   // indices; the first k are the chosen ones after selection
  std::vector<uint8_t> chosen;  // all zero between solves
};

}  // namespace

absl::StatusOr<std::unique_ptr<TopKOracle>> TopKOracle::Create(const TopKSpec& spec,
                                                               int64_t dimension, Sense sense) {
  if (spec.k == 0) {
    return absl::InvalidArgumentError("problem.top_k.k: must be >= 1, got 0");
  }
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  if (static_cast<int64_t>(spec.k) > dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("problem.top_k.k: must be in [1, d] with d = ", dimension, ", got ", spec.k));
  }
  return std::unique_ptr<TopKOracle>(new TopKOracle(dimension, spec.k, sense));
}

std::unique_ptr<OracleWorkspace> TopKOracle::NewWorkspace() const {
  return std::make_unique<TopKWorkspace>(static_cast<size_t>(dimension_));
}

int64_t TopKOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                          SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  auto& ws = static_cast<TopKWorkspace&>(workspace);
  y.Clear();
  const size_t d = theta.size();
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  // Negation is exact, so MINIMIZE(θ) is MAXIMIZE(−θ) bit for bit. Mapping NaN to −∞ keeps the
  // comparator a strict weak order, which nth_element needs to stay in bounds.
  for (size_t i = 0; i < d; ++i) {
    const double v = sign * theta[i];
    ws.key[i] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
  }
  const size_t k = static_cast<size_t>(k_);
  if (k < d) {
    std::iota(ws.order.begin(), ws.order.end(), 0);
    const double* key = ws.key.data();
    std::nth_element(
        ws.order.begin(), ws.order.begin() + static_cast<ptrdiff_t>(k - 1), ws.order.end(),
        [key](int32_t a, int32_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
    for (size_t j = 0; j < k; ++j) ws.chosen[ws.order[j]] = 1;
    for (size_t i = 0; i < d; ++i) {
      if (ws.chosen[i]) {
        y.Push(static_cast<int64_t>(i), 1.0);
        ws.chosen[i] = 0;
      }
    }
  } else {
    for (size_t i = 0; i < d; ++i) y.Push(static_cast<int64_t>(i), 1.0);
  }
  return 0;
}

}  // namespace perturbd
