#include "solvers/oracles/assignment_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Indices 1..n (shorter side, "rows" of the cost matrix) and 1..m (longer side, "columns");
// column 0 is the virtual column the current row starts from.
struct AssignmentWorkspace final : OracleWorkspace {
  AssignmentWorkspace(size_t n, size_t m)
      : cost(n * m),
        u(n + 1),
        v(m + 1),
        minv(m + 1),
        match(m + 1),
        way(m + 1),
        used(m + 1),
        column_of_row(n) {}
  std::vector<double> cost;    // n × m costs to minimise: ±θ, shorter side first; NaN → +∞
  std::vector<double> u;       // row potentials
  std::vector<double> v;       // column potentials
  std::vector<double> minv;    // reduced cost of the best path into each column this round
  std::vector<int32_t> match;  // row matched to column j (1-based), 0 = free
  std::vector<int32_t> way;    // previous column on that path
  std::vector<uint8_t> used;   // column reached this round
  std::vector<int32_t> column_of_row;  // output order when rows ≤ cols
};

}  // namespace

absl::StatusOr<std::unique_ptr<AssignmentOracle>> AssignmentOracle::Create(
    const AssignmentSpec& spec, int64_t dimension, Sense sense) {
  if (spec.rows == 0) {
    return absl::InvalidArgumentError("problem.assignment.rows: must be >= 1, got 0");
  }
  if (spec.cols == 0) {
    return absl::InvalidArgumentError("problem.assignment.cols: must be >= 1, got 0");
  }
  const uint64_t cells = static_cast<uint64_t>(spec.rows) * static_cast<uint64_t>(spec.cols);
  if (cells > static_cast<uint64_t>(oracle_internal::kMaxDimension)) {
    return absl::InvalidArgumentError(absl::StrCat("problem.assignment.rows: rows · cols = ", cells,
                                                   " exceeds the largest d, ",
                                                   oracle_internal::kMaxDimension));
  }
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, static_cast<int64_t>(cells), "problem.assignment.rows · problem.assignment.cols"));
  return std::unique_ptr<AssignmentOracle>(new AssignmentOracle(spec.rows, spec.cols, sense));
}

double AssignmentOracle::cost_per_solve() const {
  const double n = static_cast<double>(std::min(rows_, cols_));
  const double m = static_cast<double>(std::max(rows_, cols_));
  return n * m * (n + 2.0);
}

std::unique_ptr<OracleWorkspace> AssignmentOracle::NewWorkspace() const {
  return std::make_unique<AssignmentWorkspace>(static_cast<size_t>(std::min(rows_, cols_)),
                                               static_cast<size_t>(std::max(rows_, cols_)));
}

int64_t AssignmentOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == rows_ * cols_);
  auto& ws = static_cast<AssignmentWorkspace&>(workspace);
  y.Clear();
  const bool transposed = rows_ > cols_;
  const int32_t n = static_cast<int32_t>(transposed ? cols_ : rows_);
  const int32_t m = static_cast<int32_t>(transposed ? rows_ : cols_);
  const size_t stride = static_cast<size_t>(cols_);
  // Minimise ±θ; negation is exact, so MINIMIZE(θ) is MAXIMIZE(−θ) bit for bit.
  const double sign = sense_ == Sense::kMaximize ? -1.0 : 1.0;
  double* cost = ws.cost.data();
  for (int32_t i = 0; i < n; ++i) {
    for (int32_t j = 0; j < m; ++j) {
      const size_t k = transposed ? static_cast<size_t>(j) * stride + static_cast<size_t>(i)
                                  : static_cast<size_t>(i) * stride + static_cast<size_t>(j);
      const double c = sign * theta[k];
      cost[static_cast<size_t>(i) * m + j] = std::isnan(c) ? kInfinity : c;
    }
  }
  std::fill(ws.u.begin(), ws.u.end(), 0.0);
  std::fill(ws.v.begin(), ws.v.end(), 0.0);
  std::fill(ws.match.begin(), ws.match.end(), 0);
  double* u = ws.u.data();
  double* v = ws.v.data();
  double* minv = ws.minv.data();
  int32_t* match = ws.match.data();
  int32_t* way = ws.way.data();
  uint8_t* used = ws.used.data();

  // Row i joins the matching along a shortest augmenting path in reduced costs
  // c(i, j) − u_i − v_j ≥ 0 (Dijkstra over the columns), after which the potentials are moved
  // so that matched pairs keep zero reduced cost. The `j1 < 0` and `way = 0` defaults only
  // matter for non-finite costs: they keep the loop finite and the matching valid.
  for (int32_t i = 1; i <= n; ++i) {
    match[0] = i;
    int32_t j0 = 0;
    std::fill(minv, minv + m + 1, kInfinity);
    std::fill(used, used + m + 1, 0);
    std::fill(way, way + m + 1, 0);
    do {
      used[j0] = 1;
      const int32_t i0 = match[j0];
      const double* row = cost + static_cast<size_t>(i0 - 1) * m - 1;  // row[j], j = 1..m
      const double ui0 = u[i0];
      double delta = kInfinity;
      int32_t j1 = -1;
      for (int32_t j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double reduced = row[j] - ui0 - v[j];
        if (reduced < minv[j]) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (j1 < 0 || minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int32_t j = 0; j <= m; ++j) {
        if (used[j]) {
          u[match[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (match[j0] != 0);
    do {  // augment along the path back to the virtual column
      const int32_t j1 = way[j0];
      match[j0] = match[j1];
      j0 = j1;
    } while (j0 != 0);
  }

  if (transposed) {
    // Column j of the longer side is row j − 1 of θ: increasing indices.
    for (int32_t j = 1; j <= m; ++j) {
      if (match[j] != 0) y.Push(static_cast<int64_t>(j - 1) * cols_ + (match[j] - 1), 1.0);
    }
  } else {
    for (int32_t j = 1; j <= m; ++j) {
      if (match[j] != 0) ws.column_of_row[match[j] - 1] = j - 1;
    }
    for (int32_t i = 0; i < n; ++i)
      y.Push(static_cast<int64_t>(i) * cols_ + ws.column_of_row[i], 1.0);
  }
  return 0;
}

}  // namespace perturbd
