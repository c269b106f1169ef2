#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <random>
#include <utility>
#include <vector>

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
