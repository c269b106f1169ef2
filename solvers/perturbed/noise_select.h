// Forward passes of selection oracles that transform only the noise that can matter.
//
// For argmax and top-k (Oracle::selection_k() = k) y_m is the indicator of the k best
// coordinates of η = θ + εZ_m (rounded to θ's dtype) in the order "larger key first, then
// lower index", key = η (MAXIMIZE) or −η (MINIMIZE). Such a y is decided by a handful of
// coordinates, so the float transforms (logarithms, Box–Muller), the bulk of a forward pass,
// are wasted on the others. NoiseSelector finds the same y from the Philox words:
//
//   1. The words of the row (NoiseWords) and, per coordinate, an upper bound of its key from
//      a table lookup: Z lies in [lo, hi] of its word's bucket (below), so η lies in
//      [fl(θ + ε·lo), fl(θ + ε·hi)] — every step of fl(θ + ε·z) is monotone in z for ε ≥ 0.
//   2. T = the smallest exact key of k seed coordinates with large bounds: at least k keys
//      are ≥ T, so a coordinate whose bound is < T is neither chosen nor tied.
//   3. The k best in TopKOracle's order (larger key first, then lower index) of the coordinates
//      whose bound is ≥ T, by their exact keys: its k-buffer scan, or ranks (AVX-512).
// The exact Z of a coordinate is NoiseFromWordsF: FillNoise's bits. So y is exactly what
// FillNoise + FormEta + the oracle give, ties included (the tests compare them).
//
// Samples of one row (the same θ, ε, sense and dtype: `same_row`) share a threshold instead:
// after a few samples through the steps above, T_row = (the smallest k-th best key seen) −
// (their spread), and per coordinate the least Z bound that can reach it, need_i, once in
// float rounded down with slack for every rounding of fl(θ + ε·z) (Needs). A later sample's
// candidates are the coordinates whose sign·Z bound is ≥ need_i — a compare of floats straight
// from the table lookup, no keys formed, stored or seeded (NORMAL: the bound max(±fl(r_hi·a),
// 0), one radius lookup; looser only where the bound is ≤ 0) — and when at least k of their exact
// keys are ≥ T_row, the k best of them are the k best of the row (any key outside is < T_row).
// A sample with fewer falls back to steps 1–3 and lowers T_row; the threshold is dropped for
// the row after a few such misses, or when it lets too many coordinates through.
//
// Buckets: of the 23-bit uniform index w = x >> 9 of a word (u = (2w + 1)·2⁻²⁴):
//   GUMBEL  Z = −ln(−ln u), by the float exponent and leading mantissa bit of 2²³−1−w
//           (47 buckets, finest where u → 1, where the large Z are);
//   NORMAL  Z = ±fl(r·cos 2πu₁) or ±fl(r·sin 2πu₁), r = √(−2 ln u₀): r by the same log-scale
//           bucket of w₀ (fine where u₀ → 0), cos / sin by the top 5 bits of w₁ (32 buckets),
//           combined by the sign rules of a product (|cos|, |sin| ≤ 1, r ≥ 0).
// The bucket bounds are the minima and maxima of the float transforms over all 2²³ uniforms
// of each bucket, evaluated once per process (tens of milliseconds, on first use): bounds of
// the functions as implemented, with no error analysis to trust.
#ifndef PERTURBD_SOLVERS_PERTURBED_NOISE_SELECT_H_
#define PERTURBD_SOLVERS_PERTURBED_NOISE_SELECT_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/types/span.h"
#include "solvers/oracles/oracle.h"
#include "solvers/perturbed/noise.h"

namespace perturbd {

class NoiseSelector {
 public:
  // The largest k the selector takes (its k-buffer is scanned linearly).
  static constexpr size_t kMaxK = 32;

  // For rows of d coordinates and the k best of them, 1 ≤ k ≤ min(d, kMaxK).
  // `vector_kernels` false: the portable bound kernels even on AVX-512 CPUs (tests).
  NoiseSelector(size_t d, size_t k, bool vector_kernels = true);

  // Computes the bucket bounds of both distributions now (≈ 40 ms once per process) instead of
  // in the first request that needs them. Thread-safe; later calls return at once.
  static void PrepareBounds();

  // y ← the k best coordinates, ascending, of η = θ + ε·Z[row] (row.single noise) computed in
  // double and rounded to float when `f32`, by key η (MAXIMIZE) or −η (MINIMIZE); eta[i] ← η_i
  // for every coordinate whose Z was computed: the chosen ones and those of `also_exact`
  // (ascending, distinct) included, the others left as they were. θ finite, ε ≥ 0. Returns
  // how many Z were computed.
  // `same_row`: θ, ε, f32, sense and the distribution are those of the previous call (another
  // sample of the same instance), which lets the row's threshold (above) carry over.
  size_t Select(const NoiseRow& row, absl::Span<const double> theta, double epsilon, bool f32,
                Sense sense, SparseVector& y, double* eta,
                absl::Span<const int32_t> also_exact = {}, bool same_row = false);

  // grad_nu[i] = ∇ν(Z_i) = 1 + ln u_i (i < d) of the last Select's row, GUMBEL noise, from the
  // words that Select drew: FillNoise's ∇ν bit for bit, without Philox or the log of Z.
  void GumbelGrad(absl::Span<double> grad_nu) const;

  // How many Select calls were decided by a row's threshold (tests).
  size_t threshold_samples() const { return threshold_samples_; }

 private:
  // key_hi_[i] ≥ sign·η_i for i < d; −∞ on the padding.
  void KeyBounds(const NoiseRow& row, const double* theta, double epsilon, bool f32, double sign);
  // y by the row's threshold; false (y and the counters untouched) on a miss.
  bool SelectAbove(const NoiseRow& row, const double* theta, double epsilon, bool f32, double sign,
                   SparseVector& y, double* eta, absl::Span<const int32_t> also_exact,
                   size_t& exact);
  // The end of both paths: the exact keys of the n candidates in candidate_ merged with
  // also_exact (n ← how many Z that computes) and, when at least k are ≥ threshold, y ← their
  // k best; returns the smallest key of those k, or NaN (y untouched) when fewer reach it.
  double BestOfCandidates(const NoiseRow& row, const double* theta, double epsilon, bool f32,
                          double sign, double threshold, absl::Span<const int32_t> also_exact,
                          size_t& n, SparseVector& y, double* eta);
  // Counts a sample decided by steps 1–3 whose k-th best key was `kth`, and sets the row's
  // threshold once enough were seen.
  void Observe(double kth, NoiseDistribution distribution, const double* theta, double epsilon,
               double sign);

  // The row's threshold (the header comment).
  struct RowThreshold {
    int observed = 0;  // samples through steps 1–3
    int misses = 0;
    double kth_lo = std::numeric_limits<double>::infinity();
    double kth_hi = -std::numeric_limits<double>::infinity();
    bool armed = false;
    double threshold = 0.0;
  };

  size_t d_;
  size_t k_;
  bool avx512_;
  std::vector<uint32_t> words_;   // 32·⌈d/32⌉
  std::vector<double> key_hi_;     // 16·⌈d/16⌉
  std::vector<double> block_max_;  // ⌈d/16⌉: maxima of key_hi_ over blocks of 16
  std::vector<double> best_key_;  // k
  std::vector<int32_t> best_index_;
  // 16·⌈d/16⌉ (ExactKeys transforms whole vectors of 16):
  std::vector<int32_t> candidate_;  // coordinates whose exact key is computed
  std::vector<int32_t> merged_;     // candidate_ ∪ also_exact
  std::vector<float> z_;
  std::vector<double> candidate_key_;  // d
  RowThreshold row_;
  std::vector<float> need_;  // 32·⌈d/32⌉: need_i for T_row, +∞ on the padding
  size_t threshold_samples_ = 0;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_NOISE_SELECT_H_
