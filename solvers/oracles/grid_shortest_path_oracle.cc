#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"
#include "solvers/oracles/internal/vector_clones.h"

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

// A cell's neighbours on a padded grid `width` cells wide, in increasing cell order (the order
// ties are broken in): padded offset, row step and column step of each.
struct Neighbours {
  Neighbours(int32_t width, bool four) {
    for (int32_t dr = -1; dr <= 1; ++dr) {
      for (int32_t dc = -1; dc <= 1; ++dc) {
        if ((dr == 0 && dc == 0) || (four && dr != 0 && dc != 0)) continue;
        offset[count] = dr * width + dc;
        row_step[count] = dr;
        col_step[count] = dc;
        ++count;
      }
    }
  }
  int32_t offset[8];
  int32_t row_step[8];
  int32_t col_step[8];
  int count = 0;
};

// Eight lanes of doubles (one θ per lane) in GCC's vector extension: one AVX-512 register, two
// AVX2 or four SSE2 ones in the clones below.
using LaneVec = double __attribute__((vector_size(64)));
using LaneBits = int64_t __attribute__((vector_size(64)));
struct alignas(64) LaneCell {
  double lane[8];
};
static_assert(sizeof(LaneCell) == sizeof(LaneVec), "one LaneVec per padded cell");

// One pass of the padded lane grid along `lines` lines of `len` cells: rows when the step
// along a line (kDr, kDc) is (0, ±1), columns when it is (±1, 0); line i starts at padded cell
// first + i·line_step. Each line gets the full update D_v = θ_v + min over the neighbours in
// its direction, then the reverse direction with the neighbour along the line only (a path
// may run against the pass along a line). The cell just updated stays in a register (`prev`),
// so the chain from cell to cell is one min and one add. The source keeps D = θ. Adds to
// `changed` the lanes whose D moved in the full updates and clears in `strict` those with a
// cell not above its least neighbour.
template <bool kFour, int kDr, int kDc>
__attribute__((always_inline)) inline void SweepPass(const LaneVec* cost, LaneVec* dist, int32_t W,
                                                     int32_t lines, int32_t len, int32_t first,
                                                     int32_t line_step, LaneBits& changed,
                                                     LaneBits& strict) {
  const LaneVec* const source = dist + W + 1;
  const ptrdiff_t step = kDr * static_cast<ptrdiff_t>(W) + kDc;
  const ptrdiff_t to_cost = cost - dist;
  // The neighbours other than the one behind (v − step), as padded offsets.
  constexpr int kOthers = kFour ? 3 : 7;
  const Neighbours all(W, kFour);
  ptrdiff_t others[kOthers];
  for (int k = 0, n = 0; k < all.count; ++k) {
    if (all.row_step[k] != -kDr || all.col_step[k] != -kDc) others[n++] = all.offset[k];
  }
  for (int32_t i = 0; i < lines; ++i) {
    LaneVec* const start = dist + first + static_cast<ptrdiff_t>(i) * line_step;
    LaneBits line_changed = {};
    LaneVec prev = start[-step];  // the border
    LaneVec* v = start;
    for (int32_t k = 0; k < len; ++k, v += step) {
      if (v == source) {
        prev = *v;
        continue;
      }
      LaneVec o[kOthers];
#pragma GCC unroll 8
      for (int j = 0; j < kOthers; ++j) o[j] = v[others[j]];
      // A balanced tree over the others; the cell behind comes last.
      LaneVec m;
      if (kFour) {
        const LaneVec a = o[0] < o[1] ? o[0] : o[1];
        m = a < o[2] ? a : o[2];
      } else {
        const LaneVec a = o[0] < o[1] ? o[0] : o[1];
        const LaneVec b = o[2] < o[3] ? o[2] : o[3];
        const LaneVec c = o[4] < o[5] ? o[4] : o[5];
        const LaneVec ab = a < b ? a : b;
        const LaneVec c6 = c < o[6] ? c : o[6];
        m = ab < c6 ? ab : c6;
      }
      m = prev < m ? prev : m;
      const LaneVec next = v[to_cost] + m;
      line_changed |= next != *v;
      strict &= next > m;
      *v = next;
      prev = next;
    }
    changed |= line_changed;
    // Back along the line, from the far end's neighbour. When the full updates moved nothing,
    // each cell already saw its neighbour ahead at its final value: nothing to do.
    bool any = false;
    for (int l = 0; l < 8; ++l) any |= line_changed[l] != 0;
    if (!any) continue;
    v -= step;  // the far end
    prev = *v;
    for (int32_t k = 1; k < len; ++k) {
      v -= step;
      LaneVec cur = *v;
      if (v != source) {
        const LaneVec via = v[to_cost] + prev;
        cur = via < cur ? via : cur;
        *v = cur;
      }
      prev = cur;
    }
  }
}

// Passes top-down, left to right, bottom-up, right to left, and again, until one changes
// nothing or max_passes have run: a path is settled by one pass when it is monotone along the
// pass's axis (rows for the first and third, columns for the others), so the passes needed
// grow with how often the paths turn back, not with the grid's size. Lane l's bit in
// *unsettled: its last pass changed it (no fixed point yet); in *not_strict: some cell of its
// fixed point is not above its least neighbour. Returns the passes run.
PERTURBD_ORACLE_VECTOR_CLONES
int32_t SweepLanes(const LaneCell* cost_cells, LaneCell* dist_cells, int32_t rows, int32_t cols,
                   int32_t W, bool four, int32_t max_passes, uint32_t* unsettled,
                   uint32_t* not_strict) {
  const LaneVec* cost = reinterpret_cast<const LaneVec*>(cost_cells);
  LaneVec* dist = reinterpret_cast<LaneVec*>(dist_cells);
  const int32_t last = rows * W + cols;  // padded (rows − 1, cols − 1)
  LaneBits changed = {};
  LaneBits strict = {};
  int32_t pass = 0;
  while (pass < max_passes) {
    changed = LaneBits{};
    strict = ~LaneBits{};
    const bool by_rows = pass % 2 == 0;
    const bool forward = pass % 4 < 2;
    const int32_t lines = by_rows ? rows : cols;
    const int32_t len = by_rows ? cols : rows;
    const int32_t first = forward ? W + 1 : last;
    const int32_t sign = forward ? 1 : -1;
    const int32_t line_step = sign * (by_rows ? W : 1);
    // The step along a line: right, down, left, up.
    switch ((pass % 4) * 2 + (four ? 1 : 0)) {
      case 0:
        SweepPass<false, 0, 1>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 1:
        SweepPass<true, 0, 1>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 2:
        SweepPass<false, 1, 0>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 3:
        SweepPass<true, 1, 0>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 4:
        SweepPass<false, 0, -1>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 5:
        SweepPass<true, 0, -1>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      case 6:
        SweepPass<false, -1, 0>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
      default:
        SweepPass<true, -1, 0>(cost, dist, W, lines, len, first, line_step, changed, strict);
        break;
    }
    ++pass;
    bool any = false;
    for (int l = 0; l < 8; ++l) any |= changed[l] != 0;
    if (!any) break;
  }
  *unsettled = 0;
  *not_strict = 0;
  for (int l = 0; l < 8; ++l) {
    *unsettled |= static_cast<uint32_t>(changed[l] != 0) << l;
    *not_strict |= static_cast<uint32_t>(strict[l] == 0) << l;
  }
  return pass;
}

// Lane l of padded cell (r + 1)·W + c + 1 = lane_theta[l][r·cols + c].
PERTURBD_ORACLE_VECTOR_CLONES
void ToLanes(const double* const* lane_theta, int32_t rows, int32_t cols, int32_t W,
             LaneCell* out) {
  for (int32_t r = 0; r < rows; ++r) {
    LaneCell* row = out + (r + 1) * W + 1;
    const size_t at = static_cast<size_t>(r) * static_cast<size_t>(cols);
    for (int32_t c = 0; c < cols; ++c) {
      LaneVec v;
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) v[l] = lane_theta[l][at + static_cast<size_t>(c)];
      *reinterpret_cast<LaneVec*>(&row[c]) = v;
    }
  }
}

// Lane sweeps stop here and Solve takes over: enough for the terrain and random grids of the
// benchmarks (a handful of passes), while a maze whose paths wind back and forth many times
// costs at most this many passes more than Dijkstra.
constexpr int32_t kMaxLanePasses = 24;
// Costs above this (or not finite) go to Solve: D of a path of up to 2^31 cells stays finite.
constexpr double kMaxLaneCost = 1e290;

// Clamps the negative entries of theta to 0 in place (as Solve does) and returns how many;
// adds to *unbounded the entries above kMaxLaneCost or not finite. Branch-free: which costs are
// negative is as random as the noise.
PERTURBD_ORACLE_VECTOR_CLONES
int64_t ClampForLanes(double* theta, size_t d, int64_t* unbounded) {
  int64_t negative = 0;
  int64_t above = 0;
#pragma omp simd reduction(+ : negative, above)
  for (size_t i = 0; i < d; ++i) {
    const double x = theta[i];
    negative += x < 0.0 ? 1 : 0;
    theta[i] = x < 0.0 ? 0.0 : x;
    above += x <= kMaxLaneCost ? 0 : 1;
  }
  *unbounded += above;
  return negative;
}

// The grid with a one-cell border: padded cell (r + 1)·(cols + 2) + c + 1 is cell r·cols + c.
// The border is permanently "reached", so relaxing a neighbour needs no bounds check; padded
// indices are in the same order as cell indices, so ties break as before.
struct GridWorkspace final : OracleWorkspace {
  GridWorkspace(int32_t rows, int32_t cols, bool lanes)
      : width(cols + 2),
        cost(Padded(rows, cols), 0.0),
        dist(Padded(rows, cols)),
        pred(Padded(rows, cols)),
        border_bits(Padded(rows, cols) / 8 + 9, 0),
        reached_bits(border_bits.size()),
        heap(rows * cols),
        path(static_cast<size_t>(rows) * static_cast<size_t>(cols)),
        lane_width(LaneWidth(cols)),
        lane_cost(lanes ? static_cast<size_t>(rows + 2) * static_cast<size_t>(lane_width) : 0),
        lane_dist(lane_cost.size()),
        lane_path(lanes ? 8 * static_cast<size_t>(rows) * static_cast<size_t>(cols) : 0) {
    size_t v = 0;
    for (int32_t r = 0; r < rows + 2; ++r) {
      for (int32_t c = 0; c < width; ++c, ++v) {
        const bool border = r == 0 || r == rows + 1 || c == 0 || c == cols + 1;
        if (border) border_bits[v / 8] |= static_cast<uint8_t>(1u << (v % 8));
      }
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
  // SolveBatch: θ and D of eight solves, lane l of padded cell v (empty above kMaxLaneCells).
  // Rows of lane_width cells: cols + 2 rounded up to odd, so that a column walk's stride
  // (a multiple of 64 bytes) does not map every cell to the same few cache sets.
  static int32_t LaneWidth(int32_t cols) { return (cols + 2) | 1; }
  int32_t lane_width;
  std::vector<LaneCell> lane_cost;
  std::vector<LaneCell> lane_dist;
  std::vector<int32_t> lane_path;  // lane l's path cells at l·d
};

// The first k < N (offsets in increasing cell order) whose neighbour v + offsets[k] has the
// least D in lane j: the minimum first, then the equal ones as a bit mask — independent
// operations rather than a chain of compares.
template <int N>
int LeastNeighbour(const LaneCell* dist, int32_t v, const int32_t* offsets, int j) {
  double du[N];
#pragma GCC unroll 8
  for (int k = 0; k < N; ++k) du[k] = dist[v + offsets[k]].lane[j];
  double m = du[0];
#pragma GCC unroll 8
  for (int k = 1; k < N; ++k) m = du[k] < m ? du[k] : m;
  uint32_t equal = 0;
#pragma GCC unroll 8
  for (int k = 0; k < N; ++k) equal |= static_cast<uint32_t>(du[k] == m) << k;
  return __builtin_ctz(equal);
}

// y = the `length` cells at `path`, sorted in place into increasing order.
void EmitPath(int32_t* path, int32_t length, SparseVector& y) {
  std::sort(path, path + length);
  for (int32_t j = 0; j < length; ++j) y.Push(path[j], 1.0);
}

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
  return std::make_unique<GridWorkspace>(rows_, cols_, batch_width() > 1);
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
  const bool is_four = connectivity_ == Connectivity::kFour;
  const Neighbours neighbours(W, is_four);
  const int32_t* offsets = neighbours.offset;
  const int num_offsets = neighbours.count;
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
  EmitPath(ws.path.data(), length, y);
  return clamped;
}

int GridShortestPathOracle::batch_width() const {
  return dimension() <= kMaxLaneCells ? kMaxBatchWidth : 1;
}

int64_t GridShortestPathOracle::SolveLanes(absl::Span<const absl::Span<double>> thetas,
                                           OracleWorkspace& workspace,
                                           absl::Span<SparseVector* const> ys,
                                           uint32_t* swept) const {
  auto& ws = static_cast<GridWorkspace&>(workspace);
  const size_t n = thetas.size();
  assert(n <= static_cast<size_t>(kMaxBatchWidth) && ys.size() == n);
  if (swept != nullptr) *swept = 0;
  if (n < 2 || ws.lane_cost.empty()) return Oracle::SolveBatch(thetas, workspace, ys);
  const size_t d = static_cast<size_t>(dimension());
  // Clamp as Solve does; lanes with costs the sweeps cannot take are left to Solve.
  int64_t clamped = 0;
  uint32_t lanes = 0;
  for (size_t j = 0; j < n; ++j) {
    int64_t unbounded = 0;
    clamped += ClampForLanes(thetas[j].data(), d, &unbounded);
    lanes |= static_cast<uint32_t>(unbounded == 0) << j;
  }
  const int32_t W = ws.lane_width;
  const int32_t source = W + 1;
  const int32_t target = rows_ * W + cols_;
  if (lanes != 0) {
    // Unused lanes repeat a used one, so that they settle with it.
    const size_t spare = static_cast<size_t>(__builtin_ctz(lanes));
    const double* lane_theta[8];
    for (size_t l = 0; l < 8; ++l) {
      lane_theta[l] = thetas[l < n && (lanes >> l & 1u) ? l : spare].data();
    }
    ToLanes(lane_theta, rows_, cols_, W, ws.lane_cost.data());
    constexpr double kInf = std::numeric_limits<double>::infinity();
    for (LaneCell& cell : ws.lane_dist) std::fill(cell.lane, cell.lane + 8, kInf);
    ws.lane_dist[static_cast<size_t>(source)] = ws.lane_cost[static_cast<size_t>(source)];
    uint32_t unsettled = 0;
    uint32_t not_strict = 0;
    SweepLanes(ws.lane_cost.data(), ws.lane_dist.data(), rows_, cols_, W,
               connectivity_ == Connectivity::kFour, kMaxLanePasses, &unsettled, &not_strict);
    lanes &= ~(unsettled | not_strict);
  }
  if (swept != nullptr) *swept = lanes;

  const bool is_four = connectivity_ == Connectivity::kFour;
  const Neighbours neighbours(W, is_four);
  const int32_t* offsets = neighbours.offset;
  // From the target back along the least (D, cell) neighbours; D falls strictly at each
  // step, so each walk reaches the source within d cells. The lanes walk in turn, a step
  // each, so that their chains of dependent loads overlap.
  int32_t at[8], row[8], col[8], length[8];
  for (int l = 0; l < 8; ++l) {
    at[l] = target;
    row[l] = rows_ - 1;
    col[l] = cols_ - 1;
    length[l] = 0;
  }
  for (uint32_t walking = lanes; walking != 0;) {
    for (uint32_t bits = walking; bits != 0; bits &= bits - 1) {
      const int l = __builtin_ctz(bits);
      ws.lane_path[static_cast<size_t>(l) * d + static_cast<size_t>(length[l]++)] =
          row[l] * cols_ + col[l];
      if (at[l] == source) {
        walking &= ~(1u << l);
        continue;
      }
      const int best = is_four ? LeastNeighbour<4>(ws.lane_dist.data(), at[l], offsets, l)
                               : LeastNeighbour<8>(ws.lane_dist.data(), at[l], offsets, l);
      at[l] += offsets[best];
      row[l] += neighbours.row_step[best];
      col[l] += neighbours.col_step[best];
      assert(static_cast<size_t>(length[l]) < d);
    }
  }
  for (size_t j = 0; j < n; ++j) {
    SparseVector& y = *ys[j];
    if (!(lanes >> j & 1u)) {
      Solve(thetas[j], workspace, y);  // already clamped: returns 0
      continue;
    }
    y.Clear();
    EmitPath(ws.lane_path.data() + j * d, length[j], y);
  }
  return clamped;
}

}  // namespace perturbd
