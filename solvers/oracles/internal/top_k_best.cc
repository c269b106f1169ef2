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
  // The ranks, each pair compared once (as in the ranking oracle's float kernel): o in
  // registers of 8, a pair in blocks I < J compared from the later j — the earlier lanes i
  // count j where o_j > o_i (j after i: a tie does not count), and j counts the others,
  // #{i in I : o_i ≥ o_j} (i before j: a tie counts), from the same mask. Within a block, the
  // lanes after j take o_j > o_i − 1, the others o_j > o_i.
  constexpr int kBlocks = static_cast<int>(kRankedMax / 8);
  const int blocks = static_cast<int>((m + 7) / 8);
  const __m512i one = _mm512_set1_epi64(1);
  __m512i ob[kBlocks], rank[kBlocks];
#pragma GCC unroll 8
  for (int b = 0; b < kBlocks; ++b) {
    if (b < blocks) {
      ob[b] = _mm512_maskz_loadu_epi64(FirstLanes8(m - 8 * static_cast<size_t>(b)), o + 8 * b);
      rank[b] = _mm512_setzero_si512();
    }
  }
  alignas(64) int64_t earlier[kRankedMax];  // j's count of the blocks before its own
#pragma GCC unroll 8
  for (int J = 0; J < kBlocks; ++J) {
    if (J >= blocks) break;
    const size_t n_j = std::min<size_t>(8, m - 8 * static_cast<size_t>(J));
    const __m512i minus_one = _mm512_sub_epi64(ob[J], one);
    for (size_t l = 0; l < n_j; ++l) {
      const size_t j = 8 * static_cast<size_t>(J) + l;
      const __m512i oj = _mm512_set1_epi64(o[j]);
      int64_t before = 0;  // #{i before block J : o_i ≥ o_j}
#pragma GCC unroll 8
      for (int I = 0; I < kBlocks; ++I) {
        if (I < J) {
          const __mmask8 later = _mm512_cmpgt_epi64_mask(oj, ob[I]);
          rank[I] = _mm512_mask_add_epi64(rank[I], later, rank[I], one);
          before += 8 - __builtin_popcount(later);
        }
      }
      earlier[j] = before;
      const __mmask8 after_j = static_cast<__mmask8>((0xFFu << (l + 1)) & 0xFFu);
      const __m512i bound = _mm512_mask_blend_epi64(after_j, ob[J], minus_one);
      rank[J] = _mm512_mask_add_epi64(rank[J], _mm512_cmpgt_epi64_mask(oj, bound), rank[J], one);
    }
  }
  size_t count = 0;
#pragma GCC unroll 8
  for (int J = 0; J < kBlocks; ++J) {
    if (J >= blocks) break;
    const size_t j = 8 * static_cast<size_t>(J);
    const __mmask8 valid = FirstLanes8(m - j);
    const __m512i total = _mm512_add_epi64(rank[J], _mm512_maskz_loadu_epi64(valid, earlier + j));
    const __mmask8 chosen =
        _mm512_mask_cmplt_epi64_mask(valid, total, _mm512_set1_epi64(static_cast<int64_t>(k)));
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
