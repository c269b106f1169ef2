#include "solvers/oracles/oracle_factory.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/argmax_oracle.h"
#include "solvers/oracles/assignment_oracle.h"
#include "solvers/oracles/graph_shortest_path_oracle.h"
#include "solvers/oracles/grid_shortest_path_oracle.h"
#include "solvers/oracles/knapsack_oracle.h"
#include "solvers/oracles/linear_program_oracle.h"
#include "solvers/oracles/ranking_oracle.h"
#include "solvers/oracles/spanning_tree_oracle.h"
#include "solvers/oracles/threshold_oracle.h"
#include "solvers/oracles/top_k_oracle.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::MakeOk;

const GraphShortestPathSpec kGraph = {
    .num_nodes = 3, .edge_sources = {0, 1, 0}, .edge_targets = {1, 2, 2}, .source = 0, .target = 2};
const GridShortestPathSpec kGrid = {.rows = 2, .cols = 3};
const AssignmentSpec kAssignment = {.rows = 2, .cols = 3};
const SpanningTreeSpec kTree = {
    .num_nodes = 3, .edge_sources = {0, 1, 2}, .edge_targets = {1, 2, 0}};
const KnapsackSpec kKnapsack = {.weights = {2, 3, 4, 5}, .capacity = 6};
// max ⟨θ, y⟩ over y ∈ [0, 1]^3 with y0 + y1 + y2 ≤ 2: integral vertices, bounded for any θ.
const LinearProgramSpec kLinearProgram = {.num_variables = 3,
                                          .row_index = {0, 0, 0},
                                          .column_index = {0, 1, 2},
                                          .coefficient = {1.0, 1.0, 1.0},
                                          .row_lower = {-std::numeric_limits<double>::infinity()},
                                          .row_upper = {2.0},
                                          .variable_upper = {1.0, 1.0, 1.0}};
LinearProgramSpec IntegerLinearProgram() {
  LinearProgramSpec spec = kLinearProgram;
  spec.integer = {true, true, true};
  return spec;
}

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
      {kAssignment, 6, "assignment", Sense::kMaximize, 6},
      {kTree, 3, "spanning_tree", Sense::kMinimize, 3},
      {kKnapsack, 4, "knapsack", Sense::kMaximize, 4},
      {kLinearProgram, 3, "linear_program", Sense::kMaximize, 3},
      {IntegerLinearProgram(), 3, "linear_program", Sense::kMaximize, 3},
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
  EXPECT_NE(dynamic_cast<AssignmentOracle*>(MakeOk(kAssignment, 6, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<SpanningTreeOracle*>(MakeOk(kTree, 3, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<KnapsackOracle*>(MakeOk(kKnapsack, 4, std::nullopt).get()), nullptr);
  EXPECT_NE(dynamic_cast<LinearProgramOracle*>(MakeOk(kLinearProgram, 3, std::nullopt).get()),
            nullptr);
}

// SolveChecked: the default is Solve (never fails); only linear_program can fail.
TEST(OracleFactory, SolveCheckedAgreesWithSolve) {
  for (const Case& c : AllOracles()) {
    SCOPED_TRACE(c.name);
    auto oracle = MakeOk(c.spec, c.dimension, std::nullopt);
    EXPECT_EQ(oracle->can_fail(), c.name == "linear_program");
    auto ws = oracle->NewWorkspace();
    std::mt19937_64 rng(62);
    for (int i = 0; i < 20; ++i) {
      std::vector<double> theta = oracle_test::UniformVector(rng, c.dimension, -1.0, 1.0);
      std::vector<double> copy = theta;
      SparseVector y(c.dimension), checked(c.dimension);
      const int64_t clamped = oracle->Solve(absl::MakeSpan(theta), *ws, y);
      absl::StatusOr<int64_t> result = oracle->SolveChecked(absl::MakeSpan(copy), *ws, checked);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(*result, clamped);
      EXPECT_EQ(std::vector<int32_t>(checked.indices().begin(), checked.indices().end()),
                std::vector<int32_t>(y.indices().begin(), y.indices().end()));
      EXPECT_EQ(std::vector<double>(checked.values().begin(), checked.values().end()),
                std::vector<double>(y.values().begin(), y.values().end()));
      ws->Reset();  // a no-op but for linear_program
    }
  }
}

TEST(OracleFactory, ExplicitSenseOverridesTheNaturalOne) {
  EXPECT_EQ(MakeOk(ArgmaxSpec{}, 3, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(RankingSpec{}, 3, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(kGraph, 3, Sense::kMaximize)->sense(), Sense::kMaximize);  // a DAG
  EXPECT_EQ(MakeOk(kTree, 3, Sense::kMaximize)->sense(), Sense::kMaximize);
  EXPECT_EQ(MakeOk(kAssignment, 6, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(kKnapsack, 4, Sense::kMinimize)->sense(), Sense::kMinimize);
  EXPECT_EQ(MakeOk(kLinearProgram, 3, Sense::kMinimize)->sense(), Sense::kMinimize);
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
