#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {


// A 4-ary min-heap of cells ordered by (distance, cell) — a strict total order on distinct
// cells, so the pop sequence is that of any exact priority queue (the binary heap this
// replaced included) — on storage reserved once. Four children per node halve the depth and
// share a cache line.
//
// The order is one unsigned 128-bit key, distance bits above the cell: for distances ≥ 0
// (+∞ included; −0 is stored as +0) the IEEE bits order as the values do, so every comparison
// is a two-instruction integer compare the compiler turns into conditional moves. Pop walks
// the hole down to a leaf along the smaller children (three branch-free compares a level, a
// loop whose trip count is the depth) and sifts the last entry up from there, which rarely
// moves it: the comparisons that decide the order no longer steer branches, which were most
// of a solve's time (random distances mispredict half of them).
class CellHeap {
 public:
  using Key = unsigned __int128;
  explicit CellHeap(int32_t n) : keys_(static_cast<size_t>(n)) {}
  bool empty() const { return size_ == 0; }
  void Clear() { size_ = 0; }
  static Key MakeKey(double dist, int32_t cell) {
    const double non_negative_zero = dist + 0.0;  // −0 + 0 = +0; other values unchanged
    uint64_t bits;
    std::memcpy(&bits, &non_negative_zero, sizeof(bits));
    return (static_cast<Key>(bits) << 32) | static_cast<uint32_t>(cell);
  }
  void Push(Key key) { SiftUp(size_++, key); }
  int32_t Pop() {
    Key* keys = keys_.data();
    const int32_t top = static_cast<int32_t>(static_cast<uint32_t>(keys[0]));
    const size_t n = --size_;
    const Key last = keys[n];
    // Down to a node with fewer than four children, always along the smallest child.
    size_t i = 0;
    for (size_t first = 1; first + 4 <= n; first = 4 * i + 1) {
      // Indices from comparison bits, not ?: — GCC turns some of those back into branches.
      const size_t a = first + static_cast<size_t>(keys[first + 1] < keys[first]);
      const size_t b = first + 2 + static_cast<size_t>(keys[first + 3] < keys[first + 2]);
      const size_t m = a + ((b - a) & (size_t{0} - static_cast<size_t>(keys[b] < keys[a])));
      keys[i] = keys[m];
      i = m;
    }
    // The last level may hold one to three children.
    const size_t first = 4 * i + 1;
    if (first < n) {
      size_t m = first;
      for (size_t c = first + 1; c < n; ++c) m = keys[c] < keys[m] ? c : m;
      keys[i] = keys[m];
      i = m;
    }
    // The hole is at a leaf: the last entry goes there, or above it.
    SiftUp(i, last);
    return top;
  }

 private:
  // Places key in the hole at i or, moving larger parents down, above it.
  void SiftUp(size_t i, Key key) {
    Key* keys = keys_.data();
    while (i > 0) {
      const size_t parent = (i - 1) / 4;
      if (!(key < keys[parent])) break;
      keys[i] = keys[parent];
      i = parent;
    }
    keys[i] = key;
  }

  std::vector<Key> keys_;
  size_t size_ = 0;
};

// The grid with a one-cell border: padded cell (r + 1)·(cols + 2) + c + 1 is cell r·cols + c.
// The border is permanently "reached", so relaxing a neighbour needs no bounds check; padded
// indices are in the same order as cell indices, so ties break as before.
struct GridWorkspace final : OracleWorkspace {
  GridWorkspace(int32_t rows, int32_t cols)
      : width(cols + 2),
        cost(Padded(rows, cols), 0.0),
        dist(Padded(rows, cols)),
        pred(Padded(rows, cols)),
        border_bits(Padded(rows, cols) / 8 + 9, 0),
        reached_bits(border_bits.size()),
        heap(rows * cols),
        path(static_cast<size_t>(rows) * static_cast<size_t>(cols)) {
    for (size_t v = 0; v < Padded(rows, cols); ++v) {
      const size_t r = v / static_cast<size_t>(width);
      const size_t c = v % static_cast<size_t>(width);
      const bool border = r == 0 || r == static_cast<size_t>(rows) + 1 || c == 0 ||
                          c == static_cast<size_t>(cols) + 1;
      if (border) border_bits[v / 8] |= static_cast<uint8_t>(1u << (v % 8));
    }
  }
  static size_t Padded(int32_t rows, int32_t cols) {
    return static_cast<size_t>(rows + 2) * static_cast<size_t>(cols + 2);
  }
  // Bits v .. v + 2 of the reached set (bit v lowest). Eight bytes of slack past the grid keep
  // the load in bounds.
  uint32_t ThreeReached(int32_t v) const {
    uint64_t word;
    std::memcpy(&word, reached_bits.data() + v / 8, sizeof(word));
    return static_cast<uint32_t>(word >> (v % 8)) & 7u;
  }
  uint32_t Reached(int32_t v) const {
    return (reached_bits[static_cast<size_t>(v / 8)] >> (v % 8)) & 1u;
  }
  void MarkReached(int32_t v) {
    reached_bits[static_cast<size_t>(v / 8)] |= static_cast<uint8_t>(1u << (v % 8));
  }

  int32_t width;
  std::vector<double> cost;   // clamped θ, padded
  std::vector<double> dist;   // cost of the best path from cell 0, both ends included
  std::vector<int32_t> pred;  // previous (padded) cell on that path (−1 for cell 0)
  std::vector<uint8_t> border_bits;   // one bit per padded cell: the border
  std::vector<uint8_t> reached_bits;  // the border and the cells reached in this solve
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

  std::copy(ws.border_bits.begin(), ws.border_bits.end(), ws.reached_bits.begin());
  double* dist = ws.dist.data();
  int32_t* pred = ws.pred.data();
  const double* cost = ws.cost.data();

  // Vertex costs make Dijkstra simpler: every edge into v costs θ_v, so v's distance is
  // θ_v + min over its neighbours' distances, and the first neighbour to be popped (cells pop
  // in increasing (distance, cell) order) is that minimum. A cell's first relaxation is
  // therefore final: each cell is pushed once, with no decrease-key, and the pops, distances
  // and predecessors are those of the textbook algorithm with strict improvement.
  //
  // Which neighbours are new is as random as the costs, so instead of a branch per neighbour
  // the reached bits of all of them form one mask (bit k = offsets[k]), whose clear bits are
  // visited in order.
  ws.heap.Clear();
  dist[source] = cost[source];
  pred[source] = -1;
  ws.MarkReached(source);
  ws.heap.Push(CellHeap::MakeKey(dist[source], source));
  while (!ws.heap.empty()) {
    const int32_t u = ws.heap.Pop();
    if (u == target) break;
    const double du = dist[u];
    uint32_t reached;
    if (is_four) {
      reached = ws.Reached(u - W) | ws.Reached(u - 1) << 1 | ws.Reached(u + 1) << 2 |
                ws.Reached(u + W) << 3;
    } else {
      reached = ws.ThreeReached(u - W - 1) | ws.Reached(u - 1) << 3 | ws.Reached(u + 1) << 4 |
                ws.ThreeReached(u + W - 1) << 5;
    }
    for (uint32_t fresh = ~reached & ((1u << num_offsets) - 1); fresh != 0; fresh &= fresh - 1) {
      const int32_t v = u + offsets[__builtin_ctz(fresh)];
      ws.MarkReached(v);
      dist[v] = du + cost[v];
      pred[v] = u;
      ws.heap.Push(CellHeap::MakeKey(dist[v], v));
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
