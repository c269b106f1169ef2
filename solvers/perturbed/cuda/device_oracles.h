// Host–device oracles of the CUDA backend: the per-sample solves of argmax, top_k, threshold,
// ranking and grid_shortest_path, written once as PERTURBD_HOST_DEVICE code so that the GPU
// kernels and their CPU unit tests run the very same instructions.
//
// Every function here returns exactly the solution of the CPU oracle in solvers/oracles/ for
// the same η (DESIGN §2: identical per-sample solutions), because it implements the same total
// order, not merely the same optimum:
//   argmax, top_k   "better first": key descending, then index ascending, with
//                   key = η (MAXIMIZE) or −η (MINIMIZE, an exact negation), NaN → −∞
//   ranking         key ascending, then index ascending: rank_i = #{j : (key_j, j) < (key_i, i)}
//   threshold       y_i = 1[η_i > 0] (MAXIMIZE), 1[η_i < 0] (MINIMIZE)
//   grid path       Dijkstra with the CPU's indexed heap: pops the smallest (distance, cell),
//                   relaxes neighbours, replaces a predecessor on strict improvement only
//                   (the heap, the relaxation and the stopping rule are copied, so the path is
//                   the CPU's path, exact ties in path cost included)
//
// Row solvers are templates over a `Warp` (the lanes that share one sample): `SingleLane` here
// (the CPU tests, and the GPU's one-thread-per-sample kernels) or the CUDA warp of
// cuda_kernels.cu (32 lanes; lane-strided scans combined by a butterfly). A Warp provides
//   int lane(), int width()                       this lane, number of lanes
//   RankedIndex Reduce(RankedIndex, bool best)     Pick over all lanes (same result on every lane)
//   uint32_t Ballot(bool)                          bit l set when lane l's predicate holds
//   double Sum(double)                             Σ over lanes, the same bits on every lane
// Reductions over lanes of a *selection* (Pick under a strict total order) give the same element
// whatever their order, so the 32-lane warp and the single lane select the same solution.
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ORACLES_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ORACLES_H_

#include <cstdint>

#include "solvers/perturbed/noise_math.h"
#include "solvers/perturbed/philox.h"

namespace perturbd::gpu_internal {

PERTURBD_HOST_DEVICE double PositiveInfinity() {
  return noise_math::BitsDouble(0x7FF0000000000000ull);
}

PERTURBD_HOST_DEVICE int32_t PopCount(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

// ---------------------------------------------------------------------------------------------
// The "better first" total order of argmax and top_k.

// One candidate: a key and its coordinate. index < 0 means "none".
struct RankedIndex {
  double key;
  int32_t index;
};

PERTURBD_HOST_DEVICE RankedIndex NoCandidate() { return RankedIndex{0.0, -1}; }

// The key the CPU oracles order by: sign·v with sign = +1 (MAXIMIZE) or −1 (MINIMIZE), NaN
// ordered as −∞ (top_k, ranking). η is finite in practice (θ is validated finite), so argmax's
// own NaN rule (never selected unless at index 0) never comes into play.
PERTURBD_HOST_DEVICE double OracleKey(double v, double sign) {
  const double k = sign * v;
  return k != k ? -PositiveInfinity() : k;
}

// True when a comes strictly before b: larger key, or equal keys and lower index. Both valid.
PERTURBD_HOST_DEVICE bool Precedes(const RankedIndex& a, const RankedIndex& b) {
  return a.key > b.key || (a.key == b.key && a.index < b.index);
}

// The first (from_best) or last (!from_best) of a and b in the order; "none" loses. Symmetric
// in (a, b) for distinct indices, so a butterfly over lanes agrees on every lane.
PERTURBD_HOST_DEVICE RankedIndex Pick(const RankedIndex& a, const RankedIndex& b, bool from_best) {
  if (a.index < 0) return b;
  if (b.index < 0) return a;
  if (from_best) return Precedes(b, a) ? b : a;
  return Precedes(a, b) ? b : a;
}

// Over the coordinates begin, begin + stride, … < d: the first (from_best) or last element of
// the order among those strictly after `last` (from_best) or strictly before it (!from_best);
// every element when last is "none".
PERTURBD_HOST_DEVICE RankedIndex ScanExtreme(const double* eta, double sign, int32_t d,
                                             int32_t begin, int32_t stride, const RankedIndex& last,
                                             bool from_best) {
  RankedIndex best = NoCandidate();
  for (int32_t i = begin; i < d; i += stride) {
    const RankedIndex c{OracleKey(eta[i], sign), i};
    if (last.index >= 0 && !(from_best ? Precedes(last, c) : Precedes(c, last))) continue;
    best = Pick(best, c, from_best);
  }
  return best;
}

// The lane set of the CPU tests and of one-thread-per-sample kernels.
struct SingleLane {
  PERTURBD_HOST_DEVICE int32_t lane() const { return 0; }
  PERTURBD_HOST_DEVICE int32_t width() const { return 1; }
  PERTURBD_HOST_DEVICE RankedIndex Reduce(const RankedIndex& c, bool) const { return c; }
  PERTURBD_HOST_DEVICE uint32_t Ballot(bool p) const { return p ? 1u : 0u; }
  PERTURBD_HOST_DEVICE double Sum(double x) const { return x; }
};

// ---------------------------------------------------------------------------------------------
// Output of one sample: the sparse y (strictly increasing indices, non-zero values; capacity
// max_nonzeros) and the same y dense. Values are 0/1 or ranks < 2²⁴: exact in float.
struct RowOutput {
  int32_t* index;  // [max_nonzeros]
  float* value;    // [max_nonzeros]
  float* dense;    // [d]
  int32_t* nnz;    // [1]
};

// Writes y_i = value_of(i) for i < d; zeros are left out of the sparse list. Lanes take
// consecutive coordinates, and a ballot gives each non-zero its position, so the sparse list
// comes out in increasing index order for any width.
template <class Warp, class ValueOf>
PERTURBD_HOST_DEVICE void WriteRow(const Warp& w, int32_t d, const ValueOf& value_of,
                                   const RowOutput& out) {
  int32_t count = 0;
  const uint32_t below = (1u << w.lane()) - 1u;
  for (int32_t base = 0; base < d; base += w.width()) {
    const int32_t i = base + w.lane();
    const float v = i < d ? value_of(i) : 0.0f;
    const bool nonzero = v != 0.0f;
    const uint32_t mask = w.Ballot(nonzero);
    if (nonzero) {
      const int32_t pos = count + PopCount(mask & below);
      out.index[pos] = i;
      out.value[pos] = v;
    }
    if (i < d) out.dense[i] = v;
    count += PopCount(mask);
  }
  if (w.lane() == 0) *out.nnz = count;
}

struct OneAt {
  int32_t index;
  PERTURBD_HOST_DEVICE float operator()(int32_t i) const { return i == index ? 1.0f : 0.0f; }
};

// argmax: the first element of the order (ArgmaxOracle: strict comparisons keep the lowest
// index among ties; MINIMIZE is MAXIMIZE of −η exactly).
template <class Warp>
PERTURBD_HOST_DEVICE void SolveArgmax(const Warp& w, const double* eta, int32_t d, bool maximize,
                                      const RowOutput& out) {
  const double sign = maximize ? 1.0 : -1.0;
  const RankedIndex best =
      w.Reduce(ScanExtreme(eta, sign, d, w.lane(), w.width(), NoCandidate(), true), true);
  WriteRow(w, d, OneAt{best.index}, out);
}

struct TopKMember {
  const double* eta;
  double sign;
  RankedIndex cutoff;  // the k-th element of the order
  PERTURBD_HOST_DEVICE float operator()(int32_t i) const {
    const RankedIndex c{OracleKey(eta[i], sign), i};
    return i == cutoff.index || Precedes(c, cutoff) ? 1.0f : 0.0f;
  }
};

// The k-th element of the order: k rounds from the best end, or d − k + 1 from the worst end,
// whichever is fewer; each round selects the extreme element beyond the previous one.
template <class Warp>
PERTURBD_HOST_DEVICE RankedIndex TopKCutoff(const Warp& w, const double* eta, int32_t d, int32_t k,
                                            double sign) {
  const bool from_best = k <= d - k + 1;
  const int32_t rounds = from_best ? k : d - k + 1;
  RankedIndex last = NoCandidate();
  for (int32_t r = 0; r < rounds; ++r) {
    last = w.Reduce(ScanExtreme(eta, sign, d, w.lane(), w.width(), last, from_best), from_best);
  }
  return last;
}

// top_k: the k first elements of the order (TopKOracle's nth_element with the same comparator
// selects exactly this set). 1 ≤ k ≤ d.
template <class Warp>
PERTURBD_HOST_DEVICE void SolveTopK(const Warp& w, const double* eta, int32_t d, int32_t k,
                                    bool maximize, const RowOutput& out) {
  const double sign = maximize ? 1.0 : -1.0;
  WriteRow(w, d, TopKMember{eta, sign, TopKCutoff(w, eta, d, k, sign)}, out);
}

struct ThresholdValue {
  const double* eta;
  bool maximize;
  PERTURBD_HOST_DEVICE float operator()(int32_t i) const {
    return (maximize ? eta[i] > 0.0 : eta[i] < 0.0) ? 1.0f : 0.0f;
  }
};

template <class Warp>
PERTURBD_HOST_DEVICE void SolveThreshold(const Warp& w, const double* eta, int32_t d, bool maximize,
                                         const RowOutput& out) {
  WriteRow(w, d, ThresholdValue{eta, maximize}, out);
}

// rank_i = #{j : key_j < key_i or (key_j = key_i and j < i)}: the position of i in RankingOracle's
// sort (a strict total order, so positions are counts). O(d) per coordinate.
PERTURBD_HOST_DEVICE int32_t RankOf(const double* eta, double sign, int32_t d, int32_t i) {
  const double ki = OracleKey(eta[i], sign);
  int32_t rank = 0;
  for (int32_t j = 0; j < d; ++j) {
    const double kj = OracleKey(eta[j], sign);
    rank += (kj < ki || (kj == ki && j < i)) ? 1 : 0;
  }
  return rank;
}

struct RankValue {
  const double* eta;
  double sign;
  int32_t d;
  PERTURBD_HOST_DEVICE float operator()(int32_t i) const {
    return static_cast<float>(RankOf(eta, sign, d, i));
  }
};

template <class Warp>
PERTURBD_HOST_DEVICE void SolveRanking(const Warp& w, const double* eta, int32_t d, bool maximize,
                                       const RowOutput& out) {
  WriteRow(w, d, RankValue{eta, maximize ? 1.0 : -1.0, d}, out);
}

// ---------------------------------------------------------------------------------------------
// grid_shortest_path: GridShortestPathOracle's Dijkstra, one thread per sample.

// Clamps negative costs to zero in place (all d of them) and returns how many (DESIGN §5).
PERTURBD_HOST_DEVICE uint32_t ClampNegativeCosts(double* cost, int32_t d) {
  uint32_t clamped = 0;
  for (int32_t v = 0; v < d; ++v) {
    if (cost[v] < 0.0) {
      cost[v] = 0.0;
      ++clamped;
    }
  }
  return clamped;
}

// Scratch of one Dijkstra: element v at [v · stride] (stride = the number of samples solved at
// once on the GPU, so that neighbouring threads touch neighbouring words; 1 on the CPU).
struct GridScratch {
  double* dist;    // best known cost from cell 0, both ends included
  int32_t* pred;   // previous cell on that path, −1 for cell 0
  int32_t* heap;   // heap[0 .. size) in heap order
  int32_t* state;  // position in heap, or kUnseen / kPopped / kOnPath
  int64_t stride;

  PERTURBD_HOST_DEVICE double& Dist(int32_t v) const { return dist[v * stride]; }
  PERTURBD_HOST_DEVICE int32_t& Pred(int32_t v) const { return pred[v * stride]; }
  PERTURBD_HOST_DEVICE int32_t& Heap(int32_t i) const { return heap[i * stride]; }
  PERTURBD_HOST_DEVICE int32_t& State(int32_t v) const { return state[v * stride]; }
};

namespace grid_internal {
constexpr int32_t kUnseen = -1;
constexpr int32_t kPopped = -2;

// The CPU heap's order: (dist, cell), so ties pop the lowest cell first.
PERTURBD_HOST_DEVICE bool Less(const GridScratch& s, int32_t a, int32_t b) {
  const double ka = s.Dist(a), kb = s.Dist(b);
  return ka < kb || (ka == kb && a < b);
}
PERTURBD_HOST_DEVICE void Place(const GridScratch& s, int32_t i, int32_t v) {
  s.Heap(i) = v;
  s.State(v) = i;
}
PERTURBD_HOST_DEVICE void SiftUp(const GridScratch& s, int32_t i, int32_t v) {
  while (i > 0) {
    const int32_t parent = (i - 1) / 2;
    if (!Less(s, v, s.Heap(parent))) break;
    Place(s, i, s.Heap(parent));
    i = parent;
  }
  Place(s, i, v);
}
PERTURBD_HOST_DEVICE void SiftDown(const GridScratch& s, int32_t size, int32_t i, int32_t v) {
  while (true) {
    int32_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && Less(s, s.Heap(child + 1), s.Heap(child))) ++child;
    if (!Less(s, s.Heap(child), v)) break;
    Place(s, i, s.Heap(child));
    i = child;
  }
  Place(s, i, v);
}
// Inserts v (unseen) or restores the order after Dist(v) decreased.
PERTURBD_HOST_DEVICE void Update(const GridScratch& s, int32_t& size, int32_t v) {
  int32_t i = s.State(v);
  if (i == kUnseen) {
    i = size++;
    s.Heap(i) = v;
  }
  SiftUp(s, i, v);
}
PERTURBD_HOST_DEVICE int32_t PopMin(const GridScratch& s, int32_t& size) {
  const int32_t top = s.Heap(0);
  s.State(top) = kPopped;
  if (--size > 0) SiftDown(s, size, 0, s.Heap(size));
  return top;
}
}  // namespace grid_internal

constexpr int32_t kGridOnPath = -3;

// Cheapest path from cell 0 to cell rows·cols − 1 over non-negative vertex costs (clamped
// first), 4- or 8-neighbours. Marks the path's cells with State(v) = kGridOnPath and returns
// their number. The same operations in the same order as GridShortestPathOracle::Solve.
PERTURBD_HOST_DEVICE int32_t GridShortestPath(const double* cost, int32_t rows, int32_t cols,
                                              bool eight, const GridScratch& s) {
  using namespace grid_internal;
  const int32_t n = rows * cols;
  const int32_t target = n - 1;
  for (int32_t v = 0; v < n; ++v) {
    s.Dist(v) = PositiveInfinity();
    s.State(v) = kUnseen;
  }
  int32_t size = 0;
  s.Dist(0) = cost[0];
  s.Pred(0) = -1;
  Update(s, size, 0);
  while (size > 0) {
    const int32_t u = PopMin(s, size);
    if (u == target) break;
    const int32_t r = u / cols;
    const int32_t c = u % cols;
    // (dr, dc) in lexicographic order = the CPU's kFour / kEight order (increasing cell).
    for (int32_t dr = -1; dr <= 1; ++dr) {
      for (int32_t dc = -1; dc <= 1; ++dc) {
        if (dr == 0 && dc == 0) continue;
        if (!eight && dr != 0 && dc != 0) continue;
        const int32_t nr = r + dr;
        const int32_t nc = c + dc;
        if (nr < 0 || nr >= rows || nc < 0 || nc >= cols) continue;
        const int32_t v = nr * cols + nc;
        const int32_t state = s.State(v);
        if (state == kPopped) continue;
        const double candidate = s.Dist(u) + cost[v];
        if (state == kUnseen || candidate < s.Dist(v)) {
          s.Dist(v) = candidate;
          s.Pred(v) = u;
          Update(s, size, v);
        }
      }
    }
  }
  // Every cell is reachable: the target was popped and its predecessor chain ends at cell 0.
  int32_t length = 0;
  for (int32_t v = target; v >= 0;) {
    const int32_t next = s.Pred(v);
    s.State(v) = kGridOnPath;
    ++length;
    v = next;
  }
  return length;
}

struct OnPath {
  GridScratch s;
  PERTURBD_HOST_DEVICE float operator()(int32_t v) const {
    return s.State(v) == kGridOnPath ? 1.0f : 0.0f;
  }
};

// One grid sample: clamps `cost` (length rows·cols) in place, solves, writes y; returns the
// number of clamped costs.
PERTURBD_HOST_DEVICE uint32_t SolveGridShortestPath(double* cost, int32_t rows, int32_t cols,
                                                    bool eight, const GridScratch& s,
                                                    const RowOutput& out) {
  const uint32_t clamped = ClampNegativeCosts(cost, rows * cols);
  GridShortestPath(cost, rows, cols, eight, s);
  WriteRow(SingleLane{}, rows * cols, OnPath{s}, out);
  return clamped;
}

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ORACLES_H_
