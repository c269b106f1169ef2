#include "solvers/oracles/linear_program_oracle.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/assignment_oracle.h"
#include "solvers/oracles/graph_shortest_path_oracle.h"
#include "solvers/oracles/knapsack_oracle.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::MakeOk;
using oracle_test::SolveDense;

constexpr double kInf = std::numeric_limits<double>::infinity();

// A dense LP for the tests: rows × n matrix, bounds, integrality.
struct DenseLp {
  int n = 0;
  std::vector<std::vector<double>> a;  // rows of A
  std::vector<double> row_lower, row_upper, lower, upper;
  std::vector<bool> integer;

  LinearProgramSpec ToSpec() const {
    LinearProgramSpec spec;
    spec.num_variables = n;
    for (size_t i = 0; i < a.size(); ++i) {
      for (int j = 0; j < n; ++j) {
        if (a[i][j] == 0.0) continue;
        spec.row_index.push_back(static_cast<uint32_t>(i));
        spec.column_index.push_back(j);
        spec.coefficient.push_back(a[i][j]);
      }
    }
    spec.row_lower = row_lower;
    spec.row_upper = row_upper;
    spec.variable_lower = lower;
    spec.variable_upper = upper;
    spec.integer = integer;
    return spec;
  }

  bool Feasible(const std::vector<double>& y, double tolerance) const {
    for (int j = 0; j < n; ++j) {
      if (y[j] < lower[j] - tolerance || y[j] > upper[j] + tolerance) return false;
      if (!integer.empty() && integer[j] && y[j] != std::nearbyint(y[j])) return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      const double ay = oracle_test::Dot(a[i], y);
      if (ay < row_lower[i] - tolerance || ay > row_upper[i] + tolerance) return false;
    }
    return true;
  }
};

// Solves the n × n system M x = b by Gaussian elimination; nullopt when (nearly) singular.
std::optional<std::vector<double>> SolveSquare(std::vector<std::vector<double>> m,
                                               std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(m[r][c]) > std::abs(m[p][c])) p = r;
    }
    if (std::abs(m[p][c]) < 1e-9) return std::nullopt;
    std::swap(m[p], m[c]);
    std::swap(b[p], b[c]);
    for (size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = m[r][c] / m[c][c];
      for (size_t k = c; k < n; ++k) m[r][k] -= f * m[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t c = 0; c < n; ++c) x[c] = b[c] / m[c][c];
  return x;
}

// The best objective over the vertices of a bounded LP: every choice of n tight constraints.
double VertexOptimum(const DenseLp& lp, const std::vector<double>& theta, Sense sense) {
  std::vector<std::vector<double>> rows;
  std::vector<double> rhs;
  auto add = [&](std::vector<double> row, double value) {
    if (std::isfinite(value)) {
      rows.push_back(std::move(row));
      rhs.push_back(value);
    }
  };
  for (size_t i = 0; i < lp.a.size(); ++i) {
    add(lp.a[i], lp.row_lower[i]);
    add(lp.a[i], lp.row_upper[i]);
  }
  for (int j = 0; j < lp.n; ++j) {
    std::vector<double> unit(lp.n, 0.0);
    unit[j] = 1.0;
    add(unit, lp.lower[j]);
    add(unit, lp.upper[j]);
  }
  std::optional<double> best;
  std::vector<int> pick(lp.n);
  auto choose = [&](auto& self, int k, int from) -> void {
    if (k == lp.n) {
      std::vector<std::vector<double>> m;
      std::vector<double> b;
      for (int c : pick) {
        m.push_back(rows[c]);
        b.push_back(rhs[c]);
      }
      const auto x = SolveSquare(m, b);
      if (!x || !lp.Feasible(*x, 1e-9)) return;
      const double v = oracle_test::Dot(*x, theta);
      if (!best || (sense == Sense::kMaximize ? v > *best : v < *best)) best = v;
      return;
    }
    for (int c = from; c < static_cast<int>(rows.size()); ++c) {
      pick[k] = c;
      self(self, k + 1, c + 1);
    }
  };
  choose(choose, 0, 0);
  return *best;
}

// A random LP over a finite box, feasible by construction (row bounds around a point x0).
DenseLp RandomLp(std::mt19937_64& rng, int max_n, int max_rows, bool integral) {
  DenseLp lp;
  lp.n = oracle_test::RandomInt(rng, 1, max_n);
  std::vector<double> x0(lp.n);
  for (int j = 0; j < lp.n; ++j) {
    lp.lower.push_back(oracle_test::RandomInt(rng, -2, 0));
    lp.upper.push_back(lp.lower[j] + oracle_test::RandomInt(rng, 0, 4));
    x0[j] = integral ? oracle_test::RandomInt(rng, static_cast<int>(lp.lower[j]),
                                              static_cast<int>(lp.upper[j]))
                     : oracle_test::UniformVector(rng, 1, lp.lower[j], lp.upper[j])[0];
  }
  const int rows = oracle_test::RandomInt(rng, 0, max_rows);
  for (int i = 0; i < rows; ++i) {
    std::vector<double> a = oracle_test::IntegerVector(rng, lp.n, -3, 3);
    const double ax = oracle_test::Dot(a, x0);
    const int kind = oracle_test::RandomInt(rng, 0, 3);  // ≤, ≥, range, equality
    lp.row_lower.push_back(kind == 0   ? -kInf
                           : kind == 3 ? ax
                                       : ax - oracle_test::UniformVector(rng, 1, 0.0, 2.0)[0]);
    lp.row_upper.push_back(kind == 1   ? kInf
                           : kind == 3 ? ax
                                       : ax + oracle_test::UniformVector(rng, 1, 0.0, 2.0)[0]);
    lp.a.push_back(std::move(a));
  }
  return lp;
}

TEST(LinearProgramOracle, LpMatchesVertexEnumerationInBothSenses) {
  std::mt19937_64 rng(111);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const DenseLp lp = RandomLp(rng, 3, 3, /*integral=*/false);
      auto oracle = MakeOk(lp.ToSpec(), lp.n, sense);
      EXPECT_FALSE(static_cast<LinearProgramOracle&>(*oracle).is_mip());
      auto ws = oracle->NewWorkspace();
      for (int sample = 0; sample < 5; ++sample) {  // warm starts across samples
        std::vector<double> theta = oracle_test::UniformVector(rng, lp.n, -3.0, 3.0);
        const auto solved = SolveDense(*oracle, *ws, theta);
        EXPECT_TRUE(lp.Feasible(solved.y, 1e-7));
        EXPECT_NEAR(oracle_test::Dot(solved.y, theta), VertexOptimum(lp, theta, sense), 1e-7);
      }
    }
  }
}

// Every integer point of the (finite) box that satisfies the rows.
oracle_test::FeasibleSet IntegerPoints(const DenseLp& lp) {
  oracle_test::FeasibleSet set;
  std::vector<double> y(lp.lower);
  auto rec = [&](auto& self, int j) -> void {
    if (j == lp.n) {
      if (lp.Feasible(y, 1e-9)) set.Add(y);
      return;
    }
    for (double v = lp.lower[j]; v <= lp.upper[j]; v += 1.0) {
      y[j] = v;
      self(self, j + 1);
    }
  };
  rec(rec, 0);
  return set;
}

TEST(LinearProgramOracle, MilpMatchesIntegerPointEnumerationInBothSenses) {
  std::mt19937_64 rng(112);
  int infeasible = 0;
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 150; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      DenseLp lp = RandomLp(rng, 4, 3, /*integral=*/oracle_test::RandomInt(rng, 0, 3) > 0);
      lp.integer.assign(lp.n, true);
      const oracle_test::FeasibleSet points = IntegerPoints(lp);
      auto made = MakeOracle(lp.ToSpec(), lp.n, sense);
      if (points.size() == 0) {  // possible when x0 is fractional
        ++infeasible;
        EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(made, "problem.linear_program"));
        continue;
      }
      ASSERT_TRUE(made.ok()) << made.status();
      auto& oracle = **made;
      EXPECT_TRUE(static_cast<LinearProgramOracle&>(oracle).is_mip());
      auto ws = oracle.NewWorkspace();
      for (int sample = 0; sample < 3; ++sample) {
        const std::vector<double> theta = oracle_test::UniformVector(rng, lp.n, -3.0, 3.0);
        oracle_test::ExpectMatchesBruteForce(oracle, *ws, theta, points,
                                             oracle_test::Expect::kFirstOptimal, 1e-9);
      }
    }
  }
  EXPECT_GT(infeasible, 0) << "the generator should also exercise infeasible MILPs";
}

// --- Cross-checks against the specialised oracles on the same problems. ---

// Shortest (longest) path on a DAG as a unit-flow LP with y ≥ 0 (default bounds): the flow
// polytope of a DAG is bounded and its vertices are the paths.
TEST(LinearProgramOracle, DagFlowLpAgreesWithGraphShortestPath) {
  std::mt19937_64 rng(113);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 100; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const int n = oracle_test::RandomInt(rng, 2, 8);
      std::vector<uint32_t> order(n);
      std::iota(order.begin(), order.end(), 0u);
      std::shuffle(order.begin(), order.end(), rng);
      GraphShortestPathSpec g;
      g.num_nodes = static_cast<uint32_t>(n);
      // A path through the order keeps the target reachable; then random forward edges.
      for (int k = 0; k + 1 < n; ++k) {
        g.edge_sources.push_back(order[k]);
        g.edge_targets.push_back(order[k + 1]);
      }
      const int extra = oracle_test::RandomInt(rng, 0, 10);
      for (int e = 0; e < extra; ++e) {
        int a = oracle_test::RandomInt(rng, 0, n - 1);
        int b = oracle_test::RandomInt(rng, 0, n - 2);
        if (b >= a) ++b;
        if (a > b) std::swap(a, b);
        g.edge_sources.push_back(order[a]);
        g.edge_targets.push_back(order[b]);
      }
      g.source = order[0];
      g.target = order[n - 1];
      const int m = static_cast<int>(g.edge_sources.size());
      LinearProgramSpec flow;
      flow.num_variables = static_cast<uint32_t>(m);
      flow.row_lower.assign(n, 0.0);
      flow.row_lower[g.source] = 1.0;
      flow.row_lower[g.target] = -1.0;
      flow.row_upper = flow.row_lower;
      for (int e = 0; e < m; ++e) {
        flow.row_index.insert(flow.row_index.end(), {g.edge_sources[e], g.edge_targets[e]});
        flow.column_index.insert(flow.column_index.end(), {uint32_t(e), uint32_t(e)});
        flow.coefficient.insert(flow.coefficient.end(), {1.0, -1.0});
      }
      auto lp = MakeOk(flow, m, sense);
      auto path = MakeOk(g, m, sense);
      auto ws_lp = lp->NewWorkspace();
      auto ws_path = path->NewWorkspace();
      for (int sample = 0; sample < 5; ++sample) {
        std::vector<double> theta = oracle_test::UniformVector(rng, m, -5.0, 5.0);
        std::vector<double> copy = theta;
        EXPECT_EQ(SolveDense(*lp, *ws_lp, theta).y, SolveDense(*path, *ws_path, copy).y);
      }
    }
  }
}

// The assignment LP: the shorter side's sums = 1, the longer side's ≤ 1, y ∈ [0, 1]
// (Birkhoff–von Neumann: the vertices are the matchings).
LinearProgramSpec AssignmentLp(int rows, int cols) {
  LinearProgramSpec lp;
  lp.num_variables = static_cast<uint32_t>(rows * cols);
  const bool tall = rows > cols;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const uint32_t v = r * cols + c;
      lp.row_index.insert(lp.row_index.end(), {uint32_t(r), uint32_t(rows + c)});
      lp.column_index.insert(lp.column_index.end(), {v, v});
      lp.coefficient.insert(lp.coefficient.end(), {1.0, 1.0});
    }
  }
  for (int r = 0; r < rows; ++r) {
    lp.row_lower.push_back(tall ? -kInf : 1.0);
    lp.row_upper.push_back(1.0);
  }
  for (int c = 0; c < cols; ++c) {
    lp.row_lower.push_back(tall ? 1.0 : -kInf);
    lp.row_upper.push_back(1.0);
  }
  lp.variable_upper.assign(rows * cols, 1.0);
  return lp;
}

TEST(LinearProgramOracle, AssignmentLpAgreesWithAssignment) {
  std::mt19937_64 rng(114);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 60; ++instance) {
      const int rows = oracle_test::RandomInt(rng, 1, 7);
      const int cols = oracle_test::RandomInt(rng, 1, 7);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << ": " << rows << "x" << cols);
      auto lp = MakeOk(AssignmentLp(rows, cols), rows * cols, sense);
      auto matching = MakeOk(AssignmentSpec{.rows = uint32_t(rows), .cols = uint32_t(cols)},
                             rows * cols, sense);
      auto ws_lp = lp->NewWorkspace();
      auto ws_matching = matching->NewWorkspace();
      for (int sample = 0; sample < 5; ++sample) {
        std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, -5.0, 5.0);
        std::vector<double> copy = theta;
        EXPECT_EQ(SolveDense(*lp, *ws_lp, theta).y, SolveDense(*matching, *ws_matching, copy).y);
      }
    }
  }
}

TEST(LinearProgramOracle, KnapsackMilpAgreesWithKnapsack) {
  std::mt19937_64 rng(115);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 60; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const int n = oracle_test::RandomInt(rng, 1, 14);
      KnapsackSpec knapsack;
      LinearProgramSpec milp;
      milp.num_variables = static_cast<uint32_t>(n);
      for (int i = 0; i < n; ++i) {
        knapsack.weights.push_back(oracle_test::RandomInt(rng, 0, 20));
        milp.row_index.push_back(0);
        milp.column_index.push_back(i);
        milp.coefficient.push_back(static_cast<double>(knapsack.weights[i]));
      }
      knapsack.capacity = oracle_test::RandomInt(rng, 0, 60);
      milp.row_lower = {-kInf};
      milp.row_upper = {static_cast<double>(knapsack.capacity)};
      milp.variable_upper.assign(n, 1.0);
      milp.integer.assign(n, true);
      auto mip = MakeOk(milp, n, sense);
      EXPECT_TRUE(mip->binary_solutions());
      auto dp = MakeOk(knapsack, n, sense);
      auto ws_mip = mip->NewWorkspace();
      auto ws_dp = dp->NewWorkspace();
      for (int sample = 0; sample < 3; ++sample) {
        std::vector<double> theta = oracle_test::UniformVector(rng, n, -5.0, 5.0);
        std::vector<double> copy = theta;
        EXPECT_EQ(SolveDense(*mip, *ws_mip, theta).y, SolveDense(*dp, *ws_dp, copy).y);
      }
    }
  }
}

// --- Warm starts. ---

TEST(LinearProgramOracle, WarmStartsAndResetGiveTheColdStartAnswer) {
  std::mt19937_64 rng(116);
  for (bool integer : {false, true}) {
    LinearProgramSpec spec = AssignmentLp(6, 6);
    if (integer) spec.integer.assign(36, true);
    auto oracle = MakeOk(spec, 36, std::nullopt);
    auto warm = oracle->NewWorkspace();
    const std::vector<double> base = oracle_test::UniformVector(rng, 36, -1.0, 1.0);
    for (int sample = 0; sample < 30; ++sample) {
      std::vector<double> theta = base;
      for (double& t : theta) t += 0.3 * oracle_test::UniformVector(rng, 1, -1.0, 1.0)[0];
      std::vector<double> copy = theta;
      auto cold = oracle->NewWorkspace();
      const auto warm_y = SolveDense(*oracle, *warm, theta).y;
      EXPECT_EQ(warm_y, SolveDense(*oracle, *cold, copy).y);
      if (sample % 7 == 0) warm->Reset();
    }
  }
}

// --- Unboundedness is a per-solve failure. ---

TEST(LinearProgramOracle, UnboundedObjectiveFailsThatSolveOnly) {
  // y ≥ 0 (default bounds), y0 − y1 ≤ 1: unbounded along (1, 1) when θ0 + θ1 > 0 (MAXIMIZE).
  LinearProgramSpec spec{.num_variables = 2,
                         .row_index = {0, 0},
                         .column_index = {0, 1},
                         .coefficient = {1.0, -1.0},
                         .row_lower = {-kInf},
                         .row_upper = {1.0}};
  for (bool integer : {false, true}) {
    if (integer) spec.integer = {true, true};
    auto oracle = MakeOk(spec, 2, std::nullopt);
    EXPECT_TRUE(oracle->can_fail());
    auto ws = oracle->NewWorkspace();
    SparseVector y(2);
    std::vector<double> unbounded = {1.0, 0.5};
    const absl::StatusOr<int64_t> failed = oracle->SolveChecked(absl::MakeSpan(unbounded), *ws, y);
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition) << failed.status();
    EXPECT_TRUE(absl::StartsWith(failed.status().message(), "problem.linear_program: "));
    EXPECT_EQ(y.size(), 0u);
    y.Push(0, 1.0);
    EXPECT_EQ(oracle->Solve(absl::MakeSpan(unbounded), *ws, y), 0);
    EXPECT_EQ(y.size(), 0u) << "plain Solve leaves y empty on failure";
    // The workspace recovers: a bounded objective solves normally.
    std::vector<double> bounded = {1.0, -2.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, bounded).y, (std::vector<double>{1, 0}));
    std::vector<double> zero_is_best = {-1.0, -1.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, zero_is_best).y, (std::vector<double>{0, 0}));
    // MINIMIZE is unbounded in the opposite directions.
    auto min = MakeOk(spec, 2, Sense::kMinimize);
    auto ws_min = min->NewWorkspace();
    std::vector<double> negative = {-1.0, -1.0};
    EXPECT_EQ(min->SolveChecked(absl::MakeSpan(negative), *ws_min, y).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

// --- Structure details. ---

TEST(LinearProgramOracle, DuplicateEntriesAreSummed) {
  // (0, 0) appears twice: 2·y0 ≤ 3 with y0 ≤ 5, y0 integer → y0 = 1; continuous → 1.5.
  LinearProgramSpec spec{.num_variables = 1,
                         .row_index = {0, 0},
                         .column_index = {0, 0},
                         .coefficient = {1.0, 1.0},
                         .row_lower = {-kInf},
                         .row_upper = {3.0},
                         .variable_upper = {5.0}};
  auto lp = MakeOk(spec, 1, std::nullopt);
  auto ws = lp->NewWorkspace();
  std::vector<double> theta = {1.0};
  EXPECT_EQ(SolveDense(*lp, *ws, theta).y, (std::vector<double>{1.5}));
  spec.integer = {true};
  auto mip = MakeOk(spec, 1, std::nullopt);
  auto ws_mip = mip->NewWorkspace();
  EXPECT_EQ(SolveDense(*mip, *ws_mip, theta).y, (std::vector<double>{1.0}));
}

TEST(LinearProgramOracle, FractionalVertexAndNonBinaryOutput) {
  // max y0 + y1 s.t. 2y0 + y1 ≤ 2, y0 + 2y1 ≤ 2, y ≥ 0: the vertex (2/3, 2/3).
  const LinearProgramSpec spec{.num_variables = 2,
                               .row_index = {0, 0, 1, 1},
                               .column_index = {0, 1, 0, 1},
                               .coefficient = {2.0, 1.0, 1.0, 2.0},
                               .row_lower = {-kInf, -kInf},
                               .row_upper = {2.0, 2.0}};
  auto oracle = MakeOk(spec, 2, std::nullopt);
  EXPECT_FALSE(oracle->binary_solutions());
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, 1.0};
  const auto y = SolveDense(*oracle, *ws, theta).y;
  EXPECT_NEAR(y[0], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(y[1], 2.0 / 3.0, 1e-12);
  theta = {1.0, 0.1};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1.0, 0.0}));
}

TEST(LinearProgramOracle, FreeVariablesAndEqualityRows) {
  // y0 − y1 = 0, y0 + y1 ∈ [−4, 4], both free: max θ·y at ±(2, 2).
  const LinearProgramSpec spec{.num_variables = 2,
                               .row_index = {0, 0, 1, 1},
                               .column_index = {0, 1, 0, 1},
                               .coefficient = {1.0, -1.0, 1.0, 1.0},
                               .row_lower = {0.0, -4.0},
                               .row_upper = {0.0, 4.0},
                               .variable_lower = {-kInf, -kInf},
                               .variable_upper = {kInf, kInf}};
  auto oracle = MakeOk(spec, 2, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> up = {1.0, 0.5};
  EXPECT_EQ(SolveDense(*oracle, *ws, up).y, (std::vector<double>{2.0, 2.0}));
  std::vector<double> down = {-1.0, 0.5};
  EXPECT_EQ(SolveDense(*oracle, *ws, down).y, (std::vector<double>{-2.0, -2.0}));
}

TEST(LinearProgramOracle, NoRowsMeansTheBox) {
  const LinearProgramSpec spec{
      .num_variables = 3, .variable_lower = {-1.0, 0.0, 2.0}, .variable_upper = {1.0, 3.0, 2.0}};
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(spec, 3, sense);
    EXPECT_EQ(static_cast<LinearProgramOracle&>(*oracle).num_rows(), 0);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {0.5, -0.25, 1.0};
    const std::vector<double> expected = sense == Sense::kMaximize
                                             ? std::vector<double>{1.0, 0.0, 2.0}
                                             : std::vector<double>{-1.0, 3.0, 2.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected);
  }
}

TEST(LinearProgramOracle, OneVariable) {
  const LinearProgramSpec spec{.num_variables = 1, .variable_upper = {1.0}, .integer = {true}};
  auto oracle = MakeOk(spec, 1, std::nullopt);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 1);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {0.3};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1.0}));
  theta = {-0.3};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0.0}));
}

TEST(LinearProgramOracle, InfeasibleStructureIsInvalidArgument) {
  using oracle_test::IsInvalidArgumentNaming;
  // y0 ≥ 2 as a row, y0 ≤ 1 as a bound.
  LinearProgramSpec lp{.num_variables = 1,
                       .row_index = {0},
                       .column_index = {0},
                       .coefficient = {1.0},
                       .row_lower = {2.0},
                       .row_upper = {kInf},
                       .variable_upper = {1.0}};
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(lp, 1, std::nullopt), "problem.linear_program"));
  // 2·y0 = 1 has a continuous solution but no integer one.
  LinearProgramSpec milp{.num_variables = 1,
                         .row_index = {0},
                         .column_index = {0},
                         .coefficient = {2.0},
                         .row_lower = {1.0},
                         .row_upper = {1.0},
                         .integer = {true}};
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(milp, 1, std::nullopt), "problem.linear_program"));
  milp.integer = {false};
  EXPECT_TRUE(MakeOracle(milp, 1, std::nullopt).ok());
}

TEST(LinearProgramOracle, RejectsMalformedStructureNamingTheField) {
  using oracle_test::IsInvalidArgumentNaming;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const LinearProgramSpec good{.num_variables = 2,
                               .row_index = {0, 0},
                               .column_index = {0, 1},
                               .coefficient = {1.0, 1.0},
                               .row_lower = {-kInf},
                               .row_upper = {1.0}};
  ASSERT_TRUE(MakeOracle(good, 2, std::nullopt).ok());
  auto expect = [&](auto mutate, absl::string_view field, int64_t d = 2) {
    LinearProgramSpec spec = good;
    mutate(spec);
    EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(spec, d, std::nullopt), field));
  };
  expect([](auto& s) { s.num_variables = 0; }, "problem.linear_program.num_variables", 0);
  expect([](auto& s) { s.column_index.pop_back(); }, "problem.linear_program.column_index");
  expect([](auto& s) { s.coefficient.push_back(1.0); }, "problem.linear_program.coefficient");
  expect([](auto& s) { s.row_upper.push_back(1.0); }, "problem.linear_program.row_upper");
  expect([](auto& s) { s.row_index[1] = 1; }, "problem.linear_program.row_index[1]");
  expect([](auto& s) { s.column_index[1] = 2; }, "problem.linear_program.column_index[1]");
  expect([&](auto& s) { s.coefficient[0] = nan; }, "problem.linear_program.coefficient[0]");
  expect([](auto& s) { s.coefficient[1] = kInf; }, "problem.linear_program.coefficient[1]");
  expect([&](auto& s) { s.row_lower[0] = nan; }, "problem.linear_program.row_lower[0]");
  expect([](auto& s) { s.row_lower[0] = kInf; }, "problem.linear_program.row_lower[0]");
  expect([](auto& s) { s.row_upper[0] = -kInf; }, "problem.linear_program.row_upper[0]");
  expect([](auto& s) { s.row_lower[0] = 2.0; }, "problem.linear_program.row_upper[0]");
  expect([](auto& s) { s.variable_lower = {0.0}; }, "problem.linear_program.variable_lower");
  expect(
      [](auto& s) {
        s.variable_upper = {1.0, 1.0, 1.0};
      },
      "problem.linear_program.variable_upper");
  expect(
      [&](auto& s) {
        s.variable_lower = {0.0, nan};
      },
      "problem.linear_program.variable_lower[1]");
  expect(
      [](auto& s) {
        s.variable_upper = {-kInf, 1.0};
      },
      "problem.linear_program.variable_upper[0]");
  expect(
      [](auto& s) {
        s.variable_upper = {1.0, -1.0};
      },  // below the default lower bound 0
      "problem.linear_program.variable_upper[1]");
  expect([](auto& s) { s.integer = {true}; }, "problem.linear_program.integer");
  expect([](auto& s) {}, "theta.shape", 3);
}

TEST(LinearProgramOracle, Metadata) {
  auto oracle = MakeOk(AssignmentLp(2, 3), 6, std::nullopt);
  EXPECT_EQ(oracle->name(), "linear_program");
  EXPECT_EQ(oracle->dimension(), 6);
  EXPECT_EQ(oracle->sense(), Sense::kMaximize);
  EXPECT_FALSE(oracle->binary_solutions());
  EXPECT_TRUE(oracle->can_fail());
  EXPECT_EQ(oracle->max_nonzeros(), 6);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
  EXPECT_EQ(static_cast<LinearProgramOracle&>(*oracle).num_rows(), 5);
  EXPECT_FALSE(static_cast<LinearProgramOracle&>(*oracle).is_mip());
}

}  // namespace
}  // namespace perturbd
