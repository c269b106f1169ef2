#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::Expect;
using oracle_test::ExpectMatchesBruteForce;
using oracle_test::FeasibleSet;
using oracle_test::MakeOk;
using oracle_test::SolveDense;

constexpr Connectivity kBothConnectivities[] = {Connectivity::kFour, Connectivity::kEight};

std::vector<int> Neighbours(int rows, int cols, Connectivity connectivity, int cell) {
  std::vector<int> out;
  const int r = cell / cols;
  const int c = cell % cols;
  for (int dr = -1; dr <= 1; ++dr) {
    for (int dc = -1; dc <= 1; ++dc) {
      if (dr == 0 && dc == 0) continue;
      if (connectivity == Connectivity::kFour && dr != 0 && dc != 0) continue;
      const int nr = r + dr;
      const int nc = c + dc;
      if (nr >= 0 && nr < rows && nc >= 0 && nc < cols) out.push_back(nr * cols + nc);
    }
  }
  return out;
}

// The cell sets of all simple paths from cell 0 to cell rows·cols − 1, by depth-first search.
FeasibleSet SimpleGridPaths(int rows, int cols, Connectivity connectivity) {
  const int n = rows * cols;
  FeasibleSet set;
  std::vector<double> on_path(n, 0.0);
  auto dfs = [&](auto& self, int cell) -> void {
    on_path[cell] = 1.0;
    if (cell == n - 1) {
      set.Add(on_path);
    } else {
      for (int next : Neighbours(rows, cols, connectivity, cell)) {
        if (on_path[next] == 0.0) self(self, next);
      }
    }
    on_path[cell] = 0.0;
  };
  dfs(dfs, 0);
  return set;
}

std::vector<std::pair<int, int>> SmallShapes() {
  std::vector<std::pair<int, int>> shapes;
  for (int rows = 1; rows <= 4; ++rows) {
    for (int cols = 1; cols <= 4; ++cols) {
      if (rows * cols <= 12) shapes.emplace_back(rows, cols);
    }
  }
  shapes.emplace_back(1, 7);
  shapes.emplace_back(6, 1);
  return shapes;
}

GridShortestPathSpec Grid(int rows, int cols, Connectivity connectivity) {
  return GridShortestPathSpec{.rows = static_cast<uint32_t>(rows),
                              .cols = static_cast<uint32_t>(cols),
                              .connectivity = connectivity};
}

TEST(GridShortestPathOracle, MatchesBruteForceOnPositiveCosts) {
  std::mt19937_64 rng(41);
  int instances = 0;
  for (auto [rows, cols] : SmallShapes()) {
    for (Connectivity connectivity : kBothConnectivities) {
      const FeasibleSet paths = SimpleGridPaths(rows, cols, connectivity);
      auto oracle = MakeOk(Grid(rows, cols, connectivity), rows * cols, std::nullopt);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 20; ++instance, ++instances) {
        SCOPED_TRACE(::testing::Message() << rows << "x" << cols << " instance " << instance);
        const std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, 0.1, 10.0);
        const auto solved =
            ExpectMatchesBruteForce(*oracle, *ws, theta, paths, Expect::kFirstOptimal, 1e-12);
        EXPECT_EQ(solved.clamped, 0);
      }
    }
  }
  EXPECT_GE(instances, 200);
}

TEST(GridShortestPathOracle, ClampsNegativeCostsInPlace) {
  std::mt19937_64 rng(42);
  for (auto [rows, cols] : SmallShapes()) {
    for (Connectivity connectivity : kBothConnectivities) {
      const FeasibleSet paths = SimpleGridPaths(rows, cols, connectivity);
      auto oracle = MakeOk(Grid(rows, cols, connectivity), rows * cols, Sense::kMinimize);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 10; ++instance) {
        const std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, -3.0, 5.0);
        std::vector<double> clamped = theta;
        int64_t negatives = 0;
        for (double& x : clamped) {
          if (x < 0) {
            x = 0.0;
            ++negatives;
          }
        }
        std::vector<double> seen = theta;
        const auto solved = SolveDense(*oracle, *ws, seen);
        EXPECT_EQ(solved.clamped, negatives);
        EXPECT_EQ(seen, clamped) << "negative costs must be set to zero in place";
        // Zero costs tie, so only optimality on the clamped costs is checked.
        ExpectMatchesBruteForce(*oracle, *ws, theta, paths, Expect::kOptimal, 1e-12);
      }
    }
  }
}

TEST(GridShortestPathOracle, IntegerCostTiesAreOptimalAndDeterministic) {
  std::mt19937_64 rng(43);
  for (auto [rows, cols] : SmallShapes()) {
    for (Connectivity connectivity : kBothConnectivities) {
      const FeasibleSet paths = SimpleGridPaths(rows, cols, connectivity);
      auto oracle = MakeOk(Grid(rows, cols, connectivity), rows * cols, std::nullopt);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 10; ++instance) {
        const std::vector<double> theta = oracle_test::IntegerVector(rng, rows * cols, 0, 2);
        const auto first = ExpectMatchesBruteForce(*oracle, *ws, theta, paths, Expect::kOptimal);
        auto fresh = oracle->NewWorkspace();
        std::vector<double> again = theta;
        EXPECT_EQ(SolveDense(*oracle, *fresh, again).y, first.y);
      }
    }
  }
}

TEST(GridShortestPathOracle, SingleCellIsItsOwnPath) {
  auto oracle = MakeOk(Grid(1, 1, Connectivity::kEight), 1, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {-2.0};
  const auto solved = SolveDense(*oracle, *ws, theta);
  EXPECT_EQ(solved.y, (std::vector<double>{1.0}));
  EXPECT_EQ(solved.clamped, 1);
  EXPECT_EQ(theta[0], 0.0);
}

TEST(GridShortestPathOracle, LinesTakeEveryCell) {
  std::mt19937_64 rng(44);
  for (auto [rows, cols] : {std::pair{1, 9}, std::pair{9, 1}}) {
    for (Connectivity connectivity : kBothConnectivities) {
      auto oracle = MakeOk(Grid(rows, cols, connectivity), 9, std::nullopt);
      auto ws = oracle->NewWorkspace();
      std::vector<double> theta = oracle_test::UniformVector(rng, 9, 0.0, 1.0);
      EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, std::vector<double>(9, 1.0));
    }
  }
}

TEST(GridShortestPathOracle, DiagonalsOnlyWithEightNeighbours) {
  // 3×3, cheap diagonal.
  const std::vector<double> theta = {1, 9, 9,  //
                                     9, 1, 9,  //
                                     9, 9, 1};
  auto eight = MakeOk(Grid(3, 3, Connectivity::kEight), 9, std::nullopt);
  auto ws = eight->NewWorkspace();
  std::vector<double> copy = theta;
  EXPECT_EQ(SolveDense(*eight, *ws, copy).y, (std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  auto four = MakeOk(Grid(3, 3, Connectivity::kFour), 9, std::nullopt);
  auto ws4 = four->NewWorkspace();
  const auto solved = SolveDense(*four, *ws4, copy);
  EXPECT_EQ(oracle_test::Dot(solved.y, theta), 21.0);  // 1 + 9 + 1 + 9 + 1
  EXPECT_EQ(std::count(solved.y.begin(), solved.y.end(), 1.0), 5);
}

TEST(GridShortestPathOracle, EqualCostPathsResolveDeterministically) {
  // All costs equal: the row-then-column order of the heap makes the path fixed.
  auto oracle = MakeOk(Grid(2, 2, Connectivity::kFour), 4, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1, 1, 1, 1};
  // Cell 1 (lower index) is settled before cell 2 and relaxes cell 3 first.
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 0, 1}));
}

// Bellman–Ford on vertex costs: an independent reference for larger grids.
double ReferenceShortestPath(int rows, int cols, Connectivity connectivity,
                             const std::vector<double>& theta) {
  const int n = rows * cols;
  std::vector<double> dist(n, std::numeric_limits<double>::infinity());
  dist[0] = theta[0];
  for (bool changed = true; changed;) {
    changed = false;
    for (int u = 0; u < n; ++u) {
      for (int v : Neighbours(rows, cols, connectivity, u)) {
        if (dist[u] + theta[v] < dist[v]) {
          dist[v] = dist[u] + theta[v];
          changed = true;
        }
      }
    }
  }
  return dist[n - 1];
}

TEST(GridShortestPathOracle, LargeGridsMatchBellmanFord) {
  std::mt19937_64 rng(45);
  for (auto [rows, cols] : {std::pair{12, 12}, std::pair{7, 30}, std::pair{30, 5}}) {
    for (Connectivity connectivity : kBothConnectivities) {
      auto oracle = MakeOk(Grid(rows, cols, connectivity), rows * cols, std::nullopt);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 5; ++instance) {
        std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, 0.0, 10.0);
        const auto solved = SolveDense(*oracle, *ws, theta);
        EXPECT_NEAR(oracle_test::Dot(solved.y, theta),
                    ReferenceShortestPath(rows, cols, connectivity, theta), 1e-9);
        EXPECT_EQ(solved.y.front(), 1.0);
        EXPECT_EQ(solved.y.back(), 1.0);
      }
    }
  }
}

// The rule the header states, written the textbook way: a binary heap of (distance, cell)
// pairs with lazy deletion, every neighbour relaxed in increasing cell order, a predecessor
// changed only by a strict improvement (a first relaxation always counts). Returns the path's cells, sorted.
std::vector<int> TextbookDijkstraPath(int rows, int cols, Connectivity connectivity,
                                      const std::vector<double>& theta) {
  const int n = rows * cols;
  std::vector<double> dist(n, std::numeric_limits<double>::infinity());
  std::vector<int> pred(n, -1);
  std::vector<bool> done(n, false), reached(n, false);
  using Entry = std::pair<double, int>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  dist[0] = theta[0];
  reached[0] = true;
  heap.push({dist[0], 0});
  while (!heap.empty()) {
    const auto [d, u] = heap.top();
    heap.pop();
    if (done[u]) continue;
    done[u] = true;
    if (u == n - 1) break;
    for (int v : Neighbours(rows, cols, connectivity, u)) {  // increasing cell order
      if (!done[v] && (!reached[v] || d + theta[v] < dist[v])) {  // +∞ costs reach too
        reached[v] = true;
        dist[v] = d + theta[v];
        pred[v] = u;
        heap.push({dist[v], v});
      }
    }
  }
  std::vector<int> path;
  for (int v = n - 1; v >= 0; v = pred[v]) path.push_back(v);
  std::sort(path.begin(), path.end());
  return path;
}

TEST(GridShortestPathOracle, PathIsTheTextbookDijkstrasEvenUnderTies) {
  // Exact ties decide the path through the pop order: costs from {0, 1, 2} (many zero-cost
  // cells, so equal distances pop in chains), from {0.5, 1} (equal sums along different
  // paths), and continuous costs; grids wider than 8 cells exercise every word boundary of
  // the reached-bit masks, −0 and +∞ the key encoding.
  std::mt19937_64 rng(47);
  const double inf = std::numeric_limits<double>::infinity();
  for (auto [rows, cols] : {std::pair{12, 12}, std::pair{5, 17}, std::pair{30, 30},
                            std::pair{2, 63}, std::pair{9, 70}}) {
    for (Connectivity connectivity : kBothConnectivities) {
      auto oracle = MakeOk(Grid(rows, cols, connectivity), rows * cols, std::nullopt);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 24; ++instance) {
        const size_t d = static_cast<size_t>(rows) * static_cast<size_t>(cols);
        std::vector<double> theta;
        switch (instance % 4) {
          case 0: theta = oracle_test::IntegerVector(rng, d, 0, 2); break;
          case 1:
            theta = oracle_test::IntegerVector(rng, d, 1, 2);
            for (double& t : theta) t *= 0.5;
            break;
          case 2: theta = oracle_test::UniformVector(rng, d, 0.0, 1.0); break;
          default:
            theta = oracle_test::IntegerVector(rng, d, 0, 3);
            for (double& t : theta) t = t == 0.0 ? -0.0 : t == 3.0 ? inf : t;
            break;
        }
        const std::vector<int> expected = TextbookDijkstraPath(rows, cols, connectivity, theta);
        std::vector<double> copy = theta;
        const auto solved = SolveDense(*oracle, *ws, copy);
        std::vector<int> path;
        for (size_t i = 0; i < d; ++i) {
          if (solved.y[i] != 0.0) path.push_back(static_cast<int>(i));
        }
        EXPECT_EQ(path, expected) << rows << "x" << cols << " instance " << instance;
      }
    }
  }
}

// SolveBatch against Solve, lane by lane: the same y bit for bit, the same clamping, and the
// lane sweeps (not the fallback) doing the solving wherever the header says they may. Lanes
// of one batch mix cost kinds, so sweeps and fallbacks meet in one call: ties ({1, 2} and
// {½, 1} costs make equal distances everywhere, so the (distance, cell) order picks the
// predecessors), Warcraft-like terrain with noise, zero costs (from {0, 1, 2} and from
// clamping), costs too small to change a distance (1e-20 next to 1) and too large (1e300).
TEST(GridShortestPathOracle, SolveBatchIsSolveOnEachThetaAndSweepsWhereItMay) {
  std::mt19937_64 rng(83);
  const double terrain[] = {0.8, 1.2, 5.3, 7.7, 9.2};
  for (auto [rows, cols] :
       {std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 1}, std::pair{1, 9}, std::pair{12, 12},
        std::pair{5, 17}, std::pair{30, 30}, std::pair{2, 63}, std::pair{9, 70}, std::pair{64, 64},
        std::pair{65, 65}}) {
    for (Connectivity connectivity : kBothConnectivities) {
      GridShortestPathSpec spec;
      spec.rows = rows;
      spec.cols = cols;
      spec.connectivity = connectivity;
      const size_t d = static_cast<size_t>(rows) * static_cast<size_t>(cols);
      auto created =
          GridShortestPathOracle::Create(spec, static_cast<int64_t>(d), Sense::kMinimize);
      ASSERT_TRUE(created.ok()) << created.status();
      const GridShortestPathOracle& oracle = **created;
      const bool lanes = d <= GridShortestPathOracle::kMaxLaneCells;
      EXPECT_EQ(oracle.batch_width(), lanes ? 8 : 1);
      auto batch_ws = oracle.NewWorkspace();
      auto single_ws = oracle.NewWorkspace();
      for (int round = 0; round < 8; ++round) {
        const size_t n = static_cast<size_t>(round) + 1;
        std::vector<std::vector<double>> theta(n);
        std::vector<bool> may_sweep(n);
        std::vector<int> kinds(n);
        for (size_t j = 0; j < n; ++j) {
          const int kind = static_cast<int>((static_cast<size_t>(round) * 3 + j) % 8);
          kinds[j] = kind;
          std::normal_distribution<double> normal(0.0, 1.0);
          switch (kind) {
            case 0:
              theta[j].resize(d);
              for (double& t : theta[j]) t = terrain[rng() % 5] + 0.1 * normal(rng);
              break;
            case 1:
              theta[j] = oracle_test::UniformVector(rng, d, 0.5, 1.5);
              break;
            case 2:
              theta[j] = oracle_test::IntegerVector(rng, d, 1, 2);
              break;
            case 3:
              theta[j] = oracle_test::IntegerVector(rng, d, 1, 2);
              for (double& t : theta[j]) t *= 0.5;
              break;
            case 4:
              theta[j] = oracle_test::IntegerVector(rng, d, 0, 2);
              break;
            case 5:
              theta[j].resize(d);
              for (double& t : theta[j]) t = 0.5 + normal(rng);  // some clamped to 0
              break;
            case 6:
              theta[j].assign(d, 1.0);
              theta[j][d - 1] = 1e-20;
              break;
            default:
              theta[j] = oracle_test::UniformVector(rng, d, 0.5, 1.5);
              theta[j][rng() % d] = 1e300;
              break;
          }
          // The sweeps may take θ_j when every cell but the source adds something to any
          // distance (these are below 10^4, so any cost above 1e-10 does) and none is huge.
          bool ok = true;
          for (size_t i = 1; i < d; ++i) ok &= theta[j][i] > 1e-10 && theta[j][i] <= 1e290;
          may_sweep[j] = ok && theta[j][0] <= 1e290;
        }
        // Solve one by one on copies.
        std::vector<std::vector<double>> single = theta;
        int64_t single_clamped = 0;
        std::vector<SparseVector> single_y(n, SparseVector(static_cast<int64_t>(d)));
        for (size_t j = 0; j < n; ++j) {
          single_clamped += oracle.Solve(absl::MakeSpan(single[j]), *single_ws, single_y[j]);
        }
        std::vector<absl::Span<double>> spans;
        std::vector<SparseVector> batch_y(n, SparseVector(static_cast<int64_t>(d)));
        std::vector<SparseVector*> ys;
        for (size_t j = 0; j < n; ++j) {
          spans.push_back(absl::MakeSpan(theta[j]));
          ys.push_back(&batch_y[j]);
        }
        uint32_t swept = 0;
        const int64_t clamped = oracle.SolveLanes(spans, *batch_ws, ys, &swept);
        const std::string where = absl::StrCat(rows, "x", cols, " round ", round);
        EXPECT_EQ(clamped, single_clamped) << where;
        for (size_t j = 0; j < n; ++j) {
          EXPECT_EQ(theta[j], single[j]) << where << " lane " << j;
          EXPECT_EQ(batch_y[j].indices(), single_y[j].indices()) << where << " lane " << j;
          EXPECT_EQ(batch_y[j].values(), single_y[j].values()) << where << " lane " << j;
          const bool expect_swept = lanes && n >= 2 && may_sweep[j];
          EXPECT_EQ((swept >> j & 1u) != 0, expect_swept)
              << where << " lane " << j << " kind " << kinds[j];
        }
        // The same call again on the same workspace: nothing of the first call carries over.
        std::vector<SparseVector> again(n, SparseVector(static_cast<int64_t>(d)));
        std::vector<SparseVector*> again_ptrs;
        for (auto& y : again) again_ptrs.push_back(&y);
        oracle.SolveBatch(spans, *batch_ws, again_ptrs);
        for (size_t j = 0; j < n; ++j) {
          EXPECT_EQ(again[j].indices(), single_y[j].indices()) << where << " lane " << j;
        }
      }
    }
  }
}

TEST(GridShortestPathOracle, InfiniteCostsStillGiveAPath) {
  const double inf = std::numeric_limits<double>::infinity();
  auto oracle = MakeOk(Grid(1, 3, Connectivity::kEight), 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, inf, 1.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 1}));
}

TEST(GridShortestPathOracle, Metadata) {
  auto oracle = MakeOk(Grid(3, 5, Connectivity::kFour), 15, std::nullopt);
  EXPECT_EQ(oracle->name(), "grid_shortest_path");
  EXPECT_EQ(oracle->dimension(), 15);
  EXPECT_EQ(oracle->sense(), Sense::kMinimize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 15);
  EXPECT_GT(oracle->cost_per_solve(), 15.0);
}

TEST(GridShortestPathOracle, RejectsBadStructure) {
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(0, 3, Connectivity::kEight), 0, std::nullopt),
      "problem.grid_shortest_path.rows"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(3, 0, Connectivity::kEight), 0, std::nullopt),
      "problem.grid_shortest_path.cols"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(3, 4, Connectivity::kFour), 11, std::nullopt), "theta.shape"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(3, 4, Connectivity::kFour), 13, std::nullopt), "theta.shape"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(65536, 65536, Connectivity::kFour), int64_t{65536} * 65536, std::nullopt),
      "theta.shape"));
}

TEST(GridShortestPathOracle, RejectsMaximize) {
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Grid(3, 4, Connectivity::kEight), 12, Sense::kMaximize), "problem.sense"));
}

}  // namespace
}  // namespace perturbd
