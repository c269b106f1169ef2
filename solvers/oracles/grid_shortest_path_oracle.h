// GridShortestPathOracle: the cheapest path through a grid of vertex costs (the Warcraft
// shortest-path benchmark of Vlastelica et al. and Berthet et al.).
//
//   y*(θ) = argmin_{y ∈ C} ⟨y, θ⟩,  C = {1[cells on P] : P a path from cell 0 to cell d−1}
//
// θ holds one cost per cell, row-major: θ[r·cols + c], d = rows·cols. A path moves between
// 4-neighbours (FOUR) or 8-neighbours (EIGHT: diagonals too) and y marks every cell on it,
// both ends included, so ⟨y, θ⟩ is the path's total cost. MINIMIZE only.
//
// Dijkstra from cell 0 with vertex weights (entering a cell costs θ of that cell), stopped as
// soon as cell d−1 is settled. Dijkstra needs θ ≥ 0: Solve clamps negative entries of θ to 0
// *in place* (all d of them, reached or not) and returns how many it clamped (DESIGN §5).
// Ties: the heap pops the smallest (distance, cell), neighbours are relaxed in increasing cell
// order and only a strict improvement changes a cell's predecessor, so the path is a
// deterministic function of θ. O(d·n·log d) per solve, n = 4 or 8; all memory in the workspace.
//
// SolveBatch solves up to 8 θ at once, one per SIMD lane, without a heap: Gauss–Seidel passes
// of the distances' fixed point, D_v = θ_v + min over v's neighbours of D_u (D_source = θ_source),
// alternately top-down and bottom-up, until a pass changes nothing; the predecessor of v is then
// its neighbour of least (D_u, u). When every cell's distance is strictly above its least
// neighbour's (so Dijkstra pops cells in (distance, cell) order), these are Dijkstra's
// distances and predecessors: the same rounding (each D_v is one addition to its
// predecessor's), the same ties, so the same path bit for bit. A θ for which that is not known
// (a zero or, after rounding, ineffective cost; a non-finite or huge one; no fixed point within
// the pass limit) is solved by Solve instead.
//
// Shapes: θ ∈ R^{rows·cols}; y ∈ {0,1}^{rows·cols} with between max(rows, cols) and d
// non-zeros. A 1×1 grid gives y = {cell 0}.
#ifndef PERTURBD_SOLVERS_ORACLES_GRID_SHORTEST_PATH_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_GRID_SHORTEST_PATH_ORACLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

class GridShortestPathOracle final : public Oracle {
 public:
  // INVALID_ARGUMENT naming `problem.grid_shortest_path.rows` / `.cols` (must be ≥ 1),
  // `problem.sense` (MAXIMIZE) or `theta.shape` (d ≠ rows·cols).
  static absl::StatusOr<std::unique_ptr<GridShortestPathOracle>> Create(
      const GridShortestPathSpec& spec, int64_t dimension, Sense sense);

  absl::string_view name() const override { return "grid_shortest_path"; }
  int64_t dimension() const override { return static_cast<int64_t>(rows_) * cols_; }
  Sense sense() const override { return Sense::kMinimize; }
  int64_t max_nonzeros() const override { return dimension(); }
  double cost_per_solve() const override;

  int32_t rows() const { return rows_; }
  int32_t cols() const { return cols_; }
  Connectivity connectivity() const { return connectivity_; }

  std::unique_ptr<OracleWorkspace> NewWorkspace() const override;
  int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                SparseVector& y) const override;
  // 8 for grids of at most kMaxLaneCells cells, else 1.
  int batch_width() const override;
  int64_t SolveBatch(absl::Span<const absl::Span<double>> thetas, OracleWorkspace& workspace,
                     absl::Span<SparseVector* const> ys) const override {
    return SolveLanes(thetas, workspace, ys, nullptr);
  }
  // SolveBatch, also setting bit j of *swept (when not null) when θ_j was solved by the lane
  // sweeps rather than by Solve (for tests and benchmarks).
  int64_t SolveLanes(absl::Span<const absl::Span<double>> thetas, OracleWorkspace& workspace,
                     absl::Span<SparseVector* const> ys, uint32_t* swept) const;

  // The largest grid solved in lanes (64×64): beyond it the lane sweeps need many passes and
  // the lane workspace (128 bytes a cell per thread) grows past the caches.
  static constexpr int64_t kMaxLaneCells = 4096;

 private:
  GridShortestPathOracle(int32_t rows, int32_t cols, Connectivity connectivity)
      : rows_(rows), cols_(cols), connectivity_(connectivity) {}

  int32_t rows_;
  int32_t cols_;
  Connectivity connectivity_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_GRID_SHORTEST_PATH_ORACLE_H_
