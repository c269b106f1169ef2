// Shared helpers for the oracle tests: solving into a dense vector with the SparseVector
// contract checked, brute-force feasible sets, and status checks that name a wire field.
#ifndef PERTURBD_TESTS_UNIT_ORACLES_ORACLE_TEST_UTIL_H_
#define PERTURBD_TESTS_UNIT_ORACLES_ORACLE_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd::oracle_test {

inline double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// SparseVector::Dot's documented order, written out: the dense y's non-zeros in index order
// dealt to four partial sums (the j-th non-zero to sum j mod 4), then (s0 + s1) + (s2 + s3).
inline double FourSumDot(const std::vector<double>& y, const std::vector<double>& x) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  size_t j = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] != 0.0) s[j++ % 4] += y[i] * x[i];
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// MakeOracle that must succeed (aborts the test binary otherwise: a setup bug, not a result).
inline std::unique_ptr<Oracle> MakeOk(const OracleSpec& spec, int64_t dimension,
                                      std::optional<Sense> sense) {
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = MakeOracle(spec, dimension, sense);
  if (!oracle.ok()) {
    std::fprintf(stderr, "MakeOracle failed: %s\n", oracle.status().ToString().c_str());
    std::abort();
  }
  return *std::move(oracle);
}

// Succeeds when `status` is INVALID_ARGUMENT and its message starts with `field`.
inline ::testing::AssertionResult IsInvalidArgumentNaming(const absl::Status& status,
                                                          absl::string_view field) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected INVALID_ARGUMENT, got " << status;
  }
  if (!absl::StartsWith(status.message(), field)) {
    return ::testing::AssertionFailure()
           << "message does not start with '" << field << "': " << status.message();
  }
  return ::testing::AssertionSuccess();
}
template <typename T>
::testing::AssertionResult IsInvalidArgumentNaming(const absl::StatusOr<T>& result,
                                                   absl::string_view field) {
  if (result.ok()) return ::testing::AssertionFailure() << "expected an error, got OK";
  return IsInvalidArgumentNaming(result.status(), field);
}

struct Solved {
  std::vector<double> y;  // dense
  int64_t clamped = 0;
};

// Solves θ (which a clamping oracle may modify) and checks the output contract: indices in
// [0, d) strictly increasing, non-zero values, at most max_nonzeros() of them, values 1 when
// binary_solutions().
inline Solved SolveDense(const Oracle& oracle, OracleWorkspace& workspace,
                         std::vector<double>& theta) {
  const int64_t d = oracle.dimension();
  EXPECT_EQ(static_cast<int64_t>(theta.size()), d);
  SparseVector y(d);
  y.Push(0, 42.0);  // Solve must clear
  Solved solved;
  solved.clamped = oracle.Solve(absl::MakeSpan(theta), workspace, y);
  EXPECT_LE(static_cast<int64_t>(y.size()), oracle.max_nonzeros());
  for (size_t k = 0; k < y.size(); ++k) {
    EXPECT_GE(y.index(k), 0);
    EXPECT_LT(y.index(k), d);
    if (k > 0) {
      EXPECT_LT(y.index(k - 1), y.index(k)) << "indices must increase";
    }
    EXPECT_NE(y.value(k), 0.0);
    if (oracle.binary_solutions()) {
      EXPECT_EQ(y.value(k), 1.0);
    }
  }
  solved.y.assign(static_cast<size_t>(d), 0.0);
  y.ToDense(absl::MakeSpan(solved.y));
  // NaN when θ has NaN (0·NaN). Dot in its fixed order, bit for bit, and within rounding of
  // the plain sum.
  const double dense_value = Dot(solved.y, theta);
  if (!std::isnan(dense_value)) {
    const double value = y.Dot(theta);
    EXPECT_EQ(value, FourSumDot(solved.y, theta));
    double scale = 0.0;
    for (size_t i = 0; i < solved.y.size(); ++i) scale += std::fabs(solved.y[i] * theta[i]);
    if (std::isfinite(scale)) {
      EXPECT_NEAR(value, dense_value, 1e-12 * scale);
    } else {
      EXPECT_EQ(value, dense_value);  // ±∞ from an infinite θ_i
    }
  }
  return solved;
}

// A finite feasible set C, in a fixed enumeration order.
class FeasibleSet {
 public:
  // Adds y unless already present (keeps the first position).
  void Add(std::vector<double> y) {
    if (position_.emplace(y, points_.size()).second) points_.push_back(std::move(y));
  }
  size_t size() const { return points_.size(); }
  const std::vector<double>& operator[](size_t i) const { return points_[i]; }
  bool Contains(const std::vector<double>& y) const { return position_.count(y) > 0; }

  // The first point (in enumeration order) that maximizes (MAXIMIZE) or minimizes ⟨y, θ⟩,
  // and the optimal value.
  std::pair<size_t, double> Best(const std::vector<double>& theta, Sense sense) const {
    size_t best = 0;
    double best_value = Dot(points_[0], theta);
    for (size_t i = 1; i < points_.size(); ++i) {
      const double v = Dot(points_[i], theta);
      if (sense == Sense::kMaximize ? v > best_value : v < best_value) {
        best = i;
        best_value = v;
      }
    }
    return {best, best_value};
  }

 private:
  std::vector<std::vector<double>> points_;
  std::map<std::vector<double>, size_t> position_;
};

enum class Expect {
  kFirstOptimal,  // y is exactly the first optimal point of the enumeration (tie rule)
  kOptimal,       // y is feasible and optimal (ties may be broken any deterministic way)
};

// Solves a copy of θ and compares with brute force over `set` (on the θ the oracle saw, after
// any clamping). Returns what the oracle gave.
inline Solved ExpectMatchesBruteForce(const Oracle& oracle, OracleWorkspace& workspace,
                                      std::vector<double> theta, const FeasibleSet& set,
                                      Expect expect, double tolerance = 0.0) {
  Solved solved = SolveDense(oracle, workspace, theta);
  const auto [best, best_value] = set.Best(theta, oracle.sense());
  EXPECT_TRUE(set.Contains(solved.y)) << "infeasible y";
  EXPECT_NEAR(Dot(solved.y, theta), best_value, tolerance);
  if (expect == Expect::kFirstOptimal) {
    EXPECT_EQ(solved.y, set[best]);
  }
  return solved;
}

inline std::vector<double> UniformVector(std::mt19937_64& rng, size_t d, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(d);
  for (double& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> IntegerVector(std::mt19937_64& rng, size_t d, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<double> v(d);
  for (double& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> Negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

inline int RandomInt(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

inline constexpr Sense kBothSenses[] = {Sense::kMaximize, Sense::kMinimize};

// The indices of θ by key sign·θ_i (NaN ranks as −∞), best first (largest key) or worst first,
// ties in index order: the reference order of the top-k and ranking oracles.
inline std::vector<int> StableOrder(const std::vector<double>& theta, Sense sense,
                                    bool best_first) {
  const double inf = std::numeric_limits<double>::infinity();
  const double s = sense == Sense::kMaximize ? 1.0 : -1.0;
  auto key = [&](int i) {
    const double v = s * theta[static_cast<size_t>(i)];
    return std::isnan(v) ? -inf : v;
  };
  std::vector<int> order(theta.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return best_first ? key(a) > key(b) : key(a) < key(b); });
  return order;
}

}  // namespace perturbd::oracle_test

#endif  // PERTURBD_TESTS_UNIT_ORACLES_ORACLE_TEST_UTIL_H_
