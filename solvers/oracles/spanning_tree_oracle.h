// SpanningTreeOracle: the best spanning tree (forest) of an undirected graph with edge weights.
//
//   MINIMIZE: y*(θ) = argmin_{y ∈ C} ⟨y, θ⟩,  C = {1[edges of F] : F a spanning forest}
//   MAXIMIZE: argmax (maximum spanning tree)       (= MINIMIZE(−θ) exactly)
//
// θ[e] is the weight of edge e = {edge_sources[e], edge_targets[e]}; d = number of edges, so
// parallel edges are separate coordinates. A spanning forest has one spanning tree per
// connected component of the graph formed by the edges, so every y ∈ C has the same number of
// edges, V − c (V the nodes that edges touch, c their components): on a connected graph C is
// the set of spanning trees, on a disconnected one the set of spanning forests (this is what
// the oracle returns, rather than an error). Nodes that no edge touches are isolated and play no
// part, so memory is O(E) whatever `num_nodes`.
//
// Algorithm: Kruskal. The edges are sorted by (±θ_e, e) in the workspace (an LSD radix sort
// on the bits of ±θ_e from 160 edges up, `std::sort` below; no allocation) and added when they
// join two components (union–find with union by size and path halving), until V − c are in;
// O(E) for the radix sort, O(E log E) below it. Ties go to the lower edge index: the result is the
// greedy forest for that order, i.e. the unique optimum for θ_e + δ·e with an infinitesimal δ > 0
// (MINIMIZE). A NaN weight sorts as the worst. Self-loops are INVALID_ARGUMENT at creation.
//
// Shapes: θ ∈ R^E; y ∈ {0,1}^E with exactly V − c non-zeros.
#ifndef PERTURBD_SOLVERS_ORACLES_SPANNING_TREE_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_SPANNING_TREE_ORACLE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class SpanningTreeOracle final : public Oracle {
 public:
  // Both senses. Errors name `problem.spanning_tree.<field>` (no nodes, no edges, lengths,
  // node ids out of range, self-loops) or `theta.shape` (d ≠ number of edges).
  static absl::StatusOr<std::unique_ptr<SpanningTreeOracle>> Create(const SpanningTreeSpec& spec,
                                                                    int64_t dimension, Sense sense);

  absl::string_view name() const override { return "spanning_tree"; }
  int64_t dimension() const override { return static_cast<int64_t>(tail_.size()); }
  Sense sense() const override { return sense_; }
  // V − c: the number of edges of every spanning forest.
  int64_t max_nonzeros() const override { return forest_edges_; }
  double cost_per_solve() const override;
  // c: the number of connected components of the nodes that edges touch (1: a spanning tree).
  int32_t num_components() const { return num_nodes_ - forest_edges_; }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;

 private:
  SpanningTreeOracle() = default;

  Sense sense_ = Sense::kMinimize;
  int32_t num_nodes_ = 0;      // distinct nodes touched by edges, renumbered 0..num_nodes_ − 1
  int32_t forest_edges_ = 0;   // V − c
  std::vector<int32_t> tail_;  // per edge, renumbered
  std::vector<int32_t> head_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_SPANNING_TREE_ORACLE_H_
