#include "solvers/oracles/spanning_tree_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

// Union–find over the renumbered nodes: union by size, path halving.
class DisjointSets {
 public:
  explicit DisjointSets(size_t n) : parent_(n), size_(n) { Reset(); }
  void Reset() {
    std::iota(parent_.begin(), parent_.end(), 0);
    std::fill(size_.begin(), size_.end(), 1);
  }
  int32_t Find(int32_t v) {
    while (parent_[v] != v) {
      parent_[v] = parent_[parent_[v]];
      v = parent_[v];
    }
    return v;
  }
  // Merges the sets of a and b; false when they already were one.
  bool Union(int32_t a, int32_t b) {
    a = Find(a);
    b = Find(b);
    if (a == b) return false;
    if (size_[a] < size_[b]) std::swap(a, b);
    parent_[b] = a;
    size_[a] += size_[b];
    return true;
  }

 private:
  std::vector<int32_t> parent_;
  std::vector<int32_t> size_;
};

// An edge and its sort key: ±θ_e mapped to an unsigned integer with the same order (so that
// an LSD radix sort applies), NaN as +∞ and −0 as +0 so that the order is exactly that of the
// doubles, with ties broken by the edge index.
struct KeyedEdge {
  uint64_t key;
  int32_t edge;
  bool operator<(const KeyedEdge& o) const {
    return key < o.key || (key == o.key && edge < o.edge);
  }
};

uint64_t OrderedBits(double k) {
  if (std::isnan(k)) k = std::numeric_limits<double>::infinity();
  k += 0.0;  // −0 → +0
  uint64_t u;
  std::memcpy(&u, &k, sizeof u);
  return (u >> 63) != 0 ? ~u : u | (uint64_t{1} << 63);
}

// Below this many edges std::sort beats the radix sort's fixed cost of 8 · 256 counters
// (measured crossover between 100 and 250 edges, bench/oracle_benchmark.cc).
constexpr size_t kRadixSortMinEdges = 160;

// Sorts `items` by (key, edge): an LSD radix sort on the 8 key bytes, stable, from items in
// increasing edge order; passes whose byte is the same for every item are skipped. `buffer` is
// scratch of the same size; `counts` 8 × 256. The result is in `items`.
void RadixSort(std::vector<KeyedEdge>& items, std::vector<KeyedEdge>& buffer,
               std::vector<uint32_t>& counts) {
  const size_t n = items.size();
  std::fill(counts.begin(), counts.end(), 0u);
  for (const KeyedEdge& it : items) {
    for (int p = 0; p < 8; ++p) ++counts[p * 256 + ((it.key >> (8 * p)) & 0xff)];
  }
  KeyedEdge* from = items.data();
  KeyedEdge* to = buffer.data();
  for (int p = 0; p < 8; ++p) {
    uint32_t* count = counts.data() + p * 256;
    if (count[(from[0].key >> (8 * p)) & 0xff] == n) continue;  // one bucket: nothing to do
    uint32_t offset = 0;
    for (int digit = 0; digit < 256; ++digit) {
      const uint32_t c = count[digit];
      count[digit] = offset;
      offset += c;
    }
    for (size_t i = 0; i < n; ++i) to[count[(from[i].key >> (8 * p)) & 0xff]++] = from[i];
    std::swap(from, to);
  }
  if (from != items.data()) std::copy(from, from + n, items.data());
}

struct SpanningTreeWorkspace final : OracleWorkspace {
  SpanningTreeWorkspace(size_t nodes, size_t edges)
      : sets(nodes),
        order(edges),
        buffer(edges >= kRadixSortMinEdges ? edges : 0),
        counts(edges >= kRadixSortMinEdges ? 8 * 256 : 0),
        chosen(edges, 0) {}
  DisjointSets sets;
  std::vector<KeyedEdge> order;  // sorted by (key, e)
  std::vector<KeyedEdge> buffer;
  std::vector<uint32_t> counts;
  std::vector<uint8_t> chosen;  // all zero between solves
};

absl::Status NodeOutOfRange(absl::string_view field, uint32_t node, uint32_t num_nodes) {
  return absl::InvalidArgumentError(absl::StrCat("problem.spanning_tree.", field, ": node ", node,
                                                 " is out of range [0, num_nodes = ", num_nodes,
                                                 ")"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpanningTreeOracle>> SpanningTreeOracle::Create(
    const SpanningTreeSpec& spec, int64_t dimension, Sense sense) {
  const uint32_t num_nodes = spec.num_nodes;
  if (num_nodes < 1) {
    return absl::InvalidArgumentError("problem.spanning_tree.num_nodes: must be >= 1, got 0");
  }
  if (spec.edge_targets.size() != spec.edge_sources.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "problem.spanning_tree.edge_targets: has length ", spec.edge_targets.size(),
        " but edge_sources has length ", spec.edge_sources.size(), "; they must be equal"));
  }
  if (spec.edge_sources.empty()) {
    return absl::InvalidArgumentError(
        "problem.spanning_tree.edge_sources: the graph needs at least one edge (d, the number "
        "of edges, must be >= 1)");
  }
  const size_t num_edges = spec.edge_sources.size();
  for (size_t e = 0; e < num_edges; ++e) {
    const uint32_t a = spec.edge_sources[e];
    const uint32_t b = spec.edge_targets[e];
    if (a >= num_nodes) return NodeOutOfRange(absl::StrCat("edge_sources[", e, "]"), a, num_nodes);
    if (b >= num_nodes) return NodeOutOfRange(absl::StrCat("edge_targets[", e, "]"), b, num_nodes);
    if (a == b) {
      return absl::InvalidArgumentError(absl::StrCat("problem.spanning_tree.edge_targets[", e,
                                                     "]: edge ", e, " is a self-loop at node ", b,
                                                     "; self-loops are not allowed"));
    }
  }
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, static_cast<int64_t>(num_edges),
      "the number of edges, len(problem.spanning_tree.edge_sources)"));

  // Renumber the nodes that edges touch, keeping their order: memory O(E).
  std::vector<uint32_t> ids(spec.edge_sources);
  ids.insert(ids.end(), spec.edge_targets.begin(), spec.edge_targets.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto local = [&ids](uint32_t v) {
    return static_cast<int32_t>(std::lower_bound(ids.begin(), ids.end(), v) - ids.begin());
  };
  auto oracle = std::unique_ptr<SpanningTreeOracle>(new SpanningTreeOracle());
  oracle->sense_ = sense;
  oracle->num_nodes_ = static_cast<int32_t>(ids.size());
  oracle->tail_.resize(num_edges);
  oracle->head_.resize(num_edges);
  DisjointSets sets(ids.size());
  int32_t forest_edges = 0;
  for (size_t e = 0; e < num_edges; ++e) {
    oracle->tail_[e] = local(spec.edge_sources[e]);
    oracle->head_[e] = local(spec.edge_targets[e]);
    if (sets.Union(oracle->tail_[e], oracle->head_[e])) ++forest_edges;
  }
  oracle->forest_edges_ = forest_edges;
  return oracle;
}

double SpanningTreeOracle::cost_per_solve() const {
  // Calibrated to about 1 ns per unit (bench/oracle_benchmark.cc): the radix sort costs about
  // 20 ns per edge plus its counters, std::sort about 3 ns per comparison.
  const double e = static_cast<double>(tail_.size());
  const double sort =
      tail_.size() >= kRadixSortMinEdges ? 20.0 * e + 4096.0 : 3.0 * e * (2.0 + std::log2(e + 1.0));
  return sort + static_cast<double>(num_nodes_);
}

std::unique_ptr<OracleWorkspace> SpanningTreeOracle::NewWorkspace() const {
  return std::make_unique<SpanningTreeWorkspace>(static_cast<size_t>(num_nodes_), tail_.size());
}

int64_t SpanningTreeOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                  SparseVector& y) const {
  assert(theta.size() == tail_.size());
  auto& ws = static_cast<SpanningTreeWorkspace&>(workspace);
  y.Clear();
  const size_t num_edges = tail_.size();
  // Negation is exact, so MAXIMIZE(θ) is MINIMIZE(−θ) bit for bit. NaN sorts as +∞.
  const double sign = sense_ == Sense::kMinimize ? 1.0 : -1.0;
  for (size_t e = 0; e < num_edges; ++e) {
    ws.order[e] = {OrderedBits(sign * theta[e]), static_cast<int32_t>(e)};
  }
  if (num_edges >= kRadixSortMinEdges) {
    RadixSort(ws.order, ws.buffer, ws.counts);
  } else {
    std::sort(ws.order.begin(), ws.order.end());
  }
  ws.sets.Reset();
  int32_t added = 0;
  for (size_t k = 0; k < num_edges && added < forest_edges_; ++k) {
    const int32_t e = ws.order[k].edge;
    if (ws.sets.Union(tail_[e], head_[e])) {
      ws.chosen[e] = 1;
      ++added;
    }
  }
  for (size_t e = 0; e < num_edges; ++e) {
    if (ws.chosen[e]) {
      y.Push(static_cast<int64_t>(e), 1.0);
      ws.chosen[e] = 0;
    }
  }
  return 0;
}

}  // namespace perturbd
