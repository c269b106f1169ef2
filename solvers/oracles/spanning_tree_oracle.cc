#include "solvers/oracles/spanning_tree_oracle.h"

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

struct SpanningTreeWorkspace final : OracleWorkspace {
  SpanningTreeWorkspace(size_t nodes, size_t edges)
      : sets(nodes), key(edges), order(edges), chosen(edges, 0) {}
  DisjointSets sets;
  std::vector<double> key;      // ±θ, NaN → +∞; smaller is better
  std::vector<int32_t> order;   // edges sorted by (key, e)
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
  const double e = static_cast<double>(tail_.size());
  return e * (2.0 + std::log2(e + 1.0)) + static_cast<double>(num_nodes_);
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
  // Negation is exact, so MAXIMIZE(θ) is MINIMIZE(−θ) bit for bit. Mapping NaN to +∞ keeps the
  // comparator a strict weak order, which std::sort needs.
  const double sign = sense_ == Sense::kMinimize ? 1.0 : -1.0;
  for (size_t e = 0; e < num_edges; ++e) {
    const double k = sign * theta[e];
    ws.key[e] = std::isnan(k) ? std::numeric_limits<double>::infinity() : k;
  }
  std::iota(ws.order.begin(), ws.order.end(), 0);
  const double* key = ws.key.data();
  std::sort(ws.order.begin(), ws.order.end(),
            [key](int32_t a, int32_t b) { return key[a] < key[b] || (key[a] == key[b] && a < b); });
  ws.sets.Reset();
  int32_t added = 0;
  for (size_t k = 0; k < num_edges && added < forest_edges_; ++k) {
    const int32_t e = ws.order[k];
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
