#include "solvers/oracles/ranking_oracle.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "solvers/base/status_macros.h"
#include "solvers/oracles/internal/validation.h"
#include "solvers/oracles/internal/vector_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

namespace perturbd {
namespace {

// Up to this d the ranks are counted (O(d²) vector compares) instead of sorted.
constexpr size_t kCountMaxD = 192;

// rank[i] = #{j : (key_j, j) < (key_i, i)}, eight i at a time against every j: the counts stay
// in one vector register (no horizontal sums), and the j ranges below and above the block need
// no index comparison (j < i: key_j ≤ key_i counts; j > i: key_j < key_i).
PERTURBD_ORACLE_VECTOR_CLONES
void CountRanks(const double* __restrict key, size_t d, int32_t* __restrict rank) {
  constexpr size_t kLanes = 16;
  for (size_t i0 = 0; i0 < d; i0 += kLanes) {
    const size_t n = std::min(kLanes, d - i0);
    double ki[kLanes], cnt[kLanes];
    for (size_t l = 0; l < kLanes; ++l) {
      // Padding lanes get +∞ (their counts are discarded).
      ki[l] = l < n ? key[i0 + l] : std::numeric_limits<double>::infinity();
      cnt[l] = 0.0;
    }
    for (size_t j = 0; j < i0; ++j) {
      const double kj = key[j];
#pragma omp simd
      for (size_t l = 0; l < kLanes; ++l) cnt[l] += kj <= ki[l] ? 1.0 : 0.0;
    }
    for (size_t j = i0; j < i0 + n; ++j) {
      const double kj = key[j];
#pragma omp simd
      for (size_t l = 0; l < kLanes; ++l) {
        cnt[l] += (kj < ki[l] || (kj == ki[l] && j < i0 + l)) ? 1.0 : 0.0;
      }
    }
    for (size_t j = i0 + n; j < d; ++j) {
      const double kj = key[j];
#pragma omp simd
      for (size_t l = 0; l < kLanes; ++l) cnt[l] += kj < ki[l] ? 1.0 : 0.0;
    }
    for (size_t l = 0; l < n; ++l) rank[i0 + l] = static_cast<int32_t>(cnt[l]);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define PERTURBD_RANKING_AVX512 1
// GCC 12 reports its own _mm512_cvtepi64_epi32's passthrough operand as maybe uninitialized (a
// known false positive of the masked builtin behind it).
#ifndef __clang__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// CountRanks with the sixteen counts held in two registers across the whole j loop (the
// compiler's version keeps them in memory, so each j waits on a store-to-load round trip):
// per j one broadcast, two compares into masks and two masked integer increments.
__attribute__((target("avx512f"))) void CountRanksAvx512(const double* __restrict key, size_t d,
                                                         int32_t* __restrict rank) {
  const __m512d inf = _mm512_set1_pd(std::numeric_limits<double>::infinity());
  const __m512i one = _mm512_set1_epi64(1);
  for (size_t i0 = 0; i0 < d; i0 += 16) {
    const size_t n = std::min<size_t>(16, d - i0);
    // Padding lanes get +∞ (their counts are discarded).
    const __mmask8 valid0 = static_cast<__mmask8>(n >= 8 ? 0xFF : (1u << n) - 1);
    const __mmask8 valid1 = static_cast<__mmask8>(n >= 16 ? 0xFF : n > 8 ? (1u << (n - 8)) - 1 : 0);
    const __m512d k0 = _mm512_mask_loadu_pd(inf, valid0, key + i0);
    const __m512d k1 = _mm512_mask_loadu_pd(inf, valid1, key + i0 + 8);
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
    for (size_t j = 0; j < i0; ++j) {  // key_j ≤ key_i
      const __m512d kj = _mm512_set1_pd(key[j]);
      c0 = _mm512_mask_add_epi64(c0, _mm512_cmp_pd_mask(kj, k0, _CMP_LE_OQ), c0, one);
      c1 = _mm512_mask_add_epi64(c1, _mm512_cmp_pd_mask(kj, k1, _CMP_LE_OQ), c1, one);
    }
    for (size_t j = i0; j < i0 + n; ++j) {  // key_j < key_i, or equal and j < i
      const __m512d kj = _mm512_set1_pd(key[j]);
      const uint32_t after = (0xFFFFu << (j - i0 + 1)) & 0xFFFFu;  // lanes i with i > j
      const __mmask8 lt0 = _mm512_cmp_pd_mask(kj, k0, _CMP_LT_OQ);
      const __mmask8 lt1 = _mm512_cmp_pd_mask(kj, k1, _CMP_LT_OQ);
      const __mmask8 eq0 = _mm512_mask_cmp_pd_mask(static_cast<__mmask8>(after), kj, k0, _CMP_EQ_OQ);
      const __mmask8 eq1 =
          _mm512_mask_cmp_pd_mask(static_cast<__mmask8>(after >> 8), kj, k1, _CMP_EQ_OQ);
      c0 = _mm512_mask_add_epi64(c0, static_cast<__mmask8>(lt0 | eq0), c0, one);
      c1 = _mm512_mask_add_epi64(c1, static_cast<__mmask8>(lt1 | eq1), c1, one);
    }
    for (size_t j = i0 + n; j < d; ++j) {  // key_j < key_i
      const __m512d kj = _mm512_set1_pd(key[j]);
      c0 = _mm512_mask_add_epi64(c0, _mm512_cmp_pd_mask(kj, k0, _CMP_LT_OQ), c0, one);
      c1 = _mm512_mask_add_epi64(c1, _mm512_cmp_pd_mask(kj, k1, _CMP_LT_OQ), c1, one);
    }
    alignas(32) int32_t counts[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(counts), _mm512_cvtepi64_epi32(c0));
    _mm256_store_si256(reinterpret_cast<__m256i*>(counts + 8), _mm512_cvtepi64_epi32(c1));
    std::copy(counts, counts + n, rank + i0);
  }
}

// rank_i = #{j : key_j < key_i, or key_j = key_i and j < i} for float keys, d ≤ kCountMaxD,
// each pair compared once. The keys sit in R = ⌈d/16⌉ registers (blocks). A pair i < j in
// blocks I < J is compared from j: the lanes of block I with key_j < key_i count j (a tie
// does not: j is after i), and j counts the others, #{i in I : key_i ≤ key_j} (a tie does:
// i is before j), one popcount of the same mask. Pairs within a block take the tie-aware
// compare (i after j counts a tie). So 16·J + 2 compares per key of block J instead of 16·R
// (a tenth of a ranking forward, d = 100), and ties need no second pass.
__attribute__((target("avx512f"))) void TriangleRanksAvx512F32(const float* __restrict key,
                                                               size_t d, int32_t* __restrict rank) {
  constexpr int kMaxBlocks = static_cast<int>(kCountMaxD / 16);
  const int blocks = static_cast<int>((d + 15) / 16);
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  const __m512i one = _mm512_set1_epi32(1);
  __m512 k[kMaxBlocks];
  __m512i c[kMaxBlocks];
#pragma GCC unroll 12
  for (int b = 0; b < kMaxBlocks; ++b) {
    if (b < blocks) {
      const size_t left = d - 16 * static_cast<size_t>(b);
      const __mmask16 valid = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1);
      k[b] = _mm512_mask_loadu_ps(inf, valid, key + 16 * b);  // padding: +∞, never counted
      c[b] = _mm512_setzero_si512();
    }
  }
  alignas(64) int32_t earlier[kCountMaxD];  // j's count of the blocks before its own
#pragma GCC unroll 12
  for (int J = 0; J < kMaxBlocks; ++J) {
    if (J >= blocks) break;
    const size_t n = std::min<size_t>(16, d - 16 * static_cast<size_t>(J));
    for (size_t l = 0; l < n; ++l) {
      const size_t j = 16 * static_cast<size_t>(J) + l;
      const __m512 kj = _mm512_set1_ps(key[j]);
      int above = 0;  // #{i before J : key_j < key_i}
#pragma GCC unroll 12
      for (int I = 0; I < kMaxBlocks; ++I) {
        if (I < J) {
          const __mmask16 m = _mm512_cmp_ps_mask(kj, k[I], _CMP_LT_OQ);
          c[I] = _mm512_mask_add_epi32(c[I], m, c[I], one);
          above += __builtin_popcount(m);
        }
      }
      earlier[j] = 16 * J - above;
      // Within the block: key_j < key_i, or equal and i after j.
      const __mmask16 after = static_cast<__mmask16>((0xFFFFu << (l + 1)) & 0xFFFFu);
      const __mmask16 hit =
          static_cast<__mmask16>(_mm512_cmp_ps_mask(kj, k[J], _CMP_LT_OQ) |
                                 _mm512_mask_cmp_ps_mask(after, kj, k[J], _CMP_EQ_OQ));
      c[J] = _mm512_mask_add_epi32(c[J], hit, c[J], one);
    }
  }
  alignas(64) int32_t counts[kCountMaxD];
#pragma GCC unroll 12
  for (int b = 0; b < kMaxBlocks; ++b) {
    if (b < blocks) _mm512_store_si512(counts + 16 * b, c[b]);
  }
  for (size_t i = 0; i < d; ++i) rank[i] = counts[i] + earlier[i];  // earlier: 0 in block 0
}
#ifndef __clang__
#pragma GCC diagnostic pop
#endif
#endif

// True when every key is a float (FLOAT32 requests: η is rounded to float), with the floats in
// key32: comparing them is comparing the doubles.
PERTURBD_ORACLE_VECTOR_CLONES
bool AllFloats(const double* __restrict key, size_t d, float* __restrict key32) {
  int inexact = 0;
#pragma omp simd reduction(| : inexact)
  for (size_t i = 0; i < d; ++i) {
    const float f = static_cast<float>(key[i]);
    key32[i] = f;
    inexact |= static_cast<double>(f) != key[i] ? 1 : 0;
  }
  return inexact == 0;
}

// key[i] = sign·x[i], NaN → −∞: a total order even with NaN (std::sort reads out of bounds
// under an inconsistent one).
PERTURBD_ORACLE_VECTOR_CLONES
void Keys(const double* __restrict x, size_t d, double sign, double* __restrict key) {
#pragma omp simd
  for (size_t i = 0; i < d; ++i) {
    const double v = sign * x[i];
    key[i] = v != v ? -std::numeric_limits<double>::infinity() : v;
  }
}

// The ranking's total order: (key_a, a) before (key_b, b) — ties go to the lower index.
inline bool Before(double key_a, int32_t a, double key_b, int32_t b) {
  return key_a < key_b || (key_a == key_b && a < b);
}

// Whether `rank` (a permutation of 0 … d−1) ranks the double keys: whether the keys it puts
// in order are in order, ties by index (a sequence whose neighbours are in order is sorted).
// order and sorted are scratch of d.
PERTURBD_ORACLE_VECTOR_CLONES
bool RanksSortKeys(const double* __restrict key, size_t d, const int32_t* __restrict rank,
                   int32_t* __restrict order, double* __restrict sorted) {
  for (size_t i = 0; i < d; ++i) order[rank[i]] = static_cast<int32_t>(i);
#pragma omp simd
  for (size_t r = 0; r < d; ++r) sorted[r] = key[order[r]];
  int out_of_order = 0;
#pragma omp simd reduction(| : out_of_order)
  for (size_t r = 1; r < d; ++r) {
    out_of_order |= Before(sorted[r - 1], order[r - 1], sorted[r], order[r]) ? 0 : 1;
  }
  return out_of_order == 0;
}

// Double keys are ranked by their roundings to float (the float kernel compares each pair once
// in sixteen lanes; the double kernel compares each twice in eight). Rounding is monotone, so
// those ranks can be wrong only among keys that round to one float (or past float's range),
// where the float kernel breaks the tie by index: RanksSortKeys finds any such pair out of
// order, and the double kernel counts again. Keys that all are floats (FLOAT32 requests) are
// ranked exactly by the float kernel alone.
void Ranks(const double* key, size_t d, int32_t* rank, float* key32, int32_t* order,
           double* sorted) {
#ifdef PERTURBD_RANKING_AVX512
  if (CpuHasAvx512F()) {
    const bool floats = AllFloats(key, d, key32);
    TriangleRanksAvx512F32(key32, d, rank);
    if (!floats && !RanksSortKeys(key, d, rank, order, sorted)) CountRanksAvx512(key, d, rank);
    return;
  }
#endif
  (void)key32;
  (void)order;
  (void)sorted;
  CountRanks(key, d, rank);
}

struct RankingWorkspace final : OracleWorkspace {
  explicit RankingWorkspace(size_t d) : key(d), key32(d), sorted(d), order(d), rank(d) {}
  std::vector<double> key;     // θ (MAXIMIZE) or −θ (MINIMIZE); NaN → −∞
  std::vector<float> key32;    // key rounded to float (the counting kernel)
  std::vector<double> sorted;  // key in rank order (Ranks' check of the float ranks)
  std::vector<int32_t> order;  // order[r] = the index with rank r
  std::vector<int32_t> rank;   // rank[i]
};

}  // namespace

absl::StatusOr<std::unique_ptr<RankingOracle>> RankingOracle::Create(int64_t dimension,
                                                                     Sense sense) {
  RETURN_IF_ERROR(oracle_internal::CheckDimension(dimension));
  return std::unique_ptr<RankingOracle>(new RankingOracle(dimension, sense));
}

double RankingOracle::cost_per_solve() const {
  const double d = static_cast<double>(dimension_);
  return d * std::log2(d + 1.0) + 3.0 * d;
}

std::unique_ptr<OracleWorkspace> RankingOracle::NewWorkspace() const {
  return std::make_unique<RankingWorkspace>(static_cast<size_t>(dimension_));
}

int64_t RankingOracle::Solve(absl::Span<double> theta, OracleWorkspace& workspace,
                             SparseVector& y) const {
  assert(static_cast<int64_t>(theta.size()) == dimension_);
  auto& ws = static_cast<RankingWorkspace&>(workspace);
  y.Clear();
  const size_t d = theta.size();
  const double sign = sense_ == Sense::kMaximize ? 1.0 : -1.0;
  Keys(theta.data(), d, sign, ws.key.data());
  if (d <= kCountMaxD) {
    // rank_i = #{j : (key_j, j) < (key_i, i)} — a branch-free, vectorised O(d²) count that
    // beats a comparison sort for small d (no mispredicted branches, no index indirection).
    // Same total order as the sort below: ties go to the lower index.
    Ranks(ws.key.data(), d, ws.rank.data(), ws.key32.data(), ws.order.data(), ws.sorted.data());
  } else {
    std::iota(ws.order.begin(), ws.order.end(), 0);
    const double* key = ws.key.data();
    std::sort(ws.order.begin(), ws.order.end(),
              [key](int32_t a, int32_t b) { return Before(key[a], a, key[b], b); });
    for (size_t r = 0; r < d; ++r) ws.rank[ws.order[r]] = static_cast<int32_t>(r);
  }
  y.AssignDense(absl::MakeConstSpan(ws.rank.data(), d));
  return 0;
}

}  // namespace perturbd
