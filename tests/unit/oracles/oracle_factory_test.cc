#include "solvers/oracles/oracle_factory.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/argmax_oracle.h"
#include "solvers/oracles/graph_shortest_path_oracle.h"
#include "solvers/oracles/grid_shortest_path_oracle.h"
#include "solvers/oracles/ranking_oracle.h"
#include "solvers/oracles/threshold_oracle.h"
#include "solvers/oracles/top_k_oracle.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::MakeOk;

const GraphShortestPathSpec kGraph = {
    .num_nodes = 3, .edge_sources = {0, 1, 0}, .edge_targets = {1, 2, 2}, .source = 0, .target = 2};
const GridShortestPathSpec kGrid = {.rows = 2, .cols = 3};

struct Case {
  OracleSpec spec;
  int64_t dimension;
  absl::string_view name;
  Sense natural;
  std::optional<int64_t> structural;
};

std::vector<Case> AllOracles() {
  return {
      {ArgmaxSpec{}, 4, "argmax", Sense::kMaximize, std::nullopt},
      {TopKSpec{.k = 2}, 4, "top_k", Sense::kMaximize, std::nullopt},
      {ThresholdSpec{}, 4, "threshold", Sense::kMaximize, std::nullopt},
      {RankingSpec{}, 4, "ranking", Sense::kMaximize, std::nullopt},
      {kGrid, 6, "grid_shortest_path", Sense::kMinimize, 6},
      {kGraph, 3, "graph_shortest_path", Sense::kMinimize, 3},
  };
}

TEST(OracleFactory, NamesSensesAndDimensions) {
  for (const Case& c : AllOracles()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(OracleName(c.spec), c.name);
    EXPECT_EQ(NaturalSense(c.spec), c.natural);
    EXPECT_EQ(StructuralDimension(c.spec), c.structural);
    auto oracle = MakeOk(c.spec, c.dimension, std::nullopt);
    EXPECT_EQ(oracle->name(), c.name);
    EXPECT_EQ(oracle->sense(), c.natural);
    EXPECT_EQ(oracle->dimension(), c.dimension);
    EXPECT_GT(oracle->cost_per_solve(), 0.0);
    EXPECT_GE(oracle->max_nonzeros(), 1);
    EXPECT_LE(oracle->max_nonzeros(), c.dimension);
  }
}

TEST(OracleFactory, BuildsTheMatchingClass) {
  EXPECT_NE(dynamic_cast<ArgmaxOracle*>(MakeOk(ArgmaxSpec{}, 3, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<TopKOracle*>(MakeOk(TopKSpec{.k = 1}, 3, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<ThresholdOracle*>(MakeOk(ThresholdSpec{}, 3, std::nullopt).get()),
            nullptr);
  EXPECT_NE(dynamic_cast<RankingOracle*>(MakeOk(RankingSpec{}, 3, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<GridShortestPathOracle*>(MakeOk(kGrid, 6, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<GraphShortestPathOracle*>(MakeOk(kGraph, 3, std::nullopt).get()), nullptr);
}

TEST(OracleFactory, ExplicitSenseOverridesTheNaturalOne) {
  EXPECT_EQ(MakeOk(ArgmaxSpec{}, 3, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(RankingSpec{}, 3, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(kGraph, 3, Sense::kMaximize)->sense(), Sense::kMaximize);  // a DAG
}

TEST(OracleFactory, EveryOracleRejectsAnEmptyTheta) {
  for (const Case& c : AllOracles()) {
    EXPECT_TRUE(
        oracle_test::IsInvalidArgumentNaming(MakeOracle(c.spec, 0, std::nullopt), "theta.shape"))
        << c.name;
  }
}

TEST(OracleFactory, StructuralDimensionDoesNotOverflow) {
  EXPECT_EQ(StructuralDimension(GridShortestPathSpec{.rows = 4'000'000'000u, .cols = 3}),
            int64_t{12'000'000'000});
}

// One oracle, shared by threads that each own a workspace, gives every thread the answer a
// single thread gets (Solve is const and keeps no state in the oracle).
TEST(OracleFactory, OneOracleServesManyThreads) {
  for (const Case& c : AllOracles()) {
    SCOPED_TRACE(c.name);
    auto oracle = MakeOk(c.spec, c.dimension, std::nullopt);
    std::mt19937_64 rng(61);
    std::vector<std::vector<double>> thetas;
    for (int i = 0; i < 200; ++i) {
      thetas.push_back(oracle_test::UniformVector(rng, c.dimension, 0.0, 1.0));
    }
    std::vector<std::vector<double>> expected;
    {
      auto ws = oracle->NewWorkspace();
      for (std::vector<double> theta : thetas) {
        expected.push_back(oracle_test::SolveDense(*oracle, *ws, theta).y);
      }
    }
    std::vector<std::vector<std::vector<double>>> got(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        auto ws = oracle->NewWorkspace();
        SparseVector y(oracle->dimension());
        std::vector<double> dense(oracle->dimension());
        for (int round = 0; round < 20; ++round) {
          got[t].clear();
          for (std::vector<double> theta : thetas) {
            oracle->Solve(absl::MakeSpan(theta), *ws, y);
            y.ToDense(absl::MakeSpan(dense));
            got[t].push_back(dense);
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (int t = 0; t < 4; ++t) EXPECT_EQ(got[t], expected) << "thread " << t;
  }
}

}  // namespace
}  // namespace perturbd
