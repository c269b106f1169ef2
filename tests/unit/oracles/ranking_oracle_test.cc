#include "solvers/oracles/ranking_oracle.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <cmath>
#include "gtest/gtest.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

using oracle_test::Expect;
using oracle_test::ExpectMatchesBruteForce;
using oracle_test::FeasibleSet;
using oracle_test::MakeOk;
using oracle_test::SolveDense;

// The permutations of (0, …, d−1), in lexicographic order, so that the first optimal y gives
// the lower rank to the lower index among tied scores.
FeasibleSet Permutahedron(int d) {
  FeasibleSet set;
  std::vector<double> y(d);
  std::iota(y.begin(), y.end(), 0.0);
  do {
    set.Add(y);
  } while (std::next_permutation(y.begin(), y.end()));
  return set;
}

TEST(RankingOracle, MatchesBruteForceOnContinuousScores) {
  std::mt19937_64 rng(31);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      const int d = oracle_test::RandomInt(rng, 1, 6);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << " d " << d);
      auto oracle = MakeOk(RankingSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, d, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, Permutahedron(d), Expect::kFirstOptimal);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(RankingOracle, TiesGiveTheLowerIndexTheLowerRank) {
  std::mt19937_64 rng(32);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int d = 1; d <= 6; ++d) {
      auto oracle = MakeOk(RankingSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      const FeasibleSet set = Permutahedron(d);
      for (int instance = 0; instance < 40; ++instance) {
        ExpectMatchesBruteForce(*oracle, *ws, oracle_test::IntegerVector(rng, d, -1, 1), set,
                                Expect::kFirstOptimal);
      }
    }
  }
}

TEST(RankingOracle, HandExample) {
  std::vector<double> theta = {3.0, 1.0, 2.0, 1.0};
  auto max = MakeOk(RankingSpec{}, 4, std::nullopt);
  auto ws = max->NewWorkspace();
  EXPECT_EQ(max->sense(), Sense::kMaximize);
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{3, 0, 2, 1}));
  auto min = MakeOk(RankingSpec{}, 4, Sense::kMinimize);
  EXPECT_EQ(SolveDense(*min, *ws, theta).y, (std::vector<double>{0, 2, 1, 3}));
}

TEST(RankingOracle, RankZeroIsNotStored) {
  auto oracle = MakeOk(RankingSpec{}, 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {0.5, -2.0, 1.0};
  SparseVector y(3);
  oracle->Solve(absl::MakeSpan(theta), *ws, y);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y.index(0), 0);
  EXPECT_EQ(y.value(0), 1.0);
  EXPECT_EQ(y.index(1), 2);
  EXPECT_EQ(y.value(1), 2.0);

  auto single = MakeOk(RankingSpec{}, 1, std::nullopt);
  std::vector<double> one = {4.0};
  auto single_ws = single->NewWorkspace();
  single->Solve(absl::MakeSpan(one), *single_ws, y);
  EXPECT_EQ(y.size(), 0u);
}

TEST(RankingOracle, MinimizeIsMaximizeOfNegatedScores) {
  std::mt19937_64 rng(33);
  auto max = MakeOk(RankingSpec{}, 9, Sense::kMaximize);
  auto min = MakeOk(RankingSpec{}, 9, Sense::kMinimize);
  auto ws = max->NewWorkspace();
  for (int instance = 0; instance < 100; ++instance) {
    std::vector<double> theta = oracle_test::IntegerVector(rng, 9, -2, 2);
    std::vector<double> negated = oracle_test::Negated(theta);
    EXPECT_EQ(SolveDense(*min, *ws, theta).y, SolveDense(*max, *ws, negated).y);
  }
}

TEST(RankingOracle, NanScoresKeepATotalOrder) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto oracle = MakeOk(RankingSpec{}, 40, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta(40, nan);
  for (int i = 0; i < 40; i += 3) theta[i] = i;
  std::vector<double> y = SolveDense(*oracle, *ws, theta).y;
  std::sort(y.begin(), y.end());
  for (int r = 0; r < 40; ++r) EXPECT_EQ(y[r], r);  // still a permutation
}

// The counting path (d ≤ 192) and the sorting path against a stable sort: ties, NaN, ±∞, ±0.
TEST(RankingOracle, CountingAndSortingMatchAStableSort) {
  std::mt19937_64 rng(16);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const int d : {1, 2, 7, 15, 16, 17, 100, 191, 192, 193, 300}) {
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(RankingSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 5; ++instance) {
        std::vector<double> theta = oracle_test::IntegerVector(rng, d, -5, 5);
        if (instance >= 3) {
          // Distinct float keys (FLOAT32 η: the float kernel), and the same with one tied
          // pair. The integer θ of instance 0 ties many keys across the kernel's blocks of 16.
          std::normal_distribution<float> normal;
          for (double& t : theta) t = normal(rng);
          if (instance == 4 && d >= 2) theta[rng() % d] = theta[rng() % d];
        } else if (instance >= 1) {
          theta[rng() % d] = nan;
          theta[rng() % d] = inf;
          theta[rng() % d] = -inf;
          theta[rng() % d] = -0.0;
        }
        if (instance == 2) {
          for (int i = 0; i < d; ++i) theta[i] += 0.001 * static_cast<double>(rng() % 1000);
        }
        const std::vector<int> order = oracle_test::StableOrder(theta, sense, false);
        std::vector<double> expected(d, 0.0);
        for (int r = 0; r < d; ++r) expected[order[r]] = r;
        EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected) << "d=" << d;
      }
    }
  }
}

// Double keys are ranked by their float roundings and checked: keys that round to one float
// (closer than a float step, subnormal, or past float's range) in either index order, so the
// float kernel's tie by index is sometimes wrong and the check must catch it; and keys that
// merely look alike, so it must not reject right ranks.
TEST(RankingOracle, DoubleKeysThatShareAFloatRankAsDoubles) {
  std::mt19937_64 rng(17);
  const double step = 0x1p-40;  // far below float's step at 1 (2⁻²³)
  for (const int d : {2, 3, 16, 17, 33, 100, 192}) {
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(RankingSpec{}, d, sense);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 6; ++instance) {
        std::vector<double> theta(d);
        std::normal_distribution<double> normal;
        for (double& t : theta) t = normal(rng);
        // Groups of keys a few double steps apart, placed at random indices.
        const int groups = 1 + static_cast<int>(rng() % 4);
        for (int g = 0; g < groups; ++g) {
          const double base = instance == 4   ? 1e300 * (1.0 + g)   // float: +∞
                              : instance == 5 ? 1e-320 * (1.0 + g)  // float: 0
                                              : static_cast<float>(normal(rng));
          for (int m = 0; m < 3; ++m) {
            const double offset = instance == 3 ? 0.0 : step * static_cast<double>(rng() % 7);
            const double apart = instance == 4   ? base * 1e-12 * m  // distinct doubles
                                 : instance == 5 ? std::numeric_limits<double>::denorm_min() * m
                                                 : offset;
            theta[rng() % d] = base + apart;
          }
        }
        const std::vector<int> order = oracle_test::StableOrder(theta, sense, false);
        std::vector<double> expected(d, 0.0);
        for (int r = 0; r < d; ++r) expected[order[r]] = r;
        EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected)
            << "d=" << d << " instance=" << instance;
      }
    }
  }
}

TEST(RankingOracle, Metadata) {
  auto oracle = MakeOk(RankingSpec{}, 5, std::nullopt);
  EXPECT_EQ(oracle->name(), "ranking");
  EXPECT_EQ(oracle->dimension(), 5);
  EXPECT_FALSE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 4);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(RankingOracle, RejectsBadDimension) {
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(MakeOracle(RankingSpec{}, 0, std::nullopt),
                                                   "theta.shape"));
}

}  // namespace
}  // namespace perturbd
