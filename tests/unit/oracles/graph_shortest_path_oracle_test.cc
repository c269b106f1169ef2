#include "solvers/oracles/graph_shortest_path_oracle.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
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

GraphShortestPathSpec Spec(uint32_t num_nodes, std::vector<uint32_t> sources,
                           std::vector<uint32_t> targets, uint32_t source, uint32_t target) {
  return GraphShortestPathSpec{.num_nodes = num_nodes,
                               .edge_sources = std::move(sources),
                               .edge_targets = std::move(targets),
                               .source = source,
                               .target = target};
}

std::vector<bool> ReachableFrom(const GraphShortestPathSpec& g, uint32_t start) {
  std::vector<bool> seen(g.num_nodes, false);
  std::vector<uint32_t> stack = {start};
  seen[start] = true;
  while (!stack.empty()) {
    const uint32_t u = stack.back();
    stack.pop_back();
    for (size_t e = 0; e < g.edge_sources.size(); ++e) {
      if (g.edge_sources[e] == u && !seen[g.edge_targets[e]]) {
        seen[g.edge_targets[e]] = true;
        stack.push_back(g.edge_targets[e]);
      }
    }
  }
  return seen;
}

bool HasCycle(const GraphShortestPathSpec& g) {
  for (size_t e = 0; e < g.edge_sources.size(); ++e) {
    if (ReachableFrom(g, g.edge_targets[e])[g.edge_sources[e]]) return true;
  }
  return false;
}

// Random edges (parallel edges allowed, no self-loops) and a source/target pair with the
// target reachable. A DAG orients every edge along a random node order, so node ids are not
// topologically sorted.
GraphShortestPathSpec RandomGraph(std::mt19937_64& rng, bool dag) {
  while (true) {
    const int n = oracle_test::RandomInt(rng, 2, 7);
    const int m = oracle_test::RandomInt(rng, 1, 12);
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), rng);
    GraphShortestPathSpec g;
    g.num_nodes = n;
    for (int e = 0; e < m; ++e) {
      int a = oracle_test::RandomInt(rng, 0, n - 1);
      int b = oracle_test::RandomInt(rng, 0, n - 2);
      if (b >= a) ++b;
      if (dag && a > b) std::swap(a, b);
      g.edge_sources.push_back(dag ? order[a] : a);
      g.edge_targets.push_back(dag ? order[b] : b);
    }
    if (HasCycle(g) == dag) continue;
    g.source = oracle_test::RandomInt(rng, 0, n - 1);
    const std::vector<bool> reach = ReachableFrom(g, g.source);
    std::vector<uint32_t> targets;
    for (int v = 0; v < n; ++v) {
      if (reach[v] && v != static_cast<int>(g.source)) targets.push_back(v);
    }
    if (targets.empty()) continue;
    g.target = targets[oracle_test::RandomInt(rng, 0, static_cast<int>(targets.size()) - 1)];
    return g;
  }
}

// The edge sets of all simple source→target paths.
FeasibleSet SimplePaths(const GraphShortestPathSpec& g) {
  const size_t m = g.edge_sources.size();
  FeasibleSet set;
  std::vector<double> on_path(m, 0.0);
  std::vector<bool> visited(g.num_nodes, false);
  auto dfs = [&](auto& self, uint32_t u) -> void {
    if (u == g.target) {
      set.Add(on_path);
      return;
    }
    visited[u] = true;
    for (size_t e = 0; e < m; ++e) {
      if (g.edge_sources[e] == u && !visited[g.edge_targets[e]]) {
        on_path[e] = 1.0;
        self(self, g.edge_targets[e]);
        on_path[e] = 0.0;
      }
    }
    visited[u] = false;
  };
  dfs(dfs, g.source);
  return set;
}

// The documented DAG tie rule, by brute force: the best value of every source→v path (all
// paths enumerated), then back from the target through the lowest-index edge u→v with
// best(u) + w_e = best(v), w = θ (MAXIMIZE) or −θ (MINIMIZE).
std::vector<double> LowestEdgeIndexOptimalPath(const GraphShortestPathSpec& g,
                                               const std::vector<double>& theta, Sense sense) {
  const size_t m = g.edge_sources.size();
  const double sign = sense == Sense::kMaximize ? 1.0 : -1.0;
  std::vector<std::optional<double>> best(g.num_nodes);
  auto dfs = [&](auto& self, uint32_t u, double value) -> void {
    if (!best[u] || value > *best[u]) best[u] = value;
    for (size_t e = 0; e < m; ++e) {
      if (g.edge_sources[e] == u) self(self, g.edge_targets[e], value + sign * theta[e]);
    }
  };
  dfs(dfs, g.source, 0.0);
  std::vector<double> y(m, 0.0);
  for (uint32_t v = g.target; v != g.source;) {
    size_t e = 0;
    while (!(g.edge_targets[e] == v && best[g.edge_sources[e]] &&
             *best[g.edge_sources[e]] + sign * theta[e] == *best[v])) {
      ++e;
    }
    y[e] = 1.0;
    v = g.edge_sources[e];
  }
  return y;
}

TEST(GraphShortestPathOracle, DagMatchesBruteForceInBothSenses) {
  std::mt19937_64 rng(51);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const GraphShortestPathSpec g = RandomGraph(rng, /*dag=*/true);
      const int m = static_cast<int>(g.edge_sources.size());
      auto oracle = MakeOk(g, m, sense);
      ASSERT_TRUE(static_cast<GraphShortestPathOracle&>(*oracle).is_dag());
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, m, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved = ExpectMatchesBruteForce(*oracle, *ws, theta, SimplePaths(g),
                                                  Expect::kFirstOptimal, 1e-12);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "a DAG takes any sign: nothing is clamped";
    }
  }
}

TEST(GraphShortestPathOracle, DagTiesTakeTheLowestIndexOptimalEdgeIntoEachNode) {
  std::mt19937_64 rng(52);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const GraphShortestPathSpec g = RandomGraph(rng, /*dag=*/true);
      const int m = static_cast<int>(g.edge_sources.size());
      auto oracle = MakeOk(g, m, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::IntegerVector(rng, m, -1, 1);
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, SimplePaths(g), Expect::kOptimal);
      EXPECT_EQ(solved.y, LowestEdgeIndexOptimalPath(g, theta, sense));
    }
  }
}

TEST(GraphShortestPathOracle, CyclicGraphMatchesBruteForceOnPositiveCosts) {
  std::mt19937_64 rng(53);
  for (int instance = 0; instance < 300; ++instance) {
    SCOPED_TRACE(::testing::Message() << "instance " << instance);
    const GraphShortestPathSpec g = RandomGraph(rng, /*dag=*/false);
    const int m = static_cast<int>(g.edge_sources.size());
    auto oracle = MakeOk(g, m, std::nullopt);
    ASSERT_FALSE(static_cast<GraphShortestPathOracle&>(*oracle).is_dag());
    EXPECT_EQ(oracle->sense(), Sense::kMinimize);
    auto ws = oracle->NewWorkspace();
    const auto solved =
        ExpectMatchesBruteForce(*oracle, *ws, oracle_test::UniformVector(rng, m, 0.1, 10.0),
                                SimplePaths(g), Expect::kFirstOptimal, 1e-12);
    EXPECT_EQ(solved.clamped, 0);
  }
}

TEST(GraphShortestPathOracle, CyclicGraphClampsNegativeCostsInPlace) {
  std::mt19937_64 rng(54);
  for (int instance = 0; instance < 300; ++instance) {
    SCOPED_TRACE(::testing::Message() << "instance " << instance);
    const GraphShortestPathSpec g = RandomGraph(rng, /*dag=*/false);
    const int m = static_cast<int>(g.edge_sources.size());
    auto oracle = MakeOk(g, m, Sense::kMinimize);
    auto ws = oracle->NewWorkspace();
    const std::vector<double> theta = oracle_test::UniformVector(rng, m, -3.0, 5.0);
    std::vector<double> clamped = theta;
    int64_t negatives = 0;
    for (double& x : clamped) {
      if (x < 0) {
        x = 0.0;
        ++negatives;
      }
    }
    std::vector<double> seen = theta;
    EXPECT_EQ(SolveDense(*oracle, *ws, seen).clamped, negatives);
    EXPECT_EQ(seen, clamped) << "every negative cost, on the path or not, is set to zero";
    ExpectMatchesBruteForce(*oracle, *ws, theta, SimplePaths(g), Expect::kOptimal, 1e-12);
  }
}

TEST(GraphShortestPathOracle, CyclicGraphIntegerTiesAreOptimalAndDeterministic) {
  std::mt19937_64 rng(55);
  for (int instance = 0; instance < 300; ++instance) {
    const GraphShortestPathSpec g = RandomGraph(rng, /*dag=*/false);
    const int m = static_cast<int>(g.edge_sources.size());
    auto oracle = MakeOk(g, m, std::nullopt);
    auto ws = oracle->NewWorkspace();
    const std::vector<double> theta = oracle_test::IntegerVector(rng, m, 0, 2);
    const auto first =
        ExpectMatchesBruteForce(*oracle, *ws, theta, SimplePaths(g), Expect::kOptimal);
    auto fresh = oracle->NewWorkspace();
    std::vector<double> again = theta;
    EXPECT_EQ(SolveDense(*oracle, *fresh, again).y, first.y);
  }
}

TEST(GraphShortestPathOracle, SourceEqualsTargetGivesTheEmptyPath) {
  // DAG: any sign, both senses, θ untouched.
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(Spec(3, {0, 1}, {1, 2}, 1, 1), 2, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {-1.0, 2.0};
    const auto solved = SolveDense(*oracle, *ws, theta);
    EXPECT_EQ(solved.y, (std::vector<double>{0, 0}));
    EXPECT_EQ(solved.clamped, 0);
    EXPECT_EQ(theta, (std::vector<double>{-1.0, 2.0}));
    EXPECT_EQ(oracle->max_nonzeros(), 0);
  }
  // With a cycle: still clamps (the count depends on θ alone, not on source and target).
  auto oracle = MakeOk(Spec(2, {0, 1}, {1, 0}, 0, 0), 2, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {-1.0, 2.0};
  const auto solved = SolveDense(*oracle, *ws, theta);
  EXPECT_EQ(solved.y, (std::vector<double>{0, 0}));
  EXPECT_EQ(solved.clamped, 1);
  EXPECT_EQ(theta, (std::vector<double>{0.0, 2.0}));
}

TEST(GraphShortestPathOracle, ParallelEdgesAreSeparateCoordinates) {
  // 0 ⇉ 1 → 2, and the same plus a back edge 2 → 0 (Dijkstra).
  const auto dag = Spec(3, {0, 0, 1}, {1, 1, 2}, 0, 2);
  const auto cyclic = Spec(3, {0, 0, 1, 2}, {1, 1, 2, 0}, 0, 2);
  for (const auto& g : {dag, cyclic}) {
    const int m = static_cast<int>(g.edge_sources.size());
    auto oracle = MakeOk(g, m, std::nullopt);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {3.0, 2.0, 1.0, 1.0};
    theta.resize(m);
    std::vector<double> expected = {0, 1, 1, 0};
    expected.resize(m);
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected);
    theta[0] = 2.0;  // a tie: the lower edge index
    expected[0] = 1.0;
    expected[1] = 0.0;
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected);
  }
  auto longest = MakeOk(dag, 3, Sense::kMaximize);
  auto ws = longest->NewWorkspace();
  std::vector<double> theta = {3.0, 2.0, 1.0};
  EXPECT_EQ(SolveDense(*longest, *ws, theta).y, (std::vector<double>{1, 0, 1}));
}

TEST(GraphShortestPathOracle, DagWithNegativeCostsTakesTheLongerCheaperPath) {
  // 0 → 3 directly (cost 1) or 0 → 1 → 2 → 3 (cost 2 − 4 + 2 = 0). Ids not in topological
  // order: 2 → 1 is the middle edge.
  const auto g = Spec(4, {0, 0, 2, 1}, {3, 2, 1, 3}, 0, 3);
  auto min = MakeOk(g, 4, std::nullopt);
  auto ws = min->NewWorkspace();
  std::vector<double> theta = {1.0, 2.0, -4.0, 2.0};
  auto solved = SolveDense(*min, *ws, theta);
  EXPECT_EQ(solved.y, (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(solved.clamped, 0);
  auto max = MakeOk(g, 4, Sense::kMaximize);
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{1, 0, 0, 0}));
}

TEST(GraphShortestPathOracle, MaximizeNeedsTheWholeGraphAcyclic) {
  // The cycle 2 ⇄ 3 is off every 0 → 1 path, but the graph is not a DAG.
  const auto g = Spec(4, {0, 2, 3}, {1, 3, 2}, 0, 1);
  EXPECT_TRUE(
      oracle_test::IsInvalidArgumentNaming(MakeOracle(g, 3, Sense::kMaximize), "problem.sense"));
  auto min = MakeOk(g, 3, std::nullopt);
  EXPECT_FALSE(static_cast<GraphShortestPathOracle&>(*min).is_dag());
  EXPECT_EQ(min->max_nonzeros(), 1);
}

TEST(GraphShortestPathOracle, NodeIdsUpToUint32MaxUseMemoryOfTheEdges) {
  const uint32_t big = 4'000'000'000u;
  auto oracle = MakeOk(Spec(big + 1, {0, big, 7}, {big, 5, 0}, 0, 5), 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, 1.0, 1.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 0}));
}

// Bellman–Ford from the source: an independent reference (costs without negative cycles).
double ReferenceShortestPath(const GraphShortestPathSpec& g, const std::vector<double>& cost) {
  std::vector<double> dist(g.num_nodes, std::numeric_limits<double>::infinity());
  dist[g.source] = 0.0;
  for (uint32_t round = 0; round < g.num_nodes; ++round) {
    for (size_t e = 0; e < cost.size(); ++e) {
      dist[g.edge_targets[e]] =
          std::min(dist[g.edge_targets[e]], dist[g.edge_sources[e]] + cost[e]);
    }
  }
  return dist[g.target];
}

TEST(GraphShortestPathOracle, LargeGraphsMatchBellmanFord) {
  std::mt19937_64 rng(56);
  for (bool dag : {true, false}) {
    for (int instance = 0; instance < 5; ++instance) {
      GraphShortestPathSpec g;
      g.num_nodes = 200;
      for (int e = 0; e < 1500; ++e) {
        int a = oracle_test::RandomInt(rng, 0, 199);
        int b = oracle_test::RandomInt(rng, 0, 198);
        if (b >= a) ++b;
        if (dag && a > b) std::swap(a, b);
        g.edge_sources.push_back(a);
        g.edge_targets.push_back(b);
      }
      g.source = 0;
      g.target = 199;
      ASSERT_TRUE(ReachableFrom(g, 0)[199]);
      const int m = static_cast<int>(g.edge_sources.size());
      for (Sense sense : oracle_test::kBothSenses) {
        if (!dag && sense == Sense::kMaximize) continue;
        auto oracle = MakeOk(g, m, sense);
        auto ws = oracle->NewWorkspace();
        std::vector<double> theta = oracle_test::UniformVector(rng, m, dag ? -5.0 : 0.0, 10.0);
        const double optimum = sense == Sense::kMinimize
                                   ? ReferenceShortestPath(g, theta)
                                   : -ReferenceShortestPath(g, oracle_test::Negated(theta));
        const auto solved = SolveDense(*oracle, *ws, theta);
        EXPECT_NEAR(oracle_test::Dot(solved.y, theta), optimum, 1e-9);
      }
    }
  }
}

TEST(GraphShortestPathOracle, Metadata) {
  auto oracle = MakeOk(Spec(5, {0, 1, 0, 3}, {1, 2, 2, 4}, 0, 2), 4, std::nullopt);
  EXPECT_EQ(oracle->name(), "graph_shortest_path");
  EXPECT_EQ(oracle->dimension(), 4);
  EXPECT_EQ(oracle->sense(), Sense::kMinimize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 2);  // nodes {0, 1, 2} lie on 0 → 2 paths
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
  EXPECT_TRUE(static_cast<GraphShortestPathOracle&>(*oracle).is_dag());
}

TEST(GraphShortestPathOracle, RejectsBadStructure) {
  using oracle_test::IsInvalidArgumentNaming;
  const std::nullopt_t natural = std::nullopt;
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(0, {0}, {1}, 0, 1), 1, natural),
                                      "problem.graph_shortest_path.num_nodes"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1}, 0, 1), 2, natural),
                                      "problem.graph_shortest_path.edge_targets"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {}, {}, 0, 0), 0, natural),
                                      "problem.graph_shortest_path.edge_sources"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 3}, {1, 2}, 0, 1), 2, natural),
                                      "problem.graph_shortest_path.edge_sources[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 9}, 0, 1), 2, natural),
                                      "problem.graph_shortest_path.edge_targets[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 2}, {1, 2}, 0, 1), 2, natural),
                                      "problem.graph_shortest_path.edge_targets[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0}, {1}, 3, 1), 1, natural),
                                      "problem.graph_shortest_path.source"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0}, {1}, 0, 3), 1, natural),
                                      "problem.graph_shortest_path.target"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 2}, 0, 2), 3, natural),
                                      "theta.shape"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 2}, 0, 2), 1, natural),
                                      "theta.shape"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 2}, 2, 0), 2, natural),
                                      "problem.graph_shortest_path.target"));
  EXPECT_TRUE(IsInvalidArgumentNaming(
      MakeOracle(Spec(3, {0, 1, 2}, {1, 0, 1}, 0, 2), 3, natural),  // cyclic, unreachable
      "problem.graph_shortest_path.target"));
}

TEST(GraphShortestPathOracle, SelfLoopMessageSaysSelfLoop) {
  const auto result = MakeOracle(Spec(3, {0, 2}, {1, 2}, 0, 1), 2, std::nullopt);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("self-loop"), absl::string_view::npos);
}

}  // namespace
}  // namespace perturbd
