#include "solvers/oracles/graph_shortest_path_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/indexed_min_heap.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

using oracle_internal::IndexedMinHeap;

struct GraphWorkspace final : OracleWorkspace {
  GraphWorkspace(int32_t n, bool needs_heap)
      : dist(n), pred_edge(n), pred_node(n), heap(needs_heap ? n : 0), path(n) {}
  std::vector<double> dist;        // best path value from the source
  std::vector<int32_t> pred_edge;  // last edge of that path
  std::vector<int32_t> pred_node;  // its tail
  IndexedMinHeap heap;             // Dijkstra only
  std::vector<int32_t> path;       // edges of the result, sorted before output
};

// Compressed sparse rows: the edges listed in `key_of` order grouped by key, stable in e.
struct Csr {
  std::vector<int32_t> offsets;
  std::vector<int32_t> edges;
};
Csr BuildCsr(int32_t num_keys, const std::vector<int32_t>& key_of_edge) {
  Csr csr;
  csr.offsets.assign(static_cast<size_t>(num_keys) + 1, 0);
  for (int32_t key : key_of_edge) ++csr.offsets[key + 1];
  for (int32_t v = 0; v < num_keys; ++v) csr.offsets[v + 1] += csr.offsets[v];
  csr.edges.resize(key_of_edge.size());
  std::vector<int32_t> next(csr.offsets.begin(), csr.offsets.end() - 1);
  for (size_t e = 0; e < key_of_edge.size(); ++e) {
    csr.edges[next[key_of_edge[e]]++] = static_cast<int32_t>(e);
  }
  return csr;
}

// Marks the nodes reachable from `start` along csr (edge e leads to far_end[e]).
std::vector<bool> Reachable(int32_t start, const Csr& csr, const std::vector<int32_t>& far_end) {
  std::vector<bool> seen(csr.offsets.size() - 1, false);
  std::vector<int32_t> stack = {start};
  seen[start] = true;
  while (!stack.empty()) {
    const int32_t u = stack.back();
    stack.pop_back();
    for (int32_t k = csr.offsets[u]; k < csr.offsets[u + 1]; ++k) {
      const int32_t v = far_end[csr.edges[k]];
      if (!seen[v]) {
        seen[v] = true;
        stack.push_back(v);
      }
    }
  }
  return seen;
}

absl::Status NodeOutOfRange(absl::string_view field, uint32_t node, uint32_t num_nodes) {
  return absl::InvalidArgumentError(
      absl::StrCat("problem.graph_shortest_path.", field, ": node ", node,
                   " is out of range [0, num_nodes = ", num_nodes, ")"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GraphShortestPathOracle>> GraphShortestPathOracle::Create(
    const GraphShortestPathSpec& spec, int64_t dimension, Sense sense) {
  // --- Validation, in wire field order. ---
  const uint32_t num_nodes = spec.num_nodes;
  if (num_nodes < 1) {
    return absl::InvalidArgumentError("problem.graph_shortest_path.num_nodes: must be >= 1, got 0");
  }
  if (spec.edge_targets.size() != spec.edge_sources.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "problem.graph_shortest_path.edge_targets: has length ", spec.edge_targets.size(),
        " but edge_sources has length ", spec.edge_sources.size(), "; they must be equal"));
  }
  if (spec.edge_sources.empty()) {
    return absl::InvalidArgumentError(
        "problem.graph_shortest_path.edge_sources: the graph needs at least one edge (d, the "
        "number of edges, must be >= 1)");
  }
  const size_t num_edges = spec.edge_sources.size();
  for (size_t e = 0; e < num_edges; ++e) {
    const uint32_t u = spec.edge_sources[e];
    const uint32_t v = spec.edge_targets[e];
    if (u >= num_nodes) return NodeOutOfRange(absl::StrCat("edge_sources[", e, "]"), u, num_nodes);
    if (v >= num_nodes) return NodeOutOfRange(absl::StrCat("edge_targets[", e, "]"), v, num_nodes);
    if (u == v) {
      return absl::InvalidArgumentError(absl::StrCat("problem.graph_shortest_path.edge_targets[", e,
                                                     "]: edge ", e, " is a self-loop at node ", v,
                                                     "; self-loops are not allowed"));
    }
  }
  if (spec.source >= num_nodes) return NodeOutOfRange("source", spec.source, num_nodes);
  if (spec.target >= num_nodes) return NodeOutOfRange("target", spec.target, num_nodes);
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, static_cast<int64_t>(num_edges),
      "the number of edges, len(problem.graph_shortest_path.edge_sources)"));

  // --- Renumber the nodes that appear, keeping their order: memory O(E), not O(num_nodes). ---
  std::vector<uint32_t> ids;
  ids.reserve(2 * num_edges + 2);
  ids.insert(ids.end(), spec.edge_sources.begin(), spec.edge_sources.end());
  ids.insert(ids.end(), spec.edge_targets.begin(), spec.edge_targets.end());
  ids.push_back(spec.source);
  ids.push_back(spec.target);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.size() > static_cast<size_t>(oracle_internal::kMaxDimension)) {
    return absl::InvalidArgumentError(
        "problem.graph_shortest_path.edge_sources: more than 2^31 - 1 distinct nodes");
  }
  const int32_t n = static_cast<int32_t>(ids.size());
  auto local = [&ids](uint32_t v) {
    return static_cast<int32_t>(std::lower_bound(ids.begin(), ids.end(), v) - ids.begin());
  };
  std::vector<int32_t> tail(num_edges), head(num_edges);
  for (size_t e = 0; e < num_edges; ++e) {
    tail[e] = local(spec.edge_sources[e]);
    head[e] = local(spec.edge_targets[e]);
  }
  const int32_t s = local(spec.source);
  const int32_t t = local(spec.target);
  const Csr out = BuildCsr(n, tail);
  const Csr in = BuildCsr(n, head);

  // --- Kahn's algorithm on the whole graph: acyclic iff every node gets a position. ---
  std::vector<int32_t> in_degree(n);
  for (int32_t v = 0; v < n; ++v) in_degree[v] = in.offsets[v + 1] - in.offsets[v];
  std::vector<int32_t> topological;
  topological.reserve(n);
  for (int32_t v = 0; v < n; ++v) {
    if (in_degree[v] == 0) topological.push_back(v);
  }
  for (size_t next = 0; next < topological.size(); ++next) {
    const int32_t u = topological[next];
    for (int32_t k = out.offsets[u]; k < out.offsets[u + 1]; ++k) {
      const int32_t v = head[out.edges[k]];
      if (--in_degree[v] == 0) topological.push_back(v);
    }
  }
  const bool is_dag = static_cast<int32_t>(topological.size()) == n;
  if (sense == Sense::kMaximize && !is_dag) {
    return oracle_internal::UnsupportedSense(
        "graph_shortest_path", sense,
        "the graph has a directed cycle; MAXIMIZE (longest path) needs a DAG");
  }

  // --- Keep the nodes on some source→target path. ---
  const std::vector<bool> from_source = Reachable(s, out, head);
  if (!from_source[t]) {
    return absl::InvalidArgumentError(
        absl::StrCat("problem.graph_shortest_path.target: node ", spec.target,
                     " is not reachable from source node ", spec.source));
  }
  auto oracle = std::unique_ptr<GraphShortestPathOracle>(new GraphShortestPathOracle());
  oracle->dimension_ = dimension;
  oracle->sense_ = sense;
  oracle->is_dag_ = is_dag;
  if (s == t) {
    oracle->empty_path_ = true;
    oracle->offsets_ = {0};
    oracle->cost_per_solve_ = is_dag ? 1.0 : static_cast<double>(dimension);
    return oracle;
  }
  const std::vector<bool> to_target = Reachable(t, in, tail);
  std::vector<int32_t> renumbered(n, -1);
  int32_t kept = 0;
  auto keep = [&](int32_t v) {
    if (from_source[v] && to_target[v]) renumbered[v] = kept++;
  };
  if (is_dag) {
    for (int32_t v : topological) keep(v);
  } else {
    for (int32_t v = 0; v < n; ++v) keep(v);
  }
  // Group the kept edges by head (DAG, pull-style DP) or by tail (Dijkstra), in edge order.
  std::vector<int32_t> kept_edges;
  std::vector<int32_t> group;
  for (size_t e = 0; e < num_edges; ++e) {
    const int32_t u = renumbered[tail[e]];
    const int32_t v = renumbered[head[e]];
    if (u < 0 || v < 0) continue;
    kept_edges.push_back(static_cast<int32_t>(e));
    group.push_back(is_dag ? v : u);
  }
  const Csr csr = BuildCsr(kept, group);
  oracle->num_nodes_ = kept;
  oracle->source_ = renumbered[s];
  oracle->target_ = renumbered[t];
  oracle->offsets_ = csr.offsets;
  oracle->edge_.resize(kept_edges.size());
  oracle->other_.resize(kept_edges.size());
  for (size_t k = 0; k < csr.edges.size(); ++k) {
    const int32_t e = kept_edges[csr.edges[k]];
    oracle->edge_[k] = e;
    oracle->other_[k] = is_dag ? renumbered[tail[e]] : renumbered[head[e]];
  }
  assert(!is_dag || (oracle->source_ == 0 && oracle->target_ == kept - 1));
  const double nodes = kept;
  const double edges = static_cast<double>(kept_edges.size());
  oracle->max_nonzeros_ = std::min<int64_t>(static_cast<int64_t>(kept_edges.size()), kept - 1);
  oracle->cost_per_solve_ = is_dag ? 2.0 * nodes + edges
                                   : static_cast<double>(dimension) + 2.0 * nodes +
                                         (nodes + edges) * (1.0 + std::log2(nodes + 1.0));
  return oracle;
}

std::unique_ptr<OracleWorkspace> GraphShortestPathOracle::NewWorkspace() const {
  return std::make_unique<GraphWorkspace>(num_nodes_, !is_dag_);
}

int64_t GraphShortestPathOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                                       SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  y.Clear();
  int64_t clamped = 0;
  if (!is_dag_) {
    // All of θ, reached or not, so that the count depends on θ alone.
    for (double& cost : theta) {
      if (cost < 0.0) {
        cost = 0.0;
        ++clamped;
      }
    }
  }
  if (empty_path_) return clamped;

  auto& ws = static_cast<GraphWorkspace&>(workspace);
  if (is_dag_) {
    SolveDag(theta, ws);
  } else {
    SolveDijkstra(theta, ws);
  }
  int32_t length = 0;
  for (int32_t v = target_; v != source_; v = ws.pred_node[v]) ws.path[length++] = ws.pred_edge[v];
  std::sort(ws.path.begin(), ws.path.begin() + length);
  for (int32_t j = 0; j < length; ++j) y.Push(ws.path[j], 1.0);
  return clamped;
}

void GraphShortestPathOracle::SolveDag(absl::Span<const double> theta,
                                       OracleWorkspace& workspace) const {
  auto& ws = static_cast<GraphWorkspace&>(workspace);
  // Longest path of ±θ: negation is exact, so MINIMIZE(θ) and MAXIMIZE(−θ) agree bit for bit.
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  ws.dist[0] = 0.0;
  // Nodes are in topological order and every kept node but the source has a kept in-edge.
  for (int32_t v = 1; v < num_nodes_; ++v) {
    int32_t k = offsets_[v];
    double best = ws.dist[other_[k]] + sign * theta[edge_[k]];
    int32_t best_k = k;
    for (++k; k < offsets_[v + 1]; ++k) {
      const double candidate = ws.dist[other_[k]] + sign * theta[edge_[k]];
      if (candidate > best) {  // strict: the lowest edge index wins ties
        best = candidate;
        best_k = k;
      }
    }
    ws.dist[v] = best;
    ws.pred_edge[v] = edge_[best_k];
    ws.pred_node[v] = other_[best_k];
  }
}

void GraphShortestPathOracle::SolveDijkstra(absl::Span<const double> theta,
                                            OracleWorkspace& workspace) const {
  auto& ws = static_cast<GraphWorkspace&>(workspace);
  std::fill(ws.dist.begin(), ws.dist.end(), std::numeric_limits<double>::infinity());
  ws.heap.Reset();
  ws.dist[source_] = 0.0;
  ws.heap.Update(source_, ws.dist);
  while (!ws.heap.empty()) {
    const int32_t u = ws.heap.PopMin(ws.dist);
    if (u == target_) return;
    for (int32_t k = offsets_[u]; k < offsets_[u + 1]; ++k) {
      const int32_t v = other_[k];
      if (ws.heap.popped(v)) continue;
      const double candidate = ws.dist[u] + theta[edge_[k]];
      // `!seen` rather than comparing with +∞, so that an infinite cost still gets a path.
      if (!ws.heap.seen(v) || candidate < ws.dist[v]) {
        ws.dist[v] = candidate;
        ws.pred_edge[v] = edge_[k];
        ws.pred_node[v] = u;
        ws.heap.Update(v, ws.dist);
      }
    }
  }
}

}  // namespace perturbd
