#include "solvers/oracles/assignment_oracle.h"

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

AssignmentSpec Spec(int rows, int cols) {
  return AssignmentSpec{.rows = static_cast<uint32_t>(rows), .cols = static_cast<uint32_t>(cols)};
}

// Every matching of the shorter side into the longer one (all injective maps), as 0/1
// row-major rows × cols matrices.
FeasibleSet Matchings(int rows, int cols) {
  const bool tall = rows > cols;
  const int n = std::min(rows, cols);
  const int m = std::max(rows, cols);
  FeasibleSet set;
  std::vector<int> pick(n, -1);  // pick[i]: the longer-side index of shorter-side i
  std::vector<bool> taken(m, false);
  auto dfs = [&](auto& self, int i) -> void {
    if (i == n) {
      std::vector<double> y(static_cast<size_t>(rows) * cols, 0.0);
      for (int a = 0; a < n; ++a) {
        const int r = tall ? pick[a] : a;
        const int c = tall ? a : pick[a];
        y[static_cast<size_t>(r) * cols + c] = 1.0;
      }
      set.Add(y);
      return;
    }
    for (int j = 0; j < m; ++j) {
      if (taken[j]) continue;
      taken[j] = true;
      pick[i] = j;
      self(self, i + 1);
      taken[j] = false;
    }
  };
  dfs(dfs, 0);
  return set;
}

// Best matching value by DP over subsets of the longer side (an independent reference).
double ReferenceOptimum(int rows, int cols, const std::vector<double>& theta, Sense sense) {
  const bool tall = rows > cols;
  const int n = std::min(rows, cols);
  const int m = std::max(rows, cols);
  auto score = [&](int i, int j) {
    const double s =
        tall ? theta[static_cast<size_t>(j) * cols + i] : theta[static_cast<size_t>(i) * cols + j];
    return sense == Sense::kMaximize ? s : -s;
  };
  const double none = -std::numeric_limits<double>::infinity();
  std::vector<double> best(size_t{1} << m, none);
  best[0] = 0.0;
  for (uint32_t mask = 0; mask < best.size(); ++mask) {
    if (best[mask] == none) continue;
    const int i = __builtin_popcount(mask);
    if (i == n) continue;
    for (int j = 0; j < m; ++j) {
      if (mask & (1u << j)) continue;
      best[mask | (1u << j)] = std::max(best[mask | (1u << j)], best[mask] + score(i, j));
    }
  }
  double opt = none;
  for (uint32_t mask = 0; mask < best.size(); ++mask) {
    if (__builtin_popcount(mask) == n) opt = std::max(opt, best[mask]);
  }
  return sense == Sense::kMaximize ? opt : -opt;
}

TEST(AssignmentOracle, MatchesBruteForceOnSquareAndRectangularMatrices) {
  std::mt19937_64 rng(81);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 400; ++instance) {
      const int rows = oracle_test::RandomInt(rng, 1, 5);
      const int cols = oracle_test::RandomInt(rng, 1, 5);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << ": " << rows << "x" << cols);
      auto oracle = MakeOk(Spec(rows, cols), rows * cols, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved = ExpectMatchesBruteForce(*oracle, *ws, theta, Matchings(rows, cols),
                                                  Expect::kFirstOptimal, 1e-12);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(AssignmentOracle, IntegerTiesGiveAnOptimalDeterministicMatching) {
  std::mt19937_64 rng(82);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      const int rows = oracle_test::RandomInt(rng, 1, 5);
      const int cols = oracle_test::RandomInt(rng, 1, 5);
      auto oracle = MakeOk(Spec(rows, cols), rows * cols, sense);
      auto ws = oracle->NewWorkspace();  // reused: no state may leak between solves
      const std::vector<double> theta = oracle_test::IntegerVector(rng, rows * cols, -1, 1);
      const auto first =
          ExpectMatchesBruteForce(*oracle, *ws, theta, Matchings(rows, cols), Expect::kOptimal);
      auto fresh = oracle->NewWorkspace();
      std::vector<double> again = theta;
      EXPECT_EQ(SolveDense(*oracle, *fresh, again).y, first.y);
    }
  }
}

TEST(AssignmentOracle, MinimizeIsMaximizeOfTheNegation) {
  std::mt19937_64 rng(83);
  for (int instance = 0; instance < 200; ++instance) {
    const int rows = oracle_test::RandomInt(rng, 1, 9);
    const int cols = oracle_test::RandomInt(rng, 1, 9);
    auto min = MakeOk(Spec(rows, cols), rows * cols, Sense::kMinimize);
    auto max = MakeOk(Spec(rows, cols), rows * cols, Sense::kMaximize);
    auto ws_min = min->NewWorkspace();
    auto ws_max = max->NewWorkspace();
    std::vector<double> theta = oracle_test::IntegerVector(rng, rows * cols, -2, 2);
    std::vector<double> negated = oracle_test::Negated(theta);
    EXPECT_EQ(SolveDense(*min, *ws_min, theta).y, SolveDense(*max, *ws_max, negated).y);
  }
}

TEST(AssignmentOracle, MediumMatricesMatchTheSubsetDpOptimum) {
  std::mt19937_64 rng(84);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 40; ++instance) {
      const int rows = oracle_test::RandomInt(rng, 1, 12);
      const int cols = oracle_test::RandomInt(rng, 1, 12);
      auto oracle = MakeOk(Spec(rows, cols), rows * cols, sense);
      auto ws = oracle->NewWorkspace();
      std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, -10.0, 10.0);
      const auto solved = SolveDense(*oracle, *ws, theta);
      EXPECT_NEAR(oracle_test::Dot(solved.y, theta), ReferenceOptimum(rows, cols, theta, sense),
                  1e-9);
      // A matching of the shorter side.
      std::vector<int> row_sum(rows, 0), col_sum(cols, 0);
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) {
          row_sum[r] += static_cast<int>(solved.y[static_cast<size_t>(r) * cols + c]);
          col_sum[c] += static_cast<int>(solved.y[static_cast<size_t>(r) * cols + c]);
        }
      }
      EXPECT_EQ(std::accumulate(row_sum.begin(), row_sum.end(), 0), std::min(rows, cols));
      EXPECT_LE(*std::max_element(row_sum.begin(), row_sum.end()), 1);
      EXPECT_LE(*std::max_element(col_sum.begin(), col_sum.end()), 1);
    }
  }
}

TEST(AssignmentOracle, TallMatrixIsTheTransposeOfTheWideOne) {
  std::mt19937_64 rng(85);
  for (int instance = 0; instance < 100; ++instance) {
    const int rows = oracle_test::RandomInt(rng, 2, 8);
    const int cols = oracle_test::RandomInt(rng, 1, rows - 1);
    std::vector<double> theta = oracle_test::UniformVector(rng, rows * cols, -1.0, 1.0);
    std::vector<double> transposed(theta.size());
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) transposed[c * rows + r] = theta[r * cols + c];
    }
    auto tall = MakeOk(Spec(rows, cols), rows * cols, std::nullopt);
    auto wide = MakeOk(Spec(cols, rows), rows * cols, std::nullopt);
    auto ws_tall = tall->NewWorkspace();
    auto ws_wide = wide->NewWorkspace();
    const auto y_tall = SolveDense(*tall, *ws_tall, theta).y;
    const auto y_wide = SolveDense(*wide, *ws_wide, transposed).y;
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) EXPECT_EQ(y_tall[r * cols + c], y_wide[c * rows + r]);
    }
  }
}

TEST(AssignmentOracle, SingleRowOrColumnPicksTheBestEntry) {
  std::vector<double> theta = {0.5, 3.0, -1.0, 2.0};
  for (auto [rows, cols] : {std::pair{1, 4}, std::pair{4, 1}}) {
    auto max = MakeOk(Spec(rows, cols), 4, std::nullopt);
    auto min = MakeOk(Spec(rows, cols), 4, Sense::kMinimize);
    auto ws = max->NewWorkspace();
    EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{0, 1, 0, 0}));
    EXPECT_EQ(SolveDense(*min, *ws, theta).y, (std::vector<double>{0, 0, 1, 0}));
    EXPECT_EQ(max->max_nonzeros(), 1);
  }
  auto one = MakeOk(Spec(1, 1), 1, std::nullopt);
  auto ws = one->NewWorkspace();
  std::vector<double> x = {-7.0};
  EXPECT_EQ(SolveDense(*one, *ws, x).y, (std::vector<double>{1}));
}

TEST(AssignmentOracle, NonFiniteScoresStillGiveAMatching) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto oracle = MakeOk(Spec(3, 3), 9, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {nan, 1.0, 2.0, 3.0, nan, -inf, inf, 0.0, nan};
  const auto solved = SolveDense(*oracle, *ws, theta);
  double ones = 0.0;
  for (double v : solved.y) ones += v;
  EXPECT_EQ(ones, 3.0);
  EXPECT_TRUE(Matchings(3, 3).Contains(solved.y));
  std::vector<double> all_nan(9, nan);
  EXPECT_TRUE(Matchings(3, 3).Contains(SolveDense(*oracle, *ws, all_nan).y));
}

TEST(AssignmentOracle, Metadata) {
  auto oracle = MakeOk(Spec(3, 5), 15, std::nullopt);
  EXPECT_EQ(oracle->name(), "assignment");
  EXPECT_EQ(oracle->dimension(), 15);
  EXPECT_EQ(oracle->sense(), Sense::kMaximize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_FALSE(oracle->can_fail());
  EXPECT_EQ(oracle->max_nonzeros(), 3);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
  EXPECT_EQ(static_cast<AssignmentOracle&>(*oracle).rows(), 3);
  EXPECT_EQ(static_cast<AssignmentOracle&>(*oracle).cols(), 5);
}

TEST(AssignmentOracle, RejectsBadStructure) {
  using oracle_test::IsInvalidArgumentNaming;
  EXPECT_TRUE(
      IsInvalidArgumentNaming(MakeOracle(Spec(0, 3), 0, std::nullopt), "problem.assignment.rows"));
  EXPECT_TRUE(
      IsInvalidArgumentNaming(MakeOracle(Spec(3, 0), 0, std::nullopt), "problem.assignment.cols"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(2, 3), 5, std::nullopt), "theta.shape"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec(2, 3), 0, std::nullopt), "theta.shape"));
  const AssignmentSpec huge{.rows = 4'000'000'000u, .cols = 4'000'000'000u};
  EXPECT_TRUE(
      IsInvalidArgumentNaming(MakeOracle(huge, 1, std::nullopt), "problem.assignment.rows"));
  EXPECT_EQ(StructuralDimension(huge), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace perturbd
