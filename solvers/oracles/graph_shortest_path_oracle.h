// GraphShortestPathOracle: the best source→target path in a directed graph with edge costs.
//
//   MINIMIZE: y*(θ) = argmin_{y ∈ C} ⟨y, θ⟩,  C = {1[edges on P] : P a path source → target}
//   MAXIMIZE: argmax (longest path), on a DAG only         (= MINIMIZE(−θ) exactly)
//
// θ[e] is the cost of edge e = edge_sources[e] → edge_targets[e]; d = number of edges, so
// parallel edges are separate coordinates. y marks the edges of the path, ⟨y, θ⟩ is its cost.
//
// Two algorithms, chosen once per request at creation (`Create` runs Kahn's algorithm on the
// whole graph):
//  * DAG: dynamic programming in topological order, O(V + E), any sign, both senses. Each node
//    keeps the lowest-index incoming edge among those achieving its optimal value, so among
//    tied optimal paths the one returned is fixed by that rule, traced back from the target.
//  * a graph with a directed cycle: Dijkstra from the source, stopped when the target is
//    settled, O(E log V), MINIMIZE only. It needs θ ≥ 0: Solve clamps every negative entry of θ
//    to 0 *in place* and returns how many it clamped (DESIGN §5). Ties: the heap pops the
//    smallest (distance, node id), out-edges are relaxed in increasing edge index and only a
//    strict improvement changes a node's predecessor edge; deterministic, but not necessarily
//    the lowest-index edges among tied paths.
//
// Creation also keeps only the nodes that lie on some source→target path (reachable from the
// source and reaching the target) and the edges between them, so each solve touches only that
// subgraph, and renumbers the nodes that edges touch, so memory is O(E) whatever `num_nodes`.
// source = target gives the empty path (y = 0) in both modes. An unreachable target, a
// self-loop, an out-of-range node id or zero edges is INVALID_ARGUMENT at creation.
//
// Shapes: θ ∈ R^E; y ∈ {0,1}^E with at most min(E, V − 1) non-zeros.
#ifndef PERTURBD_SOLVERS_ORACLES_GRAPH_SHORTEST_PATH_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_GRAPH_SHORTEST_PATH_ORACLE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class GraphShortestPathOracle final : public Oracle {
 public:
  // Validates the structure; errors name `problem.graph_shortest_path.<field>`,
  // `problem.sense` (MAXIMIZE on a graph with a cycle) or `theta.shape` (d ≠ number of edges).
  static absl::StatusOr<std::unique_ptr<GraphShortestPathOracle>> Create(
      const GraphShortestPathSpec& spec, int64_t dimension, Sense sense);

  absl::string_view name() const override { return "graph_shortest_path"; }
  int64_t dimension() const override { return dimension_; }
  Sense sense() const override { return sense_; }
  int64_t max_nonzeros() const override { return max_nonzeros_; }
  double cost_per_solve() const override { return cost_per_solve_; }

  // True when the whole graph is acyclic (topological DP, no clamping, both senses).
  bool is_dag() const { return is_dag_; }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  GraphShortestPathOracle() = default;

  void SolveDag(absl::Span<const double> theta, OracleWorkspace& workspace) const;
  void SolveDijkstra(absl::Span<const double> theta, OracleWorkspace& workspace) const;

  int64_t dimension_ = 0;
  Sense sense_ = Sense::kMinimize;
  bool is_dag_ = false;
  bool empty_path_ = false;  // source = target
  // The subgraph of nodes on some source→target path, renumbered 0..num_nodes_−1: in
  // topological order on a DAG (so source_ = 0 and target_ = num_nodes_ − 1), in order of the
  // original ids otherwise (the Dijkstra tie-break).
  int32_t num_nodes_ = 0;
  int32_t source_ = 0;
  int32_t target_ = 0;
  // CSR adjacency of that subgraph, edges of a node in increasing edge index. DAG: incoming
  // edges of each node, `other_` = tail. Dijkstra: outgoing edges, `other_` = head.
  std::vector<int32_t> offsets_;  // num_nodes_ + 1
  std::vector<int32_t> edge_;     // edge index e, the coordinate of θ
  std::vector<int32_t> other_;
  int64_t max_nonzeros_ = 0;
  double cost_per_solve_ = 0.0;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_GRAPH_SHORTEST_PATH_ORACLE_H_
