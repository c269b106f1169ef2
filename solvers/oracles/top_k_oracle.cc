#include "solvers/oracles/top_k_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/top_k_best.h"
#include "solvers/oracles/internal/top_k_buffer.h"
#include "solvers/oracles/internal/validation.h"
#include "solvers/oracles/internal/vector_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

namespace perturbd {
namespace {

// Up to this k, a single scan keeping the k best so far in a small sorted buffer beats
// nth_element (for random scores it inserts about k·ln(d/k) times).
constexpr size_t kScanMaxK = 32;

// The scan tests blocks of this many keys at once.
constexpr size_t kScanBlock = 16;

// The k best keys sign·x[i] (descending; ties: lower index first) into bk / bi, 1 ≤ k < d.
//
// The k-buffer scan (OfferTopK, internal/top_k_buffer.h) in index order; NaN ranks as −∞.
// Run over any subsequence (in index order) that contains the top k, it returns them.
//
// Two passes pick such a subsequence: the maxima of the blocks of 16 keys (vector code), and
// T = the k-th largest of them. At least k keys (those maxima) are ≥ T, so a key < T is not in
// the top k: the scan visits only keys ≥ T, in blocks whose maximum is ≥ T (typically about
// k blocks of the d/16). The result is the plain scan's, ties included.
PERTURBD_ORACLE_VECTOR_CLONES
void ScanTopK(const double* __restrict x, size_t d, double sign, size_t k, double* __restrict bk,
              int32_t* __restrict bi, double* __restrict block_max) {
  constexpr double kMinusInf = -std::numeric_limits<double>::infinity();
  const size_t blocks = d / kScanBlock;  // whole blocks; the tail is always visited
  double threshold = kMinusInf;
  if (blocks >= 2 * k) {
    for (size_t g = 0; g < blocks; ++g) {
      const double* xb = x + g * kScanBlock;
      double m = kMinusInf;
#pragma omp simd reduction(max : m)
      for (size_t j = 0; j < kScanBlock; ++j) {
        const double v = sign * xb[j];
        m = v > m ? v : m;  // a NaN key is skipped
      }
      block_max[g] = m;
    }
    // T = the k-th largest block maximum (the k-buffer over the maxima).
    size_t size = 0;
    for (size_t g = 0; g < blocks; ++g) {
      OfferTopK(block_max[g], static_cast<int32_t>(g), k, size, bk, bi);
    }
    threshold = bk[k - 1];
  }
  size_t size = 0;
  auto visit = [&](size_t i) {
    const double v = sign * x[i];
    OfferTopK(std::isnan(v) ? kMinusInf : v, static_cast<int32_t>(i), k, size, bk, bi);
  };
  if (threshold == kMinusInf) {  // no useful bound (small d, or −∞ / NaN keys): visit all
    for (size_t i = 0; i < d; ++i) visit(i);
    return;
  }
  for (size_t g = 0; g < blocks; ++g) {
    if (!(block_max[g] >= threshold)) continue;
    for (size_t i = g * kScanBlock; i < (g + 1) * kScanBlock; ++i) {
      if (sign * x[i] >= threshold) visit(i);
    }
  }
  for (size_t i = blocks * kScanBlock; i < d; ++i) {
    if (sign * x[i] >= threshold) visit(i);
  }
}

// The indices i (ascending) with sign·x[i] ≥ t into out[0..d); their count. A NaN key is
// never collected.
PERTURBD_ORACLE_VECTOR_CLONES
size_t CollectAtLeast(const double* __restrict x, size_t d, double sign, double t,
                      int32_t* __restrict out) {
  size_t n = 0;
  for (size_t i = 0; i < d; ++i) {
    out[n] = static_cast<int32_t>(i);
    n += sign * x[i] >= t ? 1 : 0;
  }
  return n;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
// CollectAtLeast sixteen keys at a time: a compare mask, the passing lanes' indices compressed
// in a register and stored under a mask (a compress straight to memory is slow on some CPUs).
__attribute__((target("avx512f"))) size_t CollectAtLeastAvx512(const double* x, size_t d,
                                                               double sign, double t,
                                                               int32_t* out) {
  const __m512d s = _mm512_set1_pd(sign);
  const __m512d threshold = _mm512_set1_pd(t);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  size_t n = 0;
  for (size_t i = 0; i < d; i += 16) {
    const size_t left = d - i;
    const __mmask8 lo = left >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << left) - 1);
    const __mmask8 hi = left >= 16  ? __mmask8{0xFF}
                        : left <= 8 ? __mmask8{0}
                                    : static_cast<__mmask8>((1u << (left - 8)) - 1);
    const __mmask8 a = _mm512_mask_cmp_pd_mask(
        lo, _mm512_mul_pd(s, _mm512_maskz_loadu_pd(lo, x + i)), threshold, _CMP_GE_OQ);
    const __mmask8 b = _mm512_mask_cmp_pd_mask(
        hi, _mm512_mul_pd(s, _mm512_maskz_loadu_pd(hi, x + i + 8)), threshold, _CMP_GE_OQ);
    const __mmask16 pass = static_cast<__mmask16>(a | (static_cast<unsigned>(b) << 8));
    const int m = __builtin_popcount(pass);
    _mm512_mask_storeu_epi32(out + n, static_cast<__mmask16>((1u << m) - 1),
                             _mm512_maskz_compress_epi32(pass, index));
    n += static_cast<size_t>(m);
    index = _mm512_add_epi32(index, step);
  }
  return n;
}
#endif

size_t Collect(const double* x, size_t d, double sign, double t, int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
  if (CpuHasAvx512F()) return CollectAtLeastAvx512(x, d, sign, t, out);
#endif
  return CollectAtLeast(x, d, sign, t, out);
}

// A hint is worth its upkeep from this many keys per slot of the k2-buffer; its margin is
// halved when a pass collects more than kHintMaxCollectedPerSlot·k2 keys.
constexpr size_t kHintMinKeysPerSlot = 4;
constexpr size_t kHintMaxCollectedPerSlot = 2;
// Misses after which a workspace scans in full until its next Reset.
constexpr int kHintMaxMisses = 4;

struct TopKWorkspace final : OracleWorkspace {
  explicit TopKWorkspace(size_t d)
      : key(d),
        order(d),
        chosen(d, 0),
        best_key(d),
        best_index(d),
        block_max(d / 16 + 1),
        candidates(d) {}
  void Reset() override {
    hinted = false;
    misses = 0;
  }
  std::vector<double> key;  // θ (MAXIMIZE) or −θ (MINIMIZE); NaN → −∞; larger is better
  std::vector<int32_t> order;   // indices; the first k are the chosen ones after selection
  std::vector<uint8_t> chosen;  // all zero between solves
  // The scan's buffer: the best keys so far in decreasing (key, −index) order.
  std::vector<double> best_key;
  std::vector<int32_t> best_index;
  std::vector<double> block_max;  // the scan's maxima of blocks of 16 keys
  // The hint (it decides the work, never the result): the keys ≥ hint_kth − hint_gap, the
  // previous solve's k-th best key less a margin, are likely to hold this solve's top k —
  // the solves between two Resets are usually the perturbed copies of one θ.
  std::vector<int32_t> candidates;
  bool hinted = false;
  int misses = 0;
  double hint_kth = 0.0;
  double hint_gap = 0.0;
};

// The indices of the k best keys into ws.best_index[0..k) (in some order): ScanTopK's.
//
// With a hint, one vector pass collects the keys ≥ T = hint_kth − hint_gap. When there are
// at least k of them, the k-th best key is ≥ T, so they hold the top k, and TopKOfCandidates
// picks exactly ScanTopK's (ties to the lower index). Otherwise (a miss) ScanTopK runs with a
// buffer of k2 > k, which gives the top k as its first k entries and the margin for the next
// hint: the gap between the k-th and the k2-th best keys, at least twice the previous one
// after a miss; halved when a pass collects too many keys.
void SelectTopK(const double* x, size_t d, double sign, size_t k, TopKWorkspace& ws) {
  double* bk = ws.best_key.data();
  int32_t* bi = ws.best_index.data();
  const size_t k2 = std::min(d - 1, 2 * k + 8);
  if (d < kHintMinKeysPerSlot * k2) {
    ScanTopK(x, d, sign, k, bk, bi, ws.block_max.data());
    return;
  }
  if (ws.hinted) {
    int32_t* cand = ws.candidates.data();
    const double threshold = ws.hint_kth - ws.hint_gap;
    const size_t n = Collect(x, d, sign, threshold, cand);
    if (n >= k) {
      double* key = ws.key.data();
      for (size_t j = 0; j < n; ++j) key[j] = sign * x[cand[j]];
      ws.hint_kth = TopKOfCandidates(cand, key, n, k, threshold, CpuHasAvx512F(), bk, bi);
      if (n > kHintMaxCollectedPerSlot * k2) ws.hint_gap *= 0.5;
      return;
    }
    ws.hinted = false;
    ++ws.misses;
  }
  if (ws.misses >= kHintMaxMisses) {
    ScanTopK(x, d, sign, k, bk, bi, ws.block_max.data());
    return;
  }
  ScanTopK(x, d, sign, k2, bk, bi, ws.block_max.data());
  const double gap = std::max(bk[k - 1] - bk[k2 - 1], ws.misses > 0 ? 2.0 * ws.hint_gap : 0.0);
  // A finite threshold only: NaN keys rank as −∞ in the scan but are never collected.
  if (std::isfinite(bk[k - 1]) && std::isfinite(gap) && std::isfinite(bk[k - 1] - gap)) {
    ws.hinted = true;
    ws.hint_kth = bk[k - 1];
    ws.hint_gap = gap;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TopKOracle>> TopKOracle::Create(const TopKSpec& spec,
                                                               int64_t dimension, Sense sense) {
  if (spec.k == 0) {
    return absl::InvalidArgumentError("problem.top_k.k: must be >= 1, got 0");
  }
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  if (static_cast<int64_t>(spec.k) > dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("problem.top_k.k: must be in [1, d] with d = ", dimension, ", got ", spec.k));
  }
  return std::unique_ptr<TopKOracle>(new TopKOracle(dimension, spec.k, sense));
}

std::unique_ptr<OracleWorkspace> TopKOracle::NewWorkspace() const {
  return std::make_unique<TopKWorkspace>(static_cast<size_t>(dimension_));
}

int64_t TopKOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                          SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  auto& ws = static_cast<TopKWorkspace&>(workspace);
  y.Clear();
  const size_t d = theta.size();
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  const size_t k = static_cast<size_t>(k_);
  if (k < d && k <= kScanMaxK) {
    int32_t* bi = ws.best_index.data();
    SelectTopK(theta.data(), d, sign, k, ws);
    std::sort(bi, bi + k);
    for (size_t j = 0; j < k; ++j) y.Push(bi[j], 1.0);
    return 0;
  }
  // Mapping NaN to −∞ keeps the comparator a strict weak order, which nth_element needs to
  // stay in bounds.
  for (size_t i = 0; i < d; ++i) {
    const double v = sign * theta[i];
    ws.key[i] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
  }
  if (k < d) {
    std::iota(ws.order.begin(), ws.order.end(), 0);
    const double* key = ws.key.data();
    std::nth_element(
        ws.order.begin(), ws.order.begin() + static_cast<ptrdiff_t>(k - 1), ws.order.end(),
        [key](int32_t a, int32_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
    for (size_t j = 0; j < k; ++j) ws.chosen[ws.order[j]] = 1;
    for (size_t i = 0; i < d; ++i) {
      if (ws.chosen[i]) {
        y.Push(static_cast<int64_t>(i), 1.0);
        ws.chosen[i] = 0;
      }
    }
  } else {
    for (size_t i = 0; i < d; ++i) y.Push(static_cast<int64_t>(i), 1.0);
  }
  return 0;
}

}  // namespace perturbd
