#include "solvers/oracles/ranking_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

struct RankingWorkspace final : OracleWorkspace {
  explicit RankingWorkspace(size_t d) : key(d), order(d), rank(d) {}
  std::vector<double> key;  // θ (MAXIMIZE) or −θ (MINIMIZE); NaN → −∞; sorted ascending
  std::vector<int32_t> order;  // order[r] = the index with rank r
  std::vector<int32_t> rank;   // rank[i]
};

}  // namespace

absl::StatusOr<std::unique_ptr<RankingOracle>> RankingOracle::Create(int64_t dimension,
                                                                     Sense sense) {
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  return std::unique_ptr<RankingOracle>(new RankingOracle(dimension, sense));
}

double RankingOracle::cost_per_solve() const {
  const double d = static_cast<double>(dimension_);
  return d * std::log2(d + 1.0) + 3.0 * d;
}

std::unique_ptr<OracleWorkspace> RankingOracle::NewWorkspace() const {
  return std::make_unique<RankingWorkspace>(static_cast<size_t>(dimension_));
}

int64_t RankingOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                             SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  auto& ws = static_cast<RankingWorkspace&>(workspace);
  y.Clear();
  const size_t d = theta.size();
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  // A total order even with NaN: std::sort reads out of bounds under an inconsistent one.
  for (size_t i = 0; i < d; ++i) {
    const double v = sign * theta[i];
    ws.key[i] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
  }
  std::iota(ws.order.begin(), ws.order.end(), 0);
  const double* key = ws.key.data();
  std::sort(ws.order.begin(), ws.order.end(),
            [key](int32_t a, int32_t b) { return key[a] < key[b] || (key[a] == key[b] && a < b); });
  for (size_t r = 0; r < d; ++r) ws.rank[ws.order[r]] = static_cast<int32_t>(r);
  for (size_t i = 0; i < d; ++i) {
    if (ws.rank[i] != 0) y.Push(static_cast<int64_t>(i), static_cast<double>(ws.rank[i]));
  }
  return 0;
}

}  // namespace perturbd
