#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/indexed_min_heap.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

using oracle_internal::IndexedMinHeap;

struct GridWorkspace final : OracleWorkspace {
  explicit GridWorkspace(int32_t n) : dist(n), pred(n), heap(n), path(n) {}
  std::vector<double> dist;   // cost of the best known path from cell 0, both ends included
  std::vector<int32_t> pred;  // previous cell on that path (−1 for cell 0)
  IndexedMinHeap heap;
  std::vector<int32_t> path;  // cells of the result, sorted before output
};

struct Offset {
  int32_t dr, dc;
};
// In increasing order of the neighbour's cell index, for a deterministic relaxation order.
constexpr Offset kFour[] = {{-1, 0}, {0, -1}, {0, 1}, {1, 0}};
constexpr Offset kEight[] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};

}  // namespace

absl::StatusOr<std::unique_ptr<GridShortestPathOracle>> GridShortestPathOracle::Create(
    const GridShortestPathSpec& spec, int64_t dimension, Sense sense) {
  if (spec.rows < 1) {
    return absl::InvalidArgumentError("problem.grid_shortest_path.rows: must be >= 1, got 0");
  }
  if (spec.cols < 1) {
    return absl::InvalidArgumentError("problem.grid_shortest_path.cols: must be >= 1, got 0");
  }
  if (sense != Sense::kMinimize) {
    return oracle_internal::UnsupportedSense("grid_shortest_path", sense,
                                             "shortest paths are MINIMIZE only");
  }
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, static_cast<int64_t>(spec.rows) * spec.cols,
      "problem.grid_shortest_path.rows * cols"));
  return std::unique_ptr<GridShortestPathOracle>(new GridShortestPathOracle(
      static_cast<int32_t>(spec.rows), static_cast<int32_t>(spec.cols), spec.connectivity));
}

double GridShortestPathOracle::cost_per_solve() const {
  const double d = static_cast<double>(dimension());
  const double neighbours = connectivity_ == Connectivity::kFour ? 4.0 : 8.0;
  return d * neighbours * (1.0 + std::log2(d + 1.0)) + 3.0 * d;
}

std::unique_ptr<OracleWorkspace> GridShortestPathOracle::NewWorkspace() const {
  return std::make_unique<GridWorkspace>(static_cast<int32_t>(dimension()));
}

int64_t GridShortestPathOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                      SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension());
  auto& ws = static_cast<GridWorkspace&>(workspace);
  y.Clear();
  int64_t clamped = 0;
  for (double& cost : theta) {
    if (cost < 0.0) {
      cost = 0.0;
      ++clamped;
    }
  }
  const int32_t n = rows_ * cols_;
  const int32_t target = n - 1;
  const absl::Span<const Offset> offsets = connectivity_ == Connectivity::kFour
                                               ? absl::Span<const Offset>(kFour)
                                               : absl::Span<const Offset>(kEight);

  std::fill(ws.dist.begin(), ws.dist.end(), std::numeric_limits<double>::infinity());
  ws.heap.Reset();
  ws.dist[0] = theta[0];
  ws.pred[0] = -1;
  ws.heap.Update(0, ws.dist);
  while (!ws.heap.empty()) {
    const int32_t u = ws.heap.PopMin(ws.dist);
    if (u == target) break;
    const int32_t r = u / cols_;
    const int32_t c = u % cols_;
    for (const Offset& o : offsets) {
      const int32_t nr = r + o.dr;
      const int32_t nc = c + o.dc;
      if (nr < 0 || nr >= rows_ || nc < 0 || nc >= cols_) continue;
      const int32_t v = nr * cols_ + nc;
      if (ws.heap.popped(v)) continue;
      const double candidate = ws.dist[u] + theta[v];
      // `!seen` rather than comparing with +∞, so that an infinite cost still gets a path.
      if (!ws.heap.seen(v) || candidate < ws.dist[v]) {
        ws.dist[v] = candidate;
        ws.pred[v] = u;
        ws.heap.Update(v, ws.dist);
      }
    }
  }
  // Every cell is reachable, so the target was popped and the predecessor chain ends at 0.
  int32_t length = 0;
  for (int32_t v = target; v >= 0; v = ws.pred[v]) ws.path[length++] = v;
  std::sort(ws.path.begin(), ws.path.begin() + length);
  for (int32_t j = 0; j < length; ++j) y.Push(ws.path[j], 1.0);
  return clamped;
}

}  // namespace perturbd
