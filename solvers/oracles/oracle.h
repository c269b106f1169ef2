// The combinatorial oracle interface.
//
// An oracle solves y*(θ) = argmax_{y ∈ C} ⟨y, θ⟩ (MAXIMIZE) or argmin (MINIMIZE) over a finite
// set C ⊂ R^d, for one cost/score vector θ of length d. Oracles know nothing of noise, gRPC or
// protobuf; `solvers/perturbed/` turns any of them into a perturbed optimizer.
//
// Creation: `MakeOracle(spec, d, sense)` (oracle_factory.h) validates the structure once per
// request (shapes, edges, k, sense) and returns a ready oracle, or INVALID_ARGUMENT naming the
// offending wire field (for example `problem.top_k.k`).
//
// Thread safety: an `Oracle` is immutable after creation and `Solve` is const, so one oracle is
// shared by every worker thread of a request. Each thread owns one `OracleWorkspace` (from
// `NewWorkspace`); a workspace is never used by two threads at once.
//
// Lifetimes: the workspace refers to nothing in the oracle; the oracle must outlive every
// `Solve` call. `Solve` allocates nothing: all scratch memory lives in the workspace (the one
// exception is linear_program, whose COIN-OR solvers allocate internally).
//
// Output: y is sparse, as a list of (index, value) pairs with strictly increasing indices and
// non-zero values, written into a `SparseVector` whose capacity is d (reserved once per
// thread). One-hot, k-hot and path solutions have few entries, which the estimators exploit
// (a Jacobian row update costs O(nnz · d), not O(d²)).
//
// Example:
//   ASSIGN_OR_RETURN(auto oracle, MakeOracle(ArgmaxSpec{}, /*d=*/5, Sense::kMaximize));
//   auto ws = oracle->NewWorkspace();
//   SparseVector y(oracle->dimension());
//   std::vector<double> theta = {0.1, 3.0, -1.0, 3.0, 0.0};
//   oracle->Solve(absl::MakeSpan(theta), *ws, y);  // y = {(1, 1.0)}: ties → lowest index
#ifndef PERTURBD_SOLVERS_ORACLES_ORACLE_H_
#define PERTURBD_SOLVERS_ORACLES_ORACLE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace perturbd {

enum class Sense { kMaximize, kMinimize };

absl::string_view SenseName(Sense sense);

// A sparse vector of length `dimension` with at most `dimension` non-zeros. The storage is
// reserved at construction so that `Clear` + `Push` in the hot loop never allocate.
class SparseVector {
 public:
  explicit SparseVector(int64_t dimension) : dimension_(dimension) {
    index_.reserve(static_cast<size_t>(dimension));
    value_.reserve(static_cast<size_t>(dimension));
  }
  int64_t dimension() const { return dimension_; }
  size_t size() const { return index_.size(); }
  void Clear() {
    index_.clear();
    value_.clear();
  }
  // Appends one non-zero. Callers push indices in increasing order.
  void Push(int64_t i, double v) {
    index_.push_back(static_cast<int32_t>(i));
    value_.push_back(v);
  }
  // Sets y to the non-zero entries of the dense x (at most dimension() long) in index order —
  // what Clear and a Push per non-zero give — without a branch per entry.
  template <typename T>
  void AssignDense(absl::Span<const T> x) {
    const size_t d = x.size();
    assert(d <= static_cast<size_t>(dimension_));
    index_.resize(d);  // within the reserved storage
    value_.resize(d);
    int32_t* __restrict index = index_.data();
    double* __restrict value = value_.data();
    size_t n = 0;
    for (size_t i = 0; i < d; ++i) {
      index[n] = static_cast<int32_t>(i);
      value[n] = static_cast<double>(x[i]);
      n += x[i] != 0 ? 1 : 0;
    }
    index_.resize(n);
    value_.resize(n);
  }
  absl::Span<const int32_t> indices() const { return index_; }
  absl::Span<const double> values() const { return value_; }
  int32_t index(size_t k) const { return index_[k]; }
  double value(size_t k) const { return value_[k]; }

  // ⟨y, x⟩ for a dense x of length dimension(), in a fixed order: the non-zeros in storage
  // order dealt to four partial sums (entry k to sum k mod 4), then (s0 + s1) + (s2 + s3).
  // Four chains instead of one: a ranking's y has d − 1 non-zeros, whose single chain of
  // dependent additions was a tenth of its forward pass.
  double Dot(absl::Span<const double> x) const {
    const size_t n = index_.size();
    const int32_t* __restrict index = index_.data();
    const double* __restrict value = value_.data();
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
      s0 += value[k] * x[index[k]];
      s1 += value[k + 1] * x[index[k + 1]];
      s2 += value[k + 2] * x[index[k + 2]];
      s3 += value[k + 3] * x[index[k + 3]];
    }
    if (k < n) s0 += value[k] * x[index[k]];
    if (k + 1 < n) s1 += value[k + 1] * x[index[k + 1]];
    if (k + 2 < n) s2 += value[k + 2] * x[index[k + 2]];
    return (s0 + s1) + (s2 + s3);
  }
  // Writes y densely into out (length dimension()).
  void ToDense(absl::Span<double> out) const;

 private:
  int64_t dimension_;
  std::vector<int32_t> index_;
  std::vector<double> value_;
};

// Per-thread scratch memory of one oracle. Oracles derive their own.
class OracleWorkspace {
 public:
  virtual ~OracleWorkspace() = default;

  // Forgets any state a solve leaves for the next one, so that the next solve's result is a
  // function of its θ alone. Only warm-starting oracles keep such state (linear_program: the
  // simplex basis); for them a warm start changes the work done and, at degenerate or
  // round-off level, which optimal y is returned. A caller that wants
  // results independent of which thread solved what calls Reset at the start of each
  // deterministic run of solves (the estimator: each work item). The default does nothing.
  virtual void Reset() {}
};

class Oracle {
 public:
  virtual ~Oracle() = default;

  // The wire name of the oracle (`argmax`, `top_k`, ...), used in metrics and messages.
  virtual absl::string_view name() const = 0;
  // d: the length of θ and y.
  virtual int64_t dimension() const = 0;
  // The sense this oracle was created with.
  virtual Sense sense() const = 0;
  // True when C ⊂ {0,1}^d (every non-zero of y is 1).
  virtual bool binary_solutions() const { return true; }
  // An upper bound on the number of non-zeros of any solution.
  virtual int64_t max_nonzeros() const { return dimension(); }
  // Rough cost of one solve in elementary operations, used for work limits and scheduling.
  virtual double cost_per_solve() const { return static_cast<double>(dimension()); }
  // k when y is the indicator of the k best entries of θ by key θ (MAXIMIZE) or −θ
  // (MINIMIZE), ties to the lower index (argmax: 1, top_k: k), else 0. Forward passes of such
  // oracles skip most of the noise transforms (solvers/perturbed/noise_select.h).
  virtual int64_t selection_k() const { return 0; }

  virtual std::unique_ptr<OracleWorkspace> NewWorkspace() const = 0;

  // Solves for θ = `theta` (length d) and writes y into `y` (cleared first).
  //
  // Oracles that need non-negative costs (Dijkstra) clamp negative entries of `theta` to zero
  // *in place*, so that the caller computes values and losses on the costs actually optimised,
  // and return how many entries they clamped. Every other oracle leaves `theta` as it is and
  // returns 0.
  virtual int64_t Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                        SparseVector& y) const = 0;

  // Solve, reporting a failure of this one solve. Only oracles for which `can_fail()` is true
  // ever fail: linear_program, with FAILED_PRECONDITION when the perturbed objective is
  // unbounded over the feasible set and RESOURCE_EXHAUSTED when a solve exceeds its time
  // limit. The message starts with the wire path of the problem (`problem.linear_program: `);
  // the caller adds which instance and sample failed. On failure y is empty (and `Solve`, which
  // cannot report it, leaves y empty and returns 0). The default calls Solve and never fails.
  virtual absl::StatusOr<int64_t> SolveChecked(absl::Span<double> theta, OracleWorkspace& workspace,
                                               SparseVector& y) const {
    return Solve(theta, workspace, y);
  }
  // True when SolveChecked can fail, so callers that use plain Solve know to switch.
  virtual bool can_fail() const { return false; }

  // How many θ one SolveBatch call takes at most: 1 (the default) for oracles without a batched
  // path; grid_shortest_path solves 8 at once in SIMD lanes. Never more than kMaxBatchWidth.
  static constexpr int kMaxBatchWidth = 8;
  virtual int batch_width() const { return 1; }
  // Solves each θ_j = thetas[j] (length d, j < batch_width()) into *ys[j], clamping in place as
  // Solve does, and returns the total clamped: the same y, bit for bit, as Solve on each θ_j,
  // so callers may batch or not without changing any result. Not for oracles that can fail.
  // The default calls Solve on each.
  virtual int64_t SolveBatch(absl::Span<const absl::Span<double>> thetas,
                             OracleWorkspace& workspace, absl::Span<SparseVector* const> ys) const;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ORACLE_H_
