#include "solvers/oracles/knapsack_oracle.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"

namespace perturbd {
namespace {

struct KnapsackWorkspace final : OracleWorkspace {
  KnapsackWorkspace(size_t items, size_t dp_items, size_t capacity)
      : words_per_row(dp_items == 0 ? 0 : (capacity + 1 + 63) / 64),
        take(dp_items * words_per_row),
        best(dp_items == 0 ? 0 : capacity + 1),
        chosen(items, 0) {}
  size_t words_per_row;
  std::vector<uint64_t> take;   // bit c of row r: item r improves the best value at capacity c
  std::vector<double> best;     // best[c]: the best value of the items so far with weight ≤ c
  std::vector<uint8_t> chosen;  // all zero between solves
};

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KnapsackOracle>> KnapsackOracle::Create(const KnapsackSpec& spec,
                                                                       int64_t dimension,
                                                                       Sense sense) {
  const size_t n = spec.weights.size();
  if (n == 0) {
    return absl::InvalidArgumentError(
        "problem.knapsack.weights: needs at least one item (d, the number of items, must be "
        ">= 1)");
  }
  for (size_t i = 0; i < n; ++i) {
    if (spec.weights[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("problem.knapsack.weights[", i, "]: must be >= 0, got ", spec.weights[i]));
    }
  }
  if (spec.capacity < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("problem.knapsack.capacity: must be >= 0, got ", spec.capacity));
  }
  RETURN_IF_ERROR(oracle_internal::CheckStructuralDimension(
      dimension, static_cast<int64_t>(n), "the number of items, len(problem.knapsack.weights)"));

  auto oracle = std::unique_ptr<KnapsackOracle>(new KnapsackOracle());
  oracle->dimension_ = dimension;
  oracle->sense_ = sense;
  // Reduction: heavy items out, zero-weight items free, the rest divided by their gcd.
  std::vector<int32_t> positive;
  int64_t gcd = 0;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t w = spec.weights[i];
    if (w > spec.capacity) continue;
    if (w == 0) {
      oracle->free_items_.push_back(static_cast<int32_t>(i));
    } else {
      positive.push_back(static_cast<int32_t>(i));
      gcd = std::gcd(gcd, w);
      total = SaturatingAdd(total, w);
    }
  }
  // The most items that fit together: the lightest ones first.
  std::vector<int64_t> sorted;
  for (int32_t i : positive) sorted.push_back(spec.weights[i]);
  std::sort(sorted.begin(), sorted.end());
  int64_t fitting = 0;
  int64_t load = 0;
  for (int64_t w : sorted) {
    load = SaturatingAdd(load, w);
    if (load > spec.capacity) break;
    ++fitting;
  }
  oracle->max_nonzeros_ = static_cast<int64_t>(oracle->free_items_.size()) + fitting;

  if (total <= spec.capacity) {
    // Everything fits: no DP, each item is taken on its own merit.
    oracle->free_items_.insert(oracle->free_items_.end(), positive.begin(), positive.end());
    std::sort(oracle->free_items_.begin(), oracle->free_items_.end());
    return oracle;
  }
  const int64_t capacity = spec.capacity / gcd;  // < total / gcd
  // (n' + 64)·(C' + 1) without overflow: C' + 1 ≤ total / gcd fits in int64.
  const int64_t row_bits = static_cast<int64_t>(positive.size()) + 64;
  if (capacity + 1 > kMaxTableBits / row_bits) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "problem.knapsack.capacity: the dynamic-programming table for ", positive.size(),
        " items and capacity ", capacity, " (after dividing the weights by their gcd ", gcd,
        ") needs (items + 64)·(capacity + 1) bits, over the limit of ", kMaxTableBits,
        "; use linear_program with integer flags for such knapsacks"));
  }
  oracle->capacity_ = capacity;
  oracle->dp_items_ = std::move(positive);
  for (int32_t i : oracle->dp_items_) oracle->dp_weights_.push_back(spec.weights[i] / gcd);
  return oracle;
}

double KnapsackOracle::cost_per_solve() const {
  const double rows = static_cast<double>(dp_items_.size());
  const double cells = dp_items_.empty() ? 0.0 : rows * static_cast<double>(capacity_ + 1);
  return static_cast<double>(dimension_) + 1.5 * cells + rows * static_cast<double>(capacity_) / 64;
}

std::unique_ptr<OracleWorkspace> KnapsackOracle::NewWorkspace() const {
  return std::make_unique<KnapsackWorkspace>(static_cast<size_t>(dimension_), dp_items_.size(),
                                             static_cast<size_t>(capacity_));
}

int64_t KnapsackOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                              SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  auto& ws = static_cast<KnapsackWorkspace&>(workspace);
  y.Clear();
  // Negation is exact, so MINIMIZE(θ) is MAXIMIZE(−θ) bit for bit.
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  for (int32_t i : free_items_) {
    if (sign * theta[i] > 0.0) ws.chosen[i] = 1;
  }
  if (!dp_items_.empty()) {
    const size_t capacity = static_cast<size_t>(capacity_);
    const size_t words = ws.words_per_row;
    double* best = ws.best.data();
    std::fill(best, best + capacity + 1, 0.0);
    for (size_t r = 0; r < dp_items_.size(); ++r) {
      uint64_t* take = ws.take.data() + r * words;
      std::fill(take, take + words, uint64_t{0});
      const size_t w = static_cast<size_t>(dp_weights_[r]);
      const double value = sign * theta[dp_items_[r]];
      // Capacities in decreasing order, so best[c − w] still excludes item r. Strict `>`: an
      // item that only ties is left out (NaN never compares greater).
      for (size_t c = capacity; c >= w; --c) {  // w ≥ 1: no wrap-around
        const double candidate = best[c - w] + value;
        if (candidate > best[c]) {
          best[c] = candidate;
          take[c >> 6] |= uint64_t{1} << (c & 63);
        }
      }
    }
    size_t c = capacity;
    for (size_t r = dp_items_.size(); r-- > 0;) {
      const uint64_t* take = ws.take.data() + r * words;
      if ((take[c >> 6] >> (c & 63)) & 1) {
        ws.chosen[dp_items_[r]] = 1;
        c -= static_cast<size_t>(dp_weights_[r]);
      }
    }
  }
  for (int64_t i = 0; i < dimension_; ++i) {
    if (ws.chosen[i]) {
      y.Push(i, 1.0);
      ws.chosen[i] = 0;
    }
  }
  return 0;
}

}  // namespace perturbd
