#include "solvers/oracles/argmax_oracle.h"

#include <cstdint>
#include <random>
#include <vector>

#include <limits>
#include "gtest/gtest.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::Expect;
using oracle_test::ExpectMatchesBruteForce;
using oracle_test::FeasibleSet;
using oracle_test::MakeOk;
using oracle_test::SolveDense;

// The one-hot vectors e_0, …, e_{d−1}, lowest index first.
FeasibleSet OneHots(int d) {
  FeasibleSet set;
  for (int i = 0; i < d; ++i) {
    std::vector<double> y(d, 0.0);
    y[i] = 1.0;
    set.Add(y);
  }
  return set;
}

TEST(ArgmaxOracle, MatchesBruteForceOnContinuousScores) {
  std::mt19937_64 rng(1);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      const int d = oracle_test::RandomInt(rng, 1, 9);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << " d " << d);
      auto oracle = MakeOk(ArgmaxSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, d, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, OneHots(d), Expect::kFirstOptimal);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(ArgmaxOracle, TiesBreakToLowestIndex) {
  std::mt19937_64 rng(2);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int d = 1; d <= 8; ++d) {
      auto oracle = MakeOk(ArgmaxSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();  // reused across instances
      const FeasibleSet set = OneHots(d);
      for (int instance = 0; instance < 40; ++instance) {
        ExpectMatchesBruteForce(*oracle, *ws, oracle_test::IntegerVector(rng, d, -2, 2), set,
                                Expect::kFirstOptimal);
      }
    }
  }
}

TEST(ArgmaxOracle, HandExample) {
  std::vector<double> theta = {0.1, 3.0, -1.0, 3.0, -1.0};
  auto max = MakeOk(ArgmaxSpec{}, 5, std::nullopt);
  auto ws = max->NewWorkspace();
  EXPECT_EQ(max->sense(), Sense::kMaximize);
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{0, 1, 0, 0, 0}));
  auto min = MakeOk(ArgmaxSpec{}, 5, Sense::kMinimize);
  EXPECT_EQ(SolveDense(*min, *ws, theta).y, (std::vector<double>{0, 0, 1, 0, 0}));
}

TEST(ArgmaxOracle, SingleCoordinate) {
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(ArgmaxSpec{}, 1, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {-7.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1.0}));
  }
}

TEST(ArgmaxOracle, MinimizeIsMaximizeOfNegatedScores) {
  std::mt19937_64 rng(3);
  auto max = MakeOk(ArgmaxSpec{}, 6, Sense::kMaximize);
  auto min = MakeOk(ArgmaxSpec{}, 6, Sense::kMinimize);
  auto ws = max->NewWorkspace();
  for (int instance = 0; instance < 100; ++instance) {
    std::vector<double> theta = oracle_test::IntegerVector(rng, 6, -3, 3);
    std::vector<double> negated = oracle_test::Negated(theta);
    EXPECT_EQ(SolveDense(*min, *ws, theta).y, SolveDense(*max, *ws, negated).y);
  }
}

// The vector path (max, then the first index holding it) and the NaN fallback against a scan.
TEST(ArgmaxOracle, LargeInstancesWithTiesNanAndSignedZerosMatchAScan) {
  std::mt19937_64 rng(17);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const int d : {1, 2, 9, 100, 1000, 1001}) {
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(ArgmaxSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 4; ++instance) {
        std::vector<double> theta = oracle_test::IntegerVector(rng, d, -3, 3);  // ties
        if (instance == 1) {
          for (double& v : theta) v = v == 0.0 && rng() % 2 == 0 ? -0.0 : v;
        }
        if (instance >= 2) theta[rng() % d] = nan;
        if (instance == 3) theta[0] = nan;
        size_t best = 0;
        for (size_t i = 1; i < theta.size(); ++i) {
          const bool better = sense == Sense::kMaximize ? theta[i] > theta[best]
                                                        : theta[i] < theta[best];
          if (better) best = i;
        }
        std::vector<double> expected(d, 0.0);
        expected[best] = 1.0;
        EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected) << "d=" << d << " " << instance;
      }
    }
  }
}

TEST(ArgmaxOracle, Metadata) {
  auto oracle = MakeOk(ArgmaxSpec{}, 7, Sense::kMinimize);
  EXPECT_EQ(oracle->name(), "argmax");
  EXPECT_EQ(oracle->dimension(), 7);
  EXPECT_EQ(oracle->sense(), Sense::kMinimize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 1);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(ArgmaxOracle, RejectsBadDimension) {
  for (int64_t d : {int64_t{0}, int64_t{-3}, int64_t{INT32_MAX} + 1}) {
    EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(MakeOracle(ArgmaxSpec{}, d, std::nullopt),
                                                     "theta.shape"))
        << d;
  }
}

}  // namespace
}  // namespace perturbd
