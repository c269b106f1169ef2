#include "solvers/oracles/top_k_oracle.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/internal/top_k_best.h"
#include "solvers/oracles/internal/vector_clones.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace perturbd {
namespace {

// TopKOfCandidates, the ranking kernel (AVX-512) and the k-buffer alike, against a stable sort
// of the candidates by key (larger first, then lower index): keys ≥ T from one to all 64 the
// kernel ranks (its blocks of eight), drawn from few values so that ties cross the blocks,
// with −∞ and ±0. The chosen indices ascending, the returned key the k-th best.
TEST(TopKOfCandidates, RankingKernelAndKBufferMatchAStableSort) {
  std::mt19937_64 rng(5);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {-inf, -1.5, -0.0, 0.0, 0.25, 0.25, 1.0, 3.0};
  for (size_t n : {1u, 7u, 8u, 9u, 17u, 33u, 63u, 64u, 80u}) {
    for (size_t k : {1u, 2u, 5u, 10u, 32u}) {
      if (k > n) continue;
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<int32_t> cand(n);
        std::vector<double> key(n);
        int32_t next = 0;
        for (size_t j = 0; j < n; ++j) {
          next += 1 + static_cast<int32_t>(rng() % 3);  // ascending coordinates
          cand[j] = next;
          key[j] = trial % 2 == 0 ? values[rng() % values.size()]
                                  : static_cast<double>(rng() % 5);  // many ties
        }
        std::vector<size_t> order(n);
        for (size_t j = 0; j < n; ++j) order[j] = j;
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return key[a] > key[b]; });
        std::vector<int32_t> expected;
        for (size_t j = 0; j < k; ++j) expected.push_back(cand[order[j]]);
        std::sort(expected.begin(), expected.end());
        const double kth = key[order[k - 1]];
        // Any T ≤ the k-th best key is allowed; the lowest keeps every candidate.
        for (const double threshold : {kth, -inf}) {
          for (const bool avx512 : {false, CpuHasAvx512F()}) {
            std::vector<double> bk(k);
            std::vector<int32_t> best(k);
            const double got = TopKOfCandidates(cand.data(), key.data(), n, k, threshold, avx512,
                                                bk.data(), best.data());
            EXPECT_EQ(best, expected)
                << "n=" << n << " k=" << k << " trial=" << trial << " avx512=" << avx512;
            EXPECT_EQ(got, kth);
          }
        }
      }
    }
  }
}

using oracle_test::Expect;
using oracle_test::ExpectMatchesBruteForce;
using oracle_test::FeasibleSet;
using oracle_test::MakeOk;
using oracle_test::SolveDense;

// Every k-subset of {0..d−1} as a 0/1 vector, in lexicographic order of the sorted indices,
// so the first optimal one is the lowest-index choice among ties.
FeasibleSet KSubsets(int d, int k) {
  FeasibleSet set;
  std::vector<int> pick(k);
  for (int j = 0; j < k; ++j) pick[j] = j;
  while (true) {
    std::vector<double> y(d, 0.0);
    for (int i : pick) y[i] = 1.0;
    set.Add(y);
    int j = k - 1;
    while (j >= 0 && pick[j] == d - k + j) --j;
    if (j < 0) break;
    ++pick[j];
    for (int l = j + 1; l < k; ++l) pick[l] = pick[l - 1] + 1;
  }
  return set;
}

TEST(TopKOracle, MatchesBruteForceOnContinuousScores) {
  std::mt19937_64 rng(11);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int instance = 0; instance < 300; ++instance) {
      const int d = oracle_test::RandomInt(rng, 1, 8);
      const int k = oracle_test::RandomInt(rng, 1, d);
      SCOPED_TRACE(::testing::Message() << "instance " << instance << " d " << d << " k " << k);
      auto oracle = MakeOk(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
      auto ws = oracle->NewWorkspace();
      const std::vector<double> theta = oracle_test::UniformVector(rng, d, -5.0, 5.0);
      std::vector<double> seen = theta;
      const auto solved =
          ExpectMatchesBruteForce(*oracle, *ws, theta, KSubsets(d, k), Expect::kFirstOptimal);
      EXPECT_EQ(solved.clamped, 0);
      SolveDense(*oracle, *ws, seen);
      EXPECT_EQ(seen, theta) << "theta must not be modified";
    }
  }
}

TEST(TopKOracle, TiesBreakToLowestIndices) {
  std::mt19937_64 rng(12);
  for (Sense sense : oracle_test::kBothSenses) {
    for (int d = 1; d <= 8; ++d) {
      for (int k = 1; k <= d; ++k) {
        auto oracle = MakeOk(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
        auto ws = oracle->NewWorkspace();  // reused across instances
        const FeasibleSet set = KSubsets(d, k);
        for (int instance = 0; instance < 10; ++instance) {
          ExpectMatchesBruteForce(*oracle, *ws, oracle_test::IntegerVector(rng, d, -1, 1), set,
                                  Expect::kFirstOptimal);
        }
      }
    }
  }
}

TEST(TopKOracle, AllEqualScoresPickTheFirstK) {
  auto oracle = MakeOk(TopKSpec{.k = 3}, 7, Sense::kMaximize);
  auto ws = oracle->NewWorkspace();
  std::vector<double> theta(7, 2.5);
  EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 1, 0, 0, 0, 0}));
}

TEST(TopKOracle, KEqualsDimensionSelectsEverything) {
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(TopKSpec{.k = 4}, 4, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {3.0, -1.0, 0.0, 2.0};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{1, 1, 1, 1}));
  }
  auto single = MakeOk(TopKSpec{.k = 1}, 1, std::nullopt);
  auto ws = single->NewWorkspace();
  std::vector<double> theta = {-1.0};
  EXPECT_EQ(SolveDense(*single, *ws, theta).y, (std::vector<double>{1}));
}

TEST(TopKOracle, MinimizeIsMaximizeOfNegatedScores) {
  std::mt19937_64 rng(13);
  auto max = MakeOk(TopKSpec{.k = 3}, 9, Sense::kMaximize);
  auto min = MakeOk(TopKSpec{.k = 3}, 9, Sense::kMinimize);
  auto ws = max->NewWorkspace();
  for (int instance = 0; instance < 100; ++instance) {
    std::vector<double> theta = oracle_test::IntegerVector(rng, 9, -2, 2);
    std::vector<double> negated = oracle_test::Negated(theta);
    EXPECT_EQ(SolveDense(*min, *ws, theta).y, SolveDense(*max, *ws, negated).y);
  }
}

TEST(TopKOracle, NanScoresAreNeverPreferred) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Sense sense : oracle_test::kBothSenses) {
    auto oracle = MakeOk(TopKSpec{.k = 2}, 5, sense);
    auto ws = oracle->NewWorkspace();
    std::vector<double> theta = {nan, 1.0, nan, -1.0, nan};
    EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, (std::vector<double>{0, 1, 0, 1, 0}));
  }
}

// k = 10 and 32 take the single-scan path, k = 33 and 137 the nth_element path.
TEST(TopKOracle, LargeInstanceMatchesSorting) {
  std::mt19937_64 rng(14);
  const int d = 10000;
  for (const int k : {10, 32, 33, 137}) {
    for (Sense sense : oracle_test::kBothSenses) {
      auto oracle = MakeOk(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
      auto ws = oracle->NewWorkspace();
      for (int instance = 0; instance < 3; ++instance) {
        std::vector<double> theta = oracle_test::IntegerVector(rng, d, 0, 50);  // many ties
        const double s = sense == Sense::kMaximize ? 1.0 : -1.0;
        std::vector<int> order(d);
        for (int i = 0; i < d; ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return s * theta[a] > s * theta[b]; });
        std::vector<double> expected(d, 0.0);
        for (int j = 0; j < k; ++j) expected[order[j]] = 1.0;
        EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected) << k;
      }
    }
  }
}

// The scan's two-pass path (block maxima, then the blocks above the k-th of them) against a
// stable sort, over sizes around the block size, with ties, NaN and infinities.
TEST(TopKOracle, BlockSkippingScanMatchesSortingWithTiesNanAndInfinities) {
  std::mt19937_64 rng(15);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const int d : {33, 320, 321, 335, 1000, 1500}) {
    for (const int k : {1, 2, 10, 32}) {
      if (k >= d) continue;
      for (Sense sense : oracle_test::kBothSenses) {
        auto oracle = MakeOk(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
        auto ws = oracle->NewWorkspace();
        for (int instance = 0; instance < 4; ++instance) {
          std::vector<double> theta = oracle_test::IntegerVector(rng, d, 0, 20);
          if (instance >= 1) {
            for (int j = 0; j < d / 10; ++j) theta[rng() % d] = nan;
          }
          if (instance >= 2) {
            theta[rng() % d] = inf;
            theta[rng() % d] = -inf;
          }
          if (instance == 3) {  // mostly NaN: fewer than k finite scores in some blocks
            for (int i = 0; i < d; ++i) {
              if (rng() % 8 != 0) theta[i] = nan;
            }
          }
          const std::vector<int> order = oracle_test::StableOrder(theta, sense, true);
          std::vector<double> expected(d, 0.0);
          for (int j = 0; j < k; ++j) expected[order[j]] = 1.0;
          EXPECT_EQ(SolveDense(*oracle, *ws, theta).y, expected)
              << "d=" << d << " k=" << k << " instance=" << instance;
        }
      }
    }
  }
}

// Many solves on one workspace, as the estimator makes them (perturbed copies of one θ): the
// hinted path (one pass collecting the keys above the previous k-th best less a margin) must
// give the sorted answer on hits, on misses (the scores jump down), when the margin is too
// wide (they jump up) and with ties, NaN and infinities in the copies.
TEST(TopKOracle, HintedSolvesOfPerturbedCopiesMatchSorting) {
  std::mt19937_64 rng(16);
  std::normal_distribution<double> normal;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const int d : {100, 333, 1000}) {
    for (const int k : {1, 3, 10, 32}) {
      for (Sense sense : oracle_test::kBothSenses) {
        auto oracle = MakeOk(TopKSpec{.k = static_cast<uint32_t>(k)}, d, sense);
        auto ws = oracle->NewWorkspace();
        std::vector<double> base(d);
        for (int i = 0; i < d; ++i) base[i] = std::sin(0.37 * i);
        for (int m = 0; m < 60; ++m) {
          if (m == 30) ws->Reset();
          std::vector<double> theta(d);
          const double shift = (m % 20 == 10) ? -5.0 : (m % 20 == 15) ? 5.0 : 0.0;
          for (int i = 0; i < d; ++i) theta[i] = base[i] + 0.5 * normal(rng) + shift;
          if (m % 7 == 3) {  // ties at the top
            for (int j = 0; j < 2 * k; ++j) theta[rng() % d] = 4.0 + shift;
          }
          if (m % 9 == 4) {
            for (int j = 0; j < d / 10; ++j) theta[rng() % d] = nan;
            theta[rng() % d] = inf;
            theta[rng() % d] = -inf;
          }
          const std::vector<int> order = oracle_test::StableOrder(theta, sense, true);
          std::vector<double> expected(d, 0.0);
          for (int j = 0; j < k; ++j) expected[order[j]] = 1.0;
          ASSERT_EQ(SolveDense(*oracle, *ws, theta).y, expected)
              << "d=" << d << " k=" << k << " m=" << m;
        }
      }
    }
  }
}

TEST(TopKOracle, Metadata) {
  auto oracle = MakeOk(TopKSpec{.k = 3}, 10, std::nullopt);
  EXPECT_EQ(oracle->name(), "top_k");
  EXPECT_EQ(oracle->dimension(), 10);
  EXPECT_EQ(oracle->sense(), Sense::kMaximize);
  EXPECT_TRUE(oracle->binary_solutions());
  EXPECT_EQ(oracle->max_nonzeros(), 3);
  EXPECT_GT(oracle->cost_per_solve(), 0.0);
}

TEST(TopKOracle, RejectsKOutOfRange) {
  const auto too_large = MakeOracle(TopKSpec{.k = 7}, 5, std::nullopt);
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(too_large, "problem.top_k.k"));
  EXPECT_EQ(too_large.status().message(), "problem.top_k.k: must be in [1, d] with d = 5, got 7");
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(MakeOracle(TopKSpec{.k = 0}, 5, std::nullopt),
                                                   "problem.top_k.k"));
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(
      MakeOracle(TopKSpec{.k = 6}, 5, Sense::kMinimize), "problem.top_k.k"));
}

TEST(TopKOracle, RejectsBadDimension) {
  EXPECT_TRUE(oracle_test::IsInvalidArgumentNaming(MakeOracle(TopKSpec{.k = 1}, 0, std::nullopt),
                                                   "theta.shape"));
}

}  // namespace
}  // namespace perturbd
