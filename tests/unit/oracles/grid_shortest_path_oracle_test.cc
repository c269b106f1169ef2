#include "solvers/oracles/grid_shortest_path_oracle.h"

#include <algorithm>
#include <cstdint>
#include <limits>
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
