#include "solvers/oracles/internal/top_k_best.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "solvers/oracles/internal/top_k_buffer.h"

namespace perturbd {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define PERTURBD_TOP_K_BEST_AVX512 1
// GCC 12 reports its own intrinsics' passthrough operands as (maybe) uninitialized here (a
// known false positive of the masked builtins behind them).
#ifndef __clang__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The k best of the n candidates cand (ascending) of exact keys key, into best ascending, when
// at most kRankedMax of them have a key ≥ T (else false): only those can be among the k best,
// and of them the k of rank < k, rank_j = #{i < j: key_i ≥ key_j} + #{i > j: key_i > key_j} —
// the k-buffer's order, larger key first, then lower index — without its mispredicted
// insertions. On OrderedBits o: key_i ≥ key_j is o_i > o_j − 1.
__attribute__((target("avx512f"))) bool BestByRankAvx512(const int32_t* cand, const double* key,
                                                         size_t n, size_t k, double threshold,
                                                         double* best_key, int32_t* best) {
  alignas(64) int64_t o[kRankedMax];
  alignas(64) double kept[kRankedMax];
  alignas(64) int32_t index[kRankedMax];
  const __m512d t = _mm512_set1_pd(threshold);
  size_t m = 0;
  for (size_t j = 0; j < n; j += 8) {
    const __mmask8 valid = FirstLanes8(n - j);
    const __m512d x = _mm512_maskz_loadu_pd(valid, key + j);
    const __mmask8 pass = _mm512_mask_cmp_pd_mask(valid, x, t, _CMP_GE_OQ);
    const size_t c = static_cast<size_t>(__builtin_popcount(pass));
    if (m + c > kRankedMax) return false;
    const __mmask8 first_c = static_cast<__mmask8>((1u << c) - 1);
    _mm512_mask_storeu_epi64(o + m, first_c, _mm512_maskz_compress_epi64(pass, OrderedBits8(x)));
    _mm512_mask_storeu_pd(kept + m, first_c, _mm512_maskz_compress_pd(pass, x));
    _mm512_mask_storeu_epi32(
        index + m, first_c,
        _mm512_maskz_compress_epi32(pass, _mm512_maskz_loadu_epi32(valid, cand + j)));
    m += c;
  }
  const __m512i one = _mm512_set1_epi64(1);
  size_t count = 0;
  for (size_t j = 0; j < m; j += 8) {
    const __mmask8 valid = FirstLanes8(m - j);
    const __m512i later_bound = _mm512_maskz_loadu_epi64(valid, o + j);  // o_j: i after j
    const __m512i earlier_bound = _mm512_sub_epi64(later_bound, one);    // o_j − 1: i before j
    __m512i rank = _mm512_setzero_si512();
    for (size_t i = 0; i < m; ++i) {
      // The lanes of j > i, where i comes first and a tie counts.
      const __mmask8 after_i =
          i < j ? 0xFF : static_cast<__mmask8>(0xFFu << std::min<size_t>(i - j + 1, 8));
      const __m512i bound = _mm512_mask_blend_epi64(after_i, later_bound, earlier_bound);
      rank = _mm512_mask_add_epi64(rank, _mm512_cmpgt_epi64_mask(_mm512_set1_epi64(o[i]), bound),
                                   rank, one);
    }
    const __mmask8 chosen =
        _mm512_mask_cmplt_epi64_mask(valid, rank, _mm512_set1_epi64(static_cast<int64_t>(k)));
    const int c = __builtin_popcount(chosen);
    _mm512_mask_storeu_epi32(
        best + count, static_cast<__mmask16>((1u << c) - 1),
        _mm512_maskz_compress_epi32(chosen, _mm512_maskz_loadu_epi32(valid, index + j)));
    _mm512_mask_storeu_pd(best_key + count, static_cast<__mmask8>((1u << c) - 1),
                          _mm512_maskz_compress_pd(chosen, _mm512_maskz_load_pd(valid, kept + j)));
    count += static_cast<size_t>(c);
  }
  assert(count == k);
  return true;
}
#ifndef __clang__
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

double TopKOfCandidates(const int32_t* cand, const double* key, size_t n, size_t k,
                        double threshold, bool avx512, double* bk, int32_t* best) {
  if (k == 1) {
    // The first of the largest keys: cand is ascending.
    size_t at = 0;
    for (size_t j = 1; j < n; ++j) at = key[j] > key[at] ? j : at;
    best[0] = cand[at];
    bk[0] = key[at];
    return bk[0];
  }
  bool ranked = false;
#ifdef PERTURBD_TOP_K_BEST_AVX512
  ranked = avx512 && BestByRankAvx512(cand, key, n, k, threshold, bk, best);
#else
  (void)threshold;
  (void)avx512;
#endif
  if (!ranked) {
    size_t size = 0;
    for (size_t j = 0; j < n; ++j) OfferTopK(key[j], cand[j], k, size, bk, best);
    assert(size == k);
    std::sort(best, best + k);
  }
  double kth = std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < k; ++j) kth = std::min(kth, bk[j]);
  return kth;
}

}  // namespace perturbd
