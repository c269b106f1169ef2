#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {


// A binary min-heap of (distance, cell) entries ordered by distance, then cell — the same
// total order as IndexedMinHeap — on storage reserved once.
class CellHeap {
 public:
  explicit CellHeap(int32_t n) { entries_.reserve(static_cast<size_t>(n)); }
  bool empty() const { return entries_.empty(); }
  void Clear() { entries_.clear(); }
  void Push(double dist, int32_t cell) {
    entries_.push_back({dist, cell});  // within the reserved capacity: no allocation
    size_t i = entries_.size() - 1;
    while (i > 0) {
      const size_t parent = (i - 1) / 2;
      if (!Less(entries_[i], entries_[parent])) break;
      std::swap(entries_[i], entries_[parent]);
      i = parent;
    }
  }
  int32_t Pop() {
    const int32_t top = entries_.front().cell;
    entries_.front() = entries_.back();
    entries_.pop_back();
    const size_t n = entries_.size();
    size_t i = 0;
    for (;;) {
      const size_t l = 2 * i + 1, r = l + 1;
      size_t m = i;
      if (l < n && Less(entries_[l], entries_[m])) m = l;
      if (r < n && Less(entries_[r], entries_[m])) m = r;
      if (m == i) break;
      std::swap(entries_[i], entries_[m]);
      i = m;
    }
    return top;
  }

 private:
  struct Entry {
    double dist;
    int32_t cell;
  };
  static bool Less(const Entry& a, const Entry& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.cell < b.cell);
  }
  std::vector<Entry> entries_;
};

struct GridWorkspace final : OracleWorkspace {
  explicit GridWorkspace(int32_t n) : dist(n), pred(n), seen(n), heap(n), path(n) {}
  std::vector<double> dist;   // cost of the best path from cell 0, both ends included
  std::vector<int32_t> pred;  // previous cell on that path (−1 for cell 0)
  std::vector<uint8_t> seen;  // reached (and so final: see Solve)
  CellHeap heap;
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

  // Vertex costs make Dijkstra simpler: every edge into v costs θ_v, so v's distance is
  // θ_v + min over its neighbours' distances, and the first neighbour to be popped (cells pop
  // in increasing (distance, cell) order) is that minimum. A cell's first relaxation is
  // therefore final: each cell is pushed once, with no decrease-key, and the pops, distances
  // and predecessors are those of the textbook algorithm with strict improvement.
  std::fill(ws.seen.begin(), ws.seen.end(), 0);
  ws.heap.Clear();
  ws.dist[0] = theta[0];
  ws.pred[0] = -1;
  ws.seen[0] = 1;
  ws.heap.Push(ws.dist[0], 0);
  while (!ws.heap.empty()) {
    const int32_t u = ws.heap.Pop();
    if (u == target) break;
    const int32_t r = u / cols_;
    const int32_t c = u % cols_;
    const double du = ws.dist[u];
    for (const Offset& o : offsets) {
      const int32_t nr = r + o.dr;
      const int32_t nc = c + o.dc;
      if (nr < 0 || nr >= rows_ || nc < 0 || nc >= cols_) continue;
      const int32_t v = nr * cols_ + nc;
      if (ws.seen[v]) continue;
      ws.seen[v] = 1;
      ws.dist[v] = du + theta[v];
      ws.pred[v] = u;
      ws.heap.Push(ws.dist[v], v);
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
