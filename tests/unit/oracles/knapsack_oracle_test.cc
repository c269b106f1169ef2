#include "solvers/oracles/knapsack_oracle.h"

#include <algorithm>
#include <cstdint>
#include <limits>
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

KnapsackSpec Spec(std::vector<int64_t> weights, int64_t capacity) {
  return KnapsackSpec{.weights = std::move(weights), .capacity = capacity};
}

// Every feasible subset, in increasing order of its mask Σ 2^i y_i: the first optimal one is
// the documented tie-break.
FeasibleSet FeasibleSubsets(const KnapsackSpec& spec) {
  const size_t n = spec.weights.size();
  FeasibleSet set;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    int64_t weight = 0;
    std::vector<double> y(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      if (mask & (1u << i)) {
        weight += spec.weights[i];
        y[i] = 1.0;
      }
    }
    if (weight <= spec.capacity) set.Add(y);
  }
  return set;
}

KnapsackSpec RandomSpec(std::mt19937_64& rng, int max_items, int max_weight, int max_capacity) {
  KnapsackSpec spec;
  const int n = oracle_test::RandomInt(rng, 1, max_items);
  const int scale = oracle_test::RandomInt(rng, 1, 3);  // common factors exercise the gcd
  for (int i = 0; i < n; ++i)
    spec.weights.push_back(scale * oracle_test::RandomInt(rng, 0, max_weight));
  spec.capacity = oracle_test::RandomInt(rng, 0, max_capacity);
  return spec;
}

TEST(KnapsackOracle, MatchesBruteForceInBothSenses) {
  std::mt19937_64 rng(101);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 500; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const KnapsackSpec spec = RandomSpec(rng, 10, 10, 40);
      const int n = static_cast<int>(spec.weights.size());
      auto oracle = MakeOk(spec, n, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, n, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved = ExpectMatchesBruteForce(*oracle, *ws, theta, FeasibleSubsets(spec),
                                                  Expect::kFirstOptimal, 1e-12);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(KnapsackOracle, IntegerTiesLeaveOutTheHighestIndicesFirst) {
  std::mt19937_64 rng(102);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 500; ++instance) {
      SCOPED_TRACE(::testing::Message() << "instance " << instance);
      const KnapsackSpec spec = RandomSpec(rng, 10, 6, 25);
      const int n = static_cast<int>(spec.weights.size());
      auto oracle = MakeOk(spec, n, sense);
      auto ws = oracle->NewWorkspace();
      ExpectMatchesBruteForce(*oracle, *ws, oracle_test::IntegerVector(rng, n, -2, 2),
                              FeasibleSubsets(spec), Expect::kFirstOptimal);
    }
  }
}

TEST(KnapsackOracle, MaxNonzerosIsTheLargestFeasibleSet) {
  std::mt19937_64 rng(103);
  for (int instance = 0; instance < 200; ++instance) {
    const KnapsackSpec spec = RandomSpec(rng, 10, 10, 40);
    const int n = static_cast<int>(spec.weights.size());
    auto oracle = MakeOk(spec, n, std::nullopt);
    const FeasibleSet set = FeasibleSubsets(spec);
    int64_t largest = 0;
    for (size_t k = 0; k < set.size(); ++k) {
      largest = std::max<int64_t>(largest, std::count(set[k].begin(), set[k].end(), 1.0));
    }
    EXPECT_EQ(oracle->max_nonzeros(), largest);
  }
}

TEST(KnapsackOracle, ZeroCapacityTakesOnlyWeightlessItemsWithPositiveValue) {
  const auto spec = Spec({0, 3, 0, 1, 0}, 0);
  auto max = MakeOk(spec, 5, std::nullopt);
  EXPECT_EQ(static_cast<KnapsackOracle&>(*max).table_bits(), 0);
  auto ws = max->NewWorkspace();
  std::vector<double> theta = {2.0, 5.0, -1.0, 4.0, 0.0};
  EXPECT_EQ(SolveDense(*max, *ws, theta).y, (std::vector<double>{1, 0, 0, 0, 0}));
  auto min = MakeOk(spec, 5, Sense::kMinimize);
  EXPECT_EQ(SolveDense(*min, *ws, theta).y, (std::vector<double>{0, 0, 1, 0, 0}));
  EXPECT_EQ(max->max_nonzeros(), 3);
}

TEST(KnapsackOracle, MinimizeTakesOnlyNegativeValues) {
  auto oracle = MakeOk(Spec({2, 3, 4}, 5), 3, Sense::kMinimize);
  auto ws = oracle->NewWorkspace();
  std::vector<double> positive = {1.0, 2.0, 3.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, positive).y, (std::vector<double>{0, 0, 0}));
  std::vector<double> mixed = {-1.0, -2.0, -3.0};  // best pair under 5: items 0 and 1
  EXPECT_EQ(SolveDense(*oracle, *ws, mixed).y, (std::vector<double>{1, 1, 0}));
}

TEST(KnapsackOracle, EverythingFitsNeedsNoTable) {
  const int64_t big = int64_t{1} << 62;
  auto oracle = MakeOk(Spec({big / 4, big / 4, 5}, big), 3, std::nullopt);
  EXPECT_EQ(static_cast<KnapsackOracle&>(*oracle).table_bits(), 0);
  EXPECT_EQ(oracle->max_nonzeros(), 3);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, -1.0, 0.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 0, 0}));
}

TEST(KnapsackOracle, HeavyItemsAreNeverTaken) {
  auto oracle = MakeOk(Spec({10, 2, 11, 3}, 4), 4, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {100.0, 1.0, 100.0, 2.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(oracle->max_nonzeros(), 1);
}

TEST(KnapsackOracle, GcdShrinksTheTable) {
  // Weights 1000·{3, 5, 7}, capacity 12 345: the DP runs on {3, 5, 7} with capacity 12.
  auto oracle = MakeOk(Spec({3000, 5000, 7000}, 12'345), 3, std::nullopt);
  EXPECT_EQ(static_cast<KnapsackOracle&>(*oracle).table_bits(), (3 + 64) * 13);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {1.0, 1.5, 2.0};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 1, 1}));
}

// Textbook 2-D DP value: an independent reference for larger instances.
double ReferenceValue(const KnapsackSpec& spec, const std::vector<double>& theta) {
  const size_t c = static_cast<size_t>(spec.capacity);
  std::vector<double> best(c + 1, 0.0);
  for (size_t i = 0; i < theta.size(); ++i) {
    const size_t w = static_cast<size_t>(spec.weights[i]);
    if (w > c) continue;
    for (size_t cap = c + 1; cap-- > w;) best[cap] = std::max(best[cap], best[cap - w] + theta[i]);
  }
  return best[c];
}

TEST(KnapsackOracle, LargeInstancesMatchTheReferenceValue) {
  std::mt19937_64 rng(104);
  for (int instance = 0; instance < 10; ++instance) {
    KnapsackSpec spec;
    for (int i = 0; i < 200; ++i) spec.weights.push_back(oracle_test::RandomInt(rng, 1, 100));
    spec.capacity = oracle_test::RandomInt(rng, 100, 3000);
    auto oracle = MakeOk(spec, 200, std::nullopt);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = oracle_test::UniformVector(rng, 200, -1.0, 10.0);
    const auto solved = SolveDense(*oracle, *ws, theta);
    EXPECT_NEAR(oracle_test::Dot(solved.y, theta), ReferenceValue(spec, theta), 1e-9);
    int64_t weight = 0;
    for (int i = 0; i < 200; ++i) weight += solved.y[i] != 0.0 ? spec.weights[i] : 0;
    EXPECT_LE(weight, spec.capacity);
  }
}

TEST(KnapsackOracle, NanValuesAreNeverTaken) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto oracle = MakeOk(Spec({1, 1, 0}, 1), 3, std::nullopt);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta = {nan, 1.0, nan};
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 1, 0}));
}

TEST(KnapsackOracle, Metadata) {
  auto oracle = MakeOk(Spec({1, 2, 3}, 4), 3, std::nullopt);
  EXPECT_EQ(oracle->name(), "knapsack");
  EXPECT_EQ(oracle->dimension(), 3);
  EXPECT_EQ(oracle->sense(), Sense::kMaximize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 2);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(KnapsackOracle, RejectsBadStructure) {
  using oracle_test::IsInvalidArgumentNaming;
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec({}, 3), 0, std::nullopt),
                                      "problem.knapsack.weights"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec({1, 2, 3, -1}, 3), 4, std::nullopt),
                                      "problem.knapsack.weights[3]"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec({1, 2}, -1), 2, std::nullopt),
                                      "problem.knapsack.capacity"));
  EXPECT_TRUE(IsInvalidArgumentNaming(MakeOracle(Spec({1, 2}, 3), 3, std::nullopt), "theta.shape"));
}

TEST(KnapsackOracle, TooLargeATableIsResourceExhaustedAfterEveryInvalidArgument) {
  // Two items of weight 2^30 + 1 and 2^30 + 3 (gcd 1), capacity 2^30 + 5: (2 + 64)·(C + 1) bits.
  const int64_t g = int64_t{1} << 30;
  const auto spec = Spec({g + 1, g + 3}, g + 5);
  auto status = MakeOracle(spec, 2, std::nullopt).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "problem.knapsack.capacity")) << status;
  // Malformed fields win over the size.
  EXPECT_TRUE(
      oracle_test::IsInvalidArgumentNaming(MakeOracle(spec, 3, std::nullopt), "theta.shape"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(Spec({g + 1, g + 3, -1}, g + 5), 3, std::nullopt), "problem.knapsack.weights[2]"));
  // The limit itself: two coprime items that do not fit together, (2 + 64)·(C + 1) bits.
  const int64_t c = KnapsackOracle::kMaxTableBits / 66 - 1;
  auto ok = MakeOracle(Spec({c, c - 1}, c), 2, std::nullopt);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(static_cast<KnapsackOracle&>(**ok).table_bits(), 66 * (c + 1));
  EXPECT_LE(66 * (c + 1), KnapsackOracle::kMaxTableBits);
  EXPECT_EQ(MakeOracle(Spec({c + 1, c}, c + 1), 2, std::nullopt).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace perturbd
