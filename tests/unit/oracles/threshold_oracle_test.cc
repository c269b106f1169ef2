#include "solvers/oracles/threshold_oracle.h"

#include <cstdint>
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

// {0,1}^d in increasing order of the mask Σ y_i 2^i, so that the first optimal vector has
// y_i = 0 wherever θ_i = 0 (the documented tie rule).
FeasibleSet Cube(int d) {
  FeasibleSet set;
  for (uint32_t mask = 0; mask < (1u << d); ++mask) {
    std::vector<double> y(d);
    for (int i = 0; i < d; ++i) y[i] = (mask >> i) & 1u;
    set.Add(y);
  }
  return set;
}

TEST(ThresholdOracle, MatchesBruteForceOnContinuousScores) {
  std::mt19937_64 rng(21);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      const int d = oracle_test::RandomInt(rng, 1, 10);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << " d " << d);
      auto oracle = MakeOk(ThresholdSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, d, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, Cube(d), Expect::kFirstOptimal);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(ThresholdOracle, ZeroScoresGiveZero) {
  std::mt19937_64 rng(22);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int d = 1; d <= 10; ++d) {
      auto oracle = MakeOk(ThresholdSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      const FeasibleSet set = Cube(d);
      for (int instance = 0; instance < 20; ++instance) {
        ExpectMatchesBruteForce(*oracle, *ws, oracle_test::IntegerVector(rng, d, -1, 1), set,
                                Expect::kFirstOptimal);
      }
    }
  }
}

TEST(ThresholdOracle, HandExample) {
  std::vector<double> theta = {0.5, -0.25, 0.0, 3.0, -0.0};
  auto max = MakeOk(ThresholdSpec{}, 5, std::nullopt);
  auto ws = max->NewWorkspace();
  EXPECT_EQ(max->sense(), Sense::kMaximize);
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{1, 0, 0, 1, 0}));
  auto min = MakeOk(ThresholdSpec{}, 5, Sense::kMinimize);
  EXPECT_EQ(SolveDense(*min, *ws, theta).y, (std::vector<double>{0, 1, 0, 0, 0}));
}

TEST(ThresholdOracle, MinimizeIsMaximizeOfNegatedScores) {
  std::mt19937_64 rng(23);
  auto max = MakeOk(ThresholdSpec{}, 8, Sense::kMaximize);
  auto min = MakeOk(ThresholdSpec{}, 8, Sense::kMinimize);
  auto ws = max->NewWorkspace();
  for (int instance = 0; instance < 100; ++instance) {
    std::vector<double> theta = oracle_test::IntegerVector(rng, 8, -2, 2);
    std::vector<double> negated = oracle_test::Negated(theta);
    EXPECT_EQ(SolveDense(*min, *ws, theta).y, SolveDense(*max, *ws, negated).y);
  }
}

TEST(ThresholdOracle, Metadata) {
  auto oracle = MakeOk(ThresholdSpec{}, 6, std::nullopt);
  EXPECT_EQ(oracle->name(), "threshold");
  EXPECT_EQ(oracle->dimension(), 6);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 6);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(ThresholdOracle, RejectsBadDimension) {
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(MakeOracle(ThresholdSpec{}, 0, std::nullopt),
                                                   "theta.shape"));
}

}  // namespace
}  // namespace perturbd
