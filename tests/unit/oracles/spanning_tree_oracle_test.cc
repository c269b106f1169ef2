#include "solvers/oracles/spanning_tree_oracle.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
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

SpanningTreeSpec Spec(uint32_t num_nodes, std::vector<uint32_t> sources,
                      std::vector<uint32_t> targets) {
  return SpanningTreeSpec{.num_nodes = num_nodes,
                          .edge_sources = std::move(sources),
                          .edge_targets = std::move(targets)};
}

// Random multigraph without self-loops, often disconnected; node ids need not all be used.
SpanningTreeSpec RandomGraph(std::mt19937_64& rng, int max_nodes, int max_edges) {
  const int n = oracle_test::RandomInt(rng, 2, max_nodes);
  const int m = oracle_test::RandomInt(rng, 1, max_edges);
  SpanningTreeSpec g;
  g.num_nodes = n;
  for (int e = 0; e < m; ++e) {
    const int a = oracle_test::RandomInt(rng, 0, n - 1);
    int b = oracle_test::RandomInt(rng, 0, n - 2);
    if (b >= a) ++b;
    g.edge_sources.push_back(a);
    g.edge_targets.push_back(b);
  }
  return g;
}

// Number of edges of the largest forest within the edge subset `mask` (V − c over the touched
// nodes), and whether the subset itself is a forest.
struct ForestInfo {
  int rank = 0;
  bool acyclic = true;
};
ForestInfo Rank(const SpanningTreeSpec& g, uint32_t mask) {
  std::vector<int> parent(g.num_nodes);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int v) {
    while (parent[v] != v) v = parent[v];
    return v;
  };
  ForestInfo info;
  for (size_t e = 0; e < g.edge_sources.size(); ++e) {
    if (!(mask & (1u << e))) continue;
    const int a = find(g.edge_sources[e]);
    const int b = find(g.edge_targets[e]);
    if (a == b) {
      info.acyclic = false;
    } else {
      parent[a] = b;
      ++info.rank;
    }
  }
  return info;
}

// Every spanning forest (acyclic edge subsets with V − c edges), by subset enumeration.
FeasibleSet SpanningForests(const SpanningTreeSpec& g) {
  const size_t m = g.edge_sources.size();
  const int full = Rank(g, (1u << m) - 1).rank;
  FeasibleSet set;
  for (uint32_t mask = 0; mask < (1u << m); ++mask) {
    if (__builtin_popcount(mask) != full) continue;
    if (!Rank(g, mask).acyclic) continue;
    std::vector<double> y(m, 0.0);
    for (size_t e = 0; e < m; ++e) y[e] = (mask >> e) & 1;
    set.Add(y);
  }
  return set;
}

TEST(SpanningTreeOracle, MatchesBruteForceInBothSenses) {
  std::mt19937_64 rng(91);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 400; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const SpanningTreeSpec g = RandomGraph(rng, 6, 11);
      const int m = static_cast<int>(g.edge_sources.size());
      auto oracle = MakeOk(g, m, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, m, -5.0, 5.0);
      const FeasibleSet forests = SpanningForests(g);
      EXPECT_EQ(oracle->max_nonzeros(),
                static_cast<int64_t>(std::count(forests[0].begin(), forests[0].end(), 1.0)));
      std::vector<double> seen = theta;
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, forests, Expect::kFirstOptimal, 1e-12);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

// Ties go to the lower edge index: the result is the unique optimum of θ_e ± δ·e (δ > 0 tiny;
// + for MINIMIZE, − for MAXIMIZE), which brute force finds without ties.
TEST(SpanningTreeOracle, TiesGoToTheLowerEdgeIndex) {
  std::mt19937_64 rng(92);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 400; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const SpanningTreeSpec g = RandomGraph(rng, 6, 11);
      const int m = static_cast<int>(g.edge_sources.size());
      auto oracle = MakeOk(g, m, sense);
      auto ws = oracle->NewWorkspace();
      std::vector<double> theta = oracle_test::IntegerVector(rng, m, -1, 1);
      std::vector<double> tilted = theta;
      for (int e = 0; e < m; ++e) tilted[e] += (sense == Sense::kMinimize ? 1e-6 : -1e-6) * e;
      const FeasibleSet forests = SpanningForests(g);
      const std::vector<double> expected = forests[forests.Best(tilted, sense).first];
      const auto solved = ExpectMatchesBruteForce(*oracle, *ws, theta, forests, Expect::kOptimal);
      EXPECT_EQ(solved.y, expected);
    }
  }
}

TEST(SpanningTreeOracle, DisconnectedGraphGivesASpanningForest) {
  // Components {0, 1, 2} (a triangle) and {5, 7} (two parallel edges); nodes 3, 4, 6 unused.
  const auto g = Spec(8, {0, 1, 2, 5, 7}, {1, 2, 0, 7, 5});
  auto oracle = MakeOk(g, 5, std::nullopt);
  EXPECT_EQ(oracle->sense(), Sense::kMinimize);
  EXPECT_EQ(static_cast<SpanningTreeOracle&>(*oracle).num_components(), 2);
  EXPECT_EQ(oracle->max_nonzeros(), 3);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, 3.0, 2.0, 5.0, 4.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 0, 1, 0, 1}));
  auto max = MakeOk(g, 5, Sense::kMaximize);
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{0, 1, 1, 1, 0}));
}

TEST(SpanningTreeOracle, ParallelEdgesAreSeparateCoordinates) {
  auto oracle = MakeOk(Spec(2, {0, 1, 0}, {1, 0, 1}), 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {2.0, 1.0, 3.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 1, 0}));
  theta = {1.0, 1.0, 1.0};  // a tie: the lowest index
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 0, 0}));
}

TEST(SpanningTreeOracle, SingleEdgeIsAlwaysChosen) {
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(Spec(2, {1}, {0}), 1, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {-4.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1}));
  }
}

TEST(SpanningTreeOracle, NanWeightsSortLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(Spec(3, {0, 1, 0}, {1, 2, 2}), 3, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {nan, 1.0, 2.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 1, 1}));
  }
}

TEST(SpanningTreeOracle, NodeIdsUpToUint32MaxUseMemoryOfTheEdges) {
  const uint32_t big = 4'000'000'000u;
  auto oracle = MakeOk(Spec(big + 1, {0, big, 7}, {big, 7, 0}), 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, 2.0, 3.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 0}));
}

// Prim on the dense weight matrix (the best edge per pair): an independent reference value.
double PrimValue(int n, const SpanningTreeSpec& g, const std::vector<double>& theta, Sense sense) {
  const double sign = sense == Sense::kMinimize ? 1.0 : -1.0;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> w(static_cast<size_t>(n) * n, inf);
  for (size_t e = 0; e < theta.size(); ++e) {
    const size_t a = g.edge_sources[e], b = g.edge_targets[e];
    w[a * n + b] = w[b * n + a] = std::min(w[a * n + b], sign * theta[e]);
  }
  std::vector<double> dist(n, inf);
  std::vector<bool> in(n, false);
  dist[0] = 0.0;
  double total = 0.0;
  for (int step = 0; step < n; ++step) {
    int u = -1;
    for (int v = 0; v < n; ++v) {
      if (!in[v] && (u < 0 || dist[v] < dist[u])) u = v;
    }
    in[u] = true;
    total += dist[u];
    for (int v = 0; v < n; ++v) {
      if (!in[v]) dist[v] = std::min(dist[v], w[static_cast<size_t>(u) * n + v]);
    }
  }
  return sign * total;
}

TEST(SpanningTreeOracle, LargeConnectedGraphsMatchPrim) {
  std::mt19937_64 rng(93);
  for (int instance = 0; instance < 5; ++instance) {
    const int n = 150;
    SpanningTreeSpec g;
    g.num_nodes = n;
    for (int v = 1; v < n; ++v) {  // a random tree keeps it connected
      g.edge_sources.push_back(v);
      g.edge_targets.push_back(oracle_test::RandomInt(rng, 0, v - 1));
    }
    for (int e = 0; e < 2000; ++e) {
      const int a = oracle_test::RandomInt(rng, 0, n - 1);
      int b = oracle_test::RandomInt(rng, 0, n - 2);
      if (b >= a) ++b;
      g.edge_sources.push_back(a);
      g.edge_targets.push_back(b);
    }
    const int m = static_cast<int>(g.edge_sources.size());
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(g, m, sense);
      EXPECT_EQ(oracle->max_nonzeros(), n - 1);
      auto ws = oracle->NewWorkspace();
      std::vector<double> theta = oracle_test::UniformVector(rng, m, -5.0, 10.0);
      const auto solved = SolveDense(*oracle, *ws, theta);
      EXPECT_NEAR(oracle_test::Dot(solved.y, theta), PrimValue(n, g, theta, sense), 1e-9);
    }
  }
}

// Kruskal written plainly: edges stably sorted by the double ±θ (NaN last), so ties keep the
// lower index; the reference for graphs too large for brute force.
std::vector<double> ReferenceKruskal(const SpanningTreeSpec& g, const std::vector<double>& theta,
                                     Sense sense) {
  const size_t m = theta.size();
  std::vector<double> key(m);
  for (size_t e = 0; e < m; ++e) {
    key[e] = std::isnan(theta[e]) ? std::numeric_limits<double>::infinity()
                                  : (sense == Sense::kMinimize ? theta[e] : -theta[e]);
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
  std::vector<uint32_t> parent(g.num_nodes);
  std::iota(parent.begin(), parent.end(), 0u);
  auto find = [&](uint32_t v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  std::vector<double> y(m, 0.0);
  for (size_t e : order) {
    const uint32_t a = find(g.edge_sources[e]), b = find(g.edge_targets[e]);
    if (a != b) {
      parent[a] = b;
      y[e] = 1.0;
    }
  }
  return y;
}

// From kRadixSortMinEdges edges on the sort is a radix sort on the bits of ±θ: it must order
// exactly as the doubles do, ties (−0 = +0 included) by edge index, NaN last.
TEST(SpanningTreeOracle, LargeGraphsMatchAPlainKruskalExactlyWithTiesAndSpecialValues) {
  std::mt19937_64 rng(94);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int instance = 0; instance < 40; ++instance) {
    SCOPED_TRACE(::testing::Message() << "instance " << instance);
    const SpanningTreeSpec g = RandomGraph(rng, 60, 1200);
    const int m = static_cast<int>(g.edge_sources.size());
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(g, m, sense);
      auto ws = oracle->NewWorkspace();
      // Few distinct values (many ties), both zeros, NaN, infinities and tiny/huge magnitudes.
      const double palette[] = {-1.0,
                                0.0,
                                -0.0,
                                1.0,
                                2.5,
                                nan,
                                -1e300,
                                1e-300,
                                -1e-300,
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity()};
      std::vector<double> theta(m);
      for (double& t : theta) t = palette[oracle_test::RandomInt(rng, 0, 10)];
      if (instance % 2 == 1) theta = oracle_test::IntegerVector(rng, m, -3, 3);
      std::vector<double> copy = theta;
      EXPECT_EQ(SolveDense(*oracle, *ws, copy).y, ReferenceKruskal(g, theta, sense));
    }
  }
}

TEST(SpanningTreeOracle, Metadata) {
  auto oracle = MakeOk(Spec(4, {0, 1, 2, 0}, {1, 2, 0, 3}), 4, std::nullopt);
  EXPECT_EQ(oracle->name(), "spanning_tree");
  EXPECT_EQ(oracle->dimension(), 4);
  EXPECT_EQ(oracle->sense(), Sense::kMinimize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 3);
  EXPECT_EQ(static_cast<SpanningTreeOracle&>(*oracle).num_components(), 1);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(SpanningTreeOracle, RejectsBadStructure) {
  using oracle_test::IsInvalidArgumentNaming;
  const std::nullopt_t natural = std::nullopt;
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(0, {0}, {1}), 1, natural),
                                      "problem.spanning_tree.num_nodes"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1}), 2, natural),
                                      "problem.spanning_tree.edge_targets"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {}, {}), 0, natural),
                                      "problem.spanning_tree.edge_sources"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(1, {}, {}), 0, natural),
                                      "problem.spanning_tree.edge_sources"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 3}, {1, 2}), 2, natural),
                                      "problem.spanning_tree.edge_sources[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 9}), 2, natural),
                                      "problem.spanning_tree.edge_targets[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 2}, {1, 2}), 2, natural),
                                      "problem.spanning_tree.edge_targets[1]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(1, {0}, {0}), 1, natural),
                                      "problem.spanning_tree.edge_targets[0]"));
  EXPECT_TRUE(
      IsInvalidArgumentNaming(MakeOracle(Spec(3, {0, 1}, {1, 2}), 3, natural), "theta.shape"));
}

}  // namespace
}  // namespace perturbd
