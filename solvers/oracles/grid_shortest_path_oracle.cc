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


// A 4-ary min-heap of (distance, cell) entries ordered by distance, then cell — a strict total
// order on distinct cells, so the pop sequence is that of any exact priority queue (the
// binary heap this replaced included) — on storage reserved once. Four children per node
// halve the depth; their keys share a cache line.
class CellHeap {
 public:
  explicit CellHeap(int32_t n) : entries_(static_cast<size_t>(n)) {}
  bool empty() const { return size_ == 0; }
  void Clear() { size_ = 0; }
  void Push(double dist, int32_t cell) {
    const Entry e{dist, cell};
    size_t i = size_++;
    while (i > 0) {
      const size_t parent = (i - 1) / 4;
      if (!Less(e, entries_[parent])) break;
      entries_[i] = entries_[parent];
      i = parent;
    }
    entries_[i] = e;
  }
  int32_t Pop() {
    const int32_t top = entries_[0].cell;
    const Entry e = entries_[--size_];
    const size_t n = size_;
    size_t i = 0;
    for (;;) {
      const size_t first = 4 * i + 1;
      if (first >= n) break;
      size_t m = first;
      const size_t last = std::min(first + 4, n);
      for (size_t c = first + 1; c < last; ++c) {
        if (Less(entries_[c], entries_[m])) m = c;
      }
      if (!Less(entries_[m], e)) break;
      entries_[i] = entries_[m];
      i = m;
    }
    if (n > 0) entries_[i] = e;
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
  size_t size_ = 0;
};

// The grid with a one-cell border: padded cell (r + 1)·(cols + 2) + c + 1 is cell r·cols + c.
// The border is permanently "reached", so relaxing a neighbour needs no bounds check; padded
// indices are in the same order as cell indices, so ties break as before.
struct GridWorkspace final : OracleWorkspace {
  // Interior cells hold the epoch of the last solve that reached them; the border holds
  // kBorder, above every epoch.
  static constexpr uint32_t kBorder = 0xFFFFFFFFu;

  GridWorkspace(int32_t rows, int32_t cols)
      : width(cols + 2),
        cost(Padded(rows, cols), 0.0),
        dist(Padded(rows, cols)),
        pred(Padded(rows, cols)),
        seen(Padded(rows, cols), kBorder),
        heap(rows * cols),
        path(static_cast<size_t>(rows) * static_cast<size_t>(cols)) {
    for (int32_t r = 0; r < rows; ++r) {
      for (int32_t c = 0; c < cols; ++c) seen[static_cast<size_t>((r + 1) * width + c + 1)] = 0;
    }
  }
  static size_t Padded(int32_t rows, int32_t cols) {
    return static_cast<size_t>(rows + 2) * static_cast<size_t>(cols + 2);
  }
  int32_t width;
  std::vector<double> cost;   // clamped θ, padded
  std::vector<double> dist;   // cost of the best path from cell 0, both ends included
  std::vector<int32_t> pred;  // previous (padded) cell on that path (−1 for cell 0)
  std::vector<uint32_t> seen;
  uint32_t epoch = 0;
  CellHeap heap;
  std::vector<int32_t> path;  // cells of the result, sorted before output
};

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
  return std::make_unique<GridWorkspace>(rows_, cols_);
}

int64_t GridShortestPathOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                      SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension());
  auto& ws = static_cast<GridWorkspace&>(workspace);
  y.Clear();
  int64_t clamped = 0;
  const int32_t W = ws.width;
  for (int32_t r = 0; r < rows_; ++r) {
    double* row = theta.data() + static_cast<size_t>(r) * static_cast<size_t>(cols_);
    double* padded = ws.cost.data() + static_cast<size_t>((r + 1) * W + 1);
    for (int32_t c = 0; c < cols_; ++c) {
      if (row[c] < 0.0) {
        row[c] = 0.0;
        ++clamped;
      }
      padded[c] = row[c];
    }
  }
  // Neighbour offsets in the padded grid, in increasing cell order.
  const int32_t eight[] = {-W - 1, -W, -W + 1, -1, 1, W - 1, W, W + 1};
  const int32_t four[] = {-W, -1, 1, W};
  const bool is_four = connectivity_ == Connectivity::kFour;
  const int32_t* offsets = is_four ? four : eight;
  const int num_offsets = is_four ? 4 : 8;
  const int32_t source = W + 1;
  const int32_t target = rows_ * W + cols_;  // padded (rows − 1, cols − 1)

  if (++ws.epoch == GridWorkspace::kBorder) {  // wrapped: forget every earlier solve
    for (uint32_t& s : ws.seen) s = s == GridWorkspace::kBorder ? s : 0;
    ws.epoch = 1;
  }
  const uint32_t epoch = ws.epoch;
  uint32_t* seen = ws.seen.data();
  double* dist = ws.dist.data();
  int32_t* pred = ws.pred.data();
  const double* cost = ws.cost.data();

  // Vertex costs make Dijkstra simpler: every edge into v costs θ_v, so v's distance is
  // θ_v + min over its neighbours' distances, and the first neighbour to be popped (cells pop
  // in increasing (distance, cell) order) is that minimum. A cell's first relaxation is
  // therefore final: each cell is pushed once, with no decrease-key, and the pops, distances
  // and predecessors are those of the textbook algorithm with strict improvement.
  ws.heap.Clear();
  dist[source] = cost[source];
  pred[source] = -1;
  seen[source] = epoch;
  ws.heap.Push(dist[source], source);
  while (!ws.heap.empty()) {
    const int32_t u = ws.heap.Pop();
    if (u == target) break;
    const double du = dist[u];
    for (int k = 0; k < num_offsets; ++k) {
      const int32_t v = u + offsets[k];
      if (seen[v] >= epoch) continue;  // reached in this solve, or the border
      seen[v] = epoch;
      dist[v] = du + cost[v];
      pred[v] = u;
      ws.heap.Push(dist[v], v);
    }
  }
  // Every cell is reachable, so the target was popped and the predecessor chain ends at the
  // source. Padded → cell indices keep the order.
  int32_t length = 0;
  for (int32_t v = target; v >= 0; v = pred[v]) {
    ws.path[static_cast<size_t>(length++)] = (v / W - 1) * cols_ + (v % W - 1);
  }
  std::sort(ws.path.begin(), ws.path.begin() + length);
  for (int32_t j = 0; j < length; ++j) y.Push(ws.path[static_cast<size_t>(j)], 1.0);
  return clamped;
}

}  // namespace perturbd
