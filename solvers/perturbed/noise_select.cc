#include "solvers/perturbed/noise_select.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "solvers/oracles/internal/top_k_buffer.h"
#include "solvers/oracles/internal/vector_clones.h"
#include "solvers/perturbed/noise_math.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

namespace perturbd {
namespace {

constexpr uint32_t kIndexMax = (1u << 23) - 1;  // the largest uniform index w = x >> 9
constexpr int kLogBuckets = 64;                 // LogBucket(0 .. kIndexMax) < 47, padded
constexpr int kAngleShift = 18;                 // angle bucket = w >> 18: 32 buckets
constexpr int kAngleBuckets = 32;
constexpr double kInf = std::numeric_limits<double>::infinity();

// 0 for v = 0; else 2·⌊log₂ v⌋ + (the bit after the leading one) + 1, from the float
// representation of v (exact: v < 2²⁴). Monotone in v; 0 .. 46 for v ≤ kIndexMax.
inline int32_t LogBucket(uint32_t v) {
  const uint32_t t = noise_math::FloatBits(static_cast<float>(static_cast<int32_t>(v))) >> 22;
  return t >= 254u ? static_cast<int32_t>(t - 253u) : 0;
}

inline float UniformOfIndex(uint32_t w) { return noise_internal::UniformOpenF(w << 9); }

// Per-bucket extremes of the float transforms (the header comment).
struct BucketBounds {
  float gumbel_lo[kLogBuckets], gumbel_hi[kLogBuckets];  // by LogBucket(kIndexMax − w)
  float radius_lo[kLogBuckets], radius_hi[kLogBuckets];  // by LogBucket(w₀)
  float cos_lo[kAngleBuckets], cos_hi[kAngleBuckets];    // by w₁ >> kAngleShift
  float sin_lo[kAngleBuckets], sin_hi[kAngleBuckets];
};

constexpr uint32_t kEvalBlock = 4096;  // divides 2²³, and no bucket boundary is inside a
                                       // block unless the buckets there are smaller than it

PERTURBD_ORACLE_VECTOR_CLONES
void EvalGumbel(uint32_t w0, float* __restrict z) {
#pragma omp simd
  for (uint32_t j = 0; j < kEvalBlock; ++j) {
    float g;
    noise_internal::GumbelF(UniformOfIndex(w0 + j), z[j], g);
  }
}

PERTURBD_ORACLE_VECTOR_CLONES
void EvalRadius(uint32_t w0, float* __restrict r) {
#pragma omp simd
  for (uint32_t j = 0; j < kEvalBlock; ++j) {
    r[j] = noise_internal::BoxMullerRadiusF(UniformOfIndex(w0 + j));
  }
}

PERTURBD_ORACLE_VECTOR_CLONES
void EvalAngle(uint32_t w0, float* __restrict c, float* __restrict s) {
#pragma omp simd
  for (uint32_t j = 0; j < kEvalBlock; ++j) {
    noise_math::SinCos2PiF(UniformOfIndex(w0 + j), s[j], c[j]);
  }
}

// lo[bucket(w)] / hi[bucket(w)] ← min / max of values[j] over w = w0 + j; bucket monotone in w.
template <typename Bucket>
void Extend(const float* values, uint32_t w0, Bucket bucket, float* lo, float* hi) {
  const int32_t first = bucket(w0);
  if (first == bucket(w0 + kEvalBlock - 1)) {
    float mn = values[0], mx = values[0];
    for (uint32_t j = 1; j < kEvalBlock; ++j) {
      mn = std::min(mn, values[j]);
      mx = std::max(mx, values[j]);
    }
    lo[first] = std::min(lo[first], mn);
    hi[first] = std::max(hi[first], mx);
    return;
  }
  for (uint32_t j = 0; j < kEvalBlock; ++j) {
    const int32_t b = bucket(w0 + j);
    lo[b] = std::min(lo[b], values[j]);
    hi[b] = std::max(hi[b], values[j]);
  }
}

// Every uniform index once: 2²³ evaluations of each transform.
BucketBounds ComputeGumbelBounds() {
  BucketBounds t;
  std::fill_n(t.gumbel_lo, kLogBuckets, std::numeric_limits<float>::infinity());
  std::fill_n(t.gumbel_hi, kLogBuckets, -std::numeric_limits<float>::infinity());
  std::vector<float> z(kEvalBlock);
  const auto bucket = [](uint32_t w) { return LogBucket(kIndexMax - w); };
  for (uint32_t w0 = 0; w0 <= kIndexMax; w0 += kEvalBlock) {
    EvalGumbel(w0, z.data());
    Extend(z.data(), w0, bucket, t.gumbel_lo, t.gumbel_hi);
  }
  return t;
}

BucketBounds ComputeNormalBounds() {
  BucketBounds t;
  constexpr float kFloatInf = std::numeric_limits<float>::infinity();
  std::fill_n(t.radius_lo, kLogBuckets, kFloatInf);
  std::fill_n(t.radius_hi, kLogBuckets, -kFloatInf);
  for (float* a : {t.cos_lo, t.sin_lo}) std::fill_n(a, kAngleBuckets, kFloatInf);
  for (float* a : {t.cos_hi, t.sin_hi}) std::fill_n(a, kAngleBuckets, -kFloatInf);
  std::vector<float> r(kEvalBlock), c(kEvalBlock), s(kEvalBlock);
  const auto angle = [](uint32_t w) { return static_cast<int32_t>(w >> kAngleShift); };
  for (uint32_t w0 = 0; w0 <= kIndexMax; w0 += kEvalBlock) {
    EvalRadius(w0, r.data());
    Extend(r.data(), w0, LogBucket, t.radius_lo, t.radius_hi);
    EvalAngle(w0, c.data(), s.data());
    Extend(c.data(), w0, angle, t.cos_lo, t.cos_hi);
    Extend(s.data(), w0, angle, t.sin_lo, t.sin_hi);
  }
  return t;
}

const BucketBounds& Bounds(NoiseDistribution distribution) {
  if (distribution == NoiseDistribution::kGumbel) {
    static const BucketBounds* gumbel = new BucketBounds(ComputeGumbelBounds());
    return *gumbel;
  }
  static const BucketBounds* normal = new BucketBounds(ComputeNormalBounds());
  return *normal;
}

// AdditiveEta of a float Z.
inline double Eta(double theta, double epsilon, float z, bool f32) {
  return AdditiveEta(theta, epsilon, static_cast<double>(z), f32);
}

// key_hi[i] ≥ sign·η_i for a GUMBEL row, i < n (the portable kernel).
void GumbelKeyBounds(const BucketBounds& t, const uint32_t* words, const double* theta, size_t n,
                     double epsilon, bool f32, double sign, double* key_hi) {
  const float* z_bound = sign > 0.0 ? t.gumbel_hi : t.gumbel_lo;
  for (size_t i = 0; i < n; ++i) {
    const float z = z_bound[LogBucket(kIndexMax - (words[i] >> 9))];
    key_hi[i] = sign * Eta(theta[i], epsilon, z, f32);
  }
}

// The bounds of fl(r·a) for r ∈ [r_lo, r_hi] (r ≥ 0) and a ∈ [a_lo, a_hi]: rounding is
// monotone, and the extremes of a product are at the corners the signs select.
inline float ProductHi(float r_lo, float r_hi, float a_hi) {
  return a_hi >= 0.0f ? r_hi * a_hi : r_lo * a_hi;
}
inline float ProductLo(float r_lo, float r_hi, float a_lo) {
  return a_lo >= 0.0f ? r_lo * a_lo : r_hi * a_lo;
}

// True when a key bound needs the upper bound of fl(r·a): the key is sign·z_sign·fl(r·a).
inline bool NeedsUpper(double sign, float z_sign) { return (sign > 0.0) == (z_sign > 0.0f); }

// key_hi for the 16 coordinates i0 .. i0 + 15 of lanes (p, p + 1) of one block (p even):
// i0 + j takes z_sign·fl(r·cos 2πu₁), i0 + 8 + j z_sign·fl(r·sin 2πu₁), with u₀ from
// words[i0 + j] and u₁ from words[i0 + 8 + j]; z_sign = −1 for the second sample of an
// antithetic pair (the portable kernel).
void NormalKeyBounds(const BucketBounds& t, const uint32_t* words, const double* theta,
                     double epsilon, bool f32, double sign, float z_sign, double* key_hi) {
  const bool upper = NeedsUpper(sign, z_sign);
  for (int j = 0; j < 8; ++j) {
    const int32_t rb = LogBucket(words[j] >> 9);
    const int32_t ab = static_cast<int32_t>(words[8 + j] >> (9 + kAngleShift));
    const float r_lo = t.radius_lo[rb], r_hi = t.radius_hi[rb];
    const float c = upper ? ProductHi(r_lo, r_hi, t.cos_hi[ab]) : ProductLo(r_lo, r_hi, t.cos_lo[ab]);
    const float s = upper ? ProductHi(r_lo, r_hi, t.sin_hi[ab]) : ProductLo(r_lo, r_hi, t.sin_lo[ab]);
    key_hi[j] = sign * Eta(theta[j], epsilon, z_sign * c, f32);
    key_hi[8 + j] = sign * Eta(theta[8 + j], epsilon, z_sign * s, f32);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define PERTURBD_SELECT_AVX512 1
// The same bounds sixteen coordinates at a time (AVX-512F): LogBucket from the float
// conversion, table lookups by two-register permutes (a gather costs more than the rest of
// the kernel), η and the key in double exactly as Eta.

// LogBucket of sixteen indices v < 2²³.
__attribute__((target("avx512f"))) inline __m512i LogBucket16(__m512i v) {
  const __m512i t = _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(v)), 22);
  return _mm512_max_epi32(_mm512_sub_epi32(t, _mm512_set1_epi32(253)), _mm512_setzero_si512());
}

// table[b] for sixteen indices b < 64 (a 64-entry table): two-register permutes, no gather.
__attribute__((target("avx512f"))) inline __m512 Lookup64(const float* table, __m512i b) {
  const __m512 low = _mm512_permutex2var_ps(_mm512_loadu_ps(table), b, _mm512_loadu_ps(table + 16));
  const __m512 high =
      _mm512_permutex2var_ps(_mm512_loadu_ps(table + 32), b, _mm512_loadu_ps(table + 48));
  const __mmask16 upper = _mm512_test_epi32_mask(b, _mm512_set1_epi32(32));
  return _mm512_mask_blend_ps(upper, low, high);
}

// sign·Eta(θ, ε, z) for eight lanes.
__attribute__((target("avx512f"))) inline __m512d Key8(__m256 z, const double* theta,
                                                      __m512d epsilon, __m512d sign, bool f32) {
  __m512d v = _mm512_add_pd(_mm512_loadu_pd(theta), _mm512_mul_pd(epsilon, _mm512_cvtps_pd(z)));
  if (f32) v = _mm512_cvtps_pd(_mm512_cvtpd_ps(v));
  return _mm512_mul_pd(sign, v);
}

// Stores the keys of z's sixteen lanes; returns their maximum.
__attribute__((target("avx512f"))) inline double StoreKeys16(__m512 z, const double* theta,
                                                            double epsilon, bool f32,
                                                            double sign, double* key_hi) {
  const __m512d eps = _mm512_set1_pd(epsilon), sg = _mm512_set1_pd(sign);
  const __m256 lo = _mm256_castpd_ps(_mm512_castpd512_pd256(_mm512_castps_pd(z)));
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1));
  const __m512d k0 = Key8(lo, theta, eps, sg, f32);
  const __m512d k1 = Key8(hi, theta + 8, eps, sg, f32);
  _mm512_storeu_pd(key_hi, k0);
  _mm512_storeu_pd(key_hi + 8, k1);
  return _mm512_reduce_max_pd(_mm512_max_pd(k0, k1));
}

// GUMBEL, i < n with n a multiple of 16; block_max[g] = the maximum over 16g .. 16g + 15.
__attribute__((target("avx512f"))) void GumbelKeyBoundsAvx512(const BucketBounds& t,
                                                              const uint32_t* words,
                                                              const double* theta, size_t n,
                                                              double epsilon, bool f32,
                                                              double sign, double* key_hi,
                                                              double* block_max) {
  const float* z_bound = sign > 0.0 ? t.gumbel_hi : t.gumbel_lo;
  const __m512i top = _mm512_set1_epi32(static_cast<int>(kIndexMax));
  for (size_t i = 0; i < n; i += 16) {
    const __m512i x = _mm512_loadu_si512(words + i);
    const __m512i b = LogBucket16(_mm512_sub_epi32(top, _mm512_srli_epi32(x, 9)));
    block_max[i / 16] =
        StoreKeys16(Lookup64(z_bound, b), theta + i, epsilon, f32, sign, key_hi + i);
  }
}

// NORMAL: NormalKeyBounds for one group of 16; returns the maximum of its keys.
__attribute__((target("avx512f"))) double NormalKeyBoundsAvx512(const BucketBounds& t,
                                                              const uint32_t* words,
                                                              const double* theta,
                                                              double epsilon, bool f32,
                                                              double sign, float z_sign,
                                                              double* key_hi) {
  const __m512i w = _mm512_loadu_si512(words);
  const __m512i x0 = _mm512_shuffle_i64x2(w, w, 0x44);  // words 0..7 in both halves
  const __m512i x1 = _mm512_shuffle_i64x2(w, w, 0xEE);  // words 8..15 in both halves
  const __m512i rb = LogBucket16(_mm512_srli_epi32(x0, 9));
  const __m512 r_lo = Lookup64(t.radius_lo, rb);
  const __m512 r_hi = Lookup64(t.radius_hi, rb);
  const __m512i ab = _mm512_srli_epi32(x1, 9 + kAngleShift);  // 0 .. 31
  constexpr __mmask16 kSin = 0xFF00;  // the upper eight lanes take sin
  const bool upper = NeedsUpper(sign, z_sign);
  const float* cos_t = upper ? t.cos_hi : t.cos_lo;
  const float* sin_t = upper ? t.sin_hi : t.sin_lo;
  const __m512 c = _mm512_permutex2var_ps(_mm512_loadu_ps(cos_t), ab, _mm512_loadu_ps(cos_t + 16));
  const __m512 s = _mm512_permutex2var_ps(_mm512_loadu_ps(sin_t), ab, _mm512_loadu_ps(sin_t + 16));
  const __m512 a = _mm512_mask_blend_ps(kSin, c, s);
  // ProductHi / ProductLo: the radius bound the sign of a selects.
  const __mmask16 a_nonneg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 r = upper ? _mm512_mask_blend_ps(a_nonneg, r_lo, r_hi)
                         : _mm512_mask_blend_ps(a_nonneg, r_hi, r_lo);
  const __m512 z = _mm512_mul_ps(_mm512_set1_ps(z_sign), _mm512_mul_ps(r, a));
  return StoreKeys16(z, theta, epsilon, f32, sign, key_hi);
}
#endif

// η_i (stored into eta[i]) and key[j] = sign·η_i of the coordinates i = idx[j], j < n, from
// the row's words (NoiseFromWordsF, one loop per distribution so that it vectorises).
PERTURBD_ORACLE_VECTOR_CLONES
void ExactKeys(const NoiseRow& row, const uint32_t* __restrict words,
               const double* __restrict theta, const int32_t* __restrict idx, size_t n,
               double epsilon, bool f32, double sign, float* __restrict z,
               double* __restrict key, double* __restrict eta) {
  if (row.distribution == NoiseDistribution::kGumbel) {
#pragma omp simd
    for (size_t j = 0; j < n; ++j) z[j] = GumbelFromWordsF(words, static_cast<uint32_t>(idx[j]));
  } else {
    const float z_sign = NoiseFlipped(row) ? -1.0f : 1.0f;
#pragma omp simd
    for (size_t j = 0; j < n; ++j) {
      z[j] = NormalFromWordsF(words, static_cast<uint32_t>(idx[j]), z_sign);
    }
  }
  for (size_t j = 0; j < n; ++j) {
    const double v = Eta(theta[idx[j]], epsilon, z[j], f32);
    eta[idx[j]] = v;
    key[j] = sign * v;
  }
}

// The coordinates, ascending, whose bound is ≥ threshold, into out; returns how many.
PERTURBD_ORACLE_VECTOR_CLONES
size_t Candidates(const double* __restrict key_hi, const double* __restrict block_max,
                  size_t blocks, double threshold, int32_t* __restrict out) {
  size_t n = 0;
  for (size_t g = 0; g < blocks; ++g) {
    if (!(block_max[g] >= threshold)) continue;
    uint32_t mask = 0;
    for (uint32_t j = 0; j < 16; ++j) mask |= (key_hi[16 * g + j] >= threshold ? 1u : 0u) << j;
    for (; mask != 0; mask &= mask - 1) {
      out[n++] = static_cast<int32_t>(16 * g + static_cast<size_t>(__builtin_ctz(mask)));
    }
  }
  return n;
}

}  // namespace

void NoiseSelector::PrepareBounds() {
  Bounds(NoiseDistribution::kGumbel);
  Bounds(NoiseDistribution::kNormal);
}

NoiseSelector::NoiseSelector(size_t d, size_t k, bool vector_kernels)
    : d_(d),
      k_(k),
      avx512_(vector_kernels && CpuHasAvx512F()),
      words_((d + 31) / 32 * 32),
      key_hi_((d + 15) / 16 * 16),
      block_max_((d + 15) / 16),
      best_key_(k),
      best_index_(k),
      candidate_(d),
      merged_(d),
      candidate_key_(d),
      z_(d) {
  assert(k >= 1 && k <= d && k <= kMaxK);
}

// The maximum of n ≥ 1 values.
double MaxOf(const double* x, size_t n) {
  double m = x[0];
  for (size_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

void NoiseSelector::KeyBounds(const NoiseRow& row, const double* theta, double epsilon, bool f32,
                              double sign) {
  const BucketBounds& bounds = Bounds(row.distribution);
  const size_t d = d_;
  double* key_hi = key_hi_.data();
  double* block_max = block_max_.data();
  std::fill(key_hi + d, key_hi + key_hi_.size(), -kInf);  // padding: never a candidate
  const bool avx512 = avx512_;
  if (row.distribution == NoiseDistribution::kGumbel) {
    size_t i = 0;
#ifdef PERTURBD_SELECT_AVX512
    if (avx512) {
      i = d / 16 * 16;
      GumbelKeyBoundsAvx512(bounds, words_.data(), theta, i, epsilon, f32, sign, key_hi,
                            block_max);
    }
#endif
    GumbelKeyBounds(bounds, words_.data() + i, theta + i, d - i, epsilon, f32, sign, key_hi + i);
    for (; i < d; i += 16) block_max[i / 16] = MaxOf(key_hi + i, 16);
  } else {
    const float z_sign = NoiseFlipped(row) ? -1.0f : 1.0f;
    auto group = [&](const double* th, size_t i0, double* out) {
#ifdef PERTURBD_SELECT_AVX512
      if (avx512) {
        return NormalKeyBoundsAvx512(bounds, words_.data() + i0, th, epsilon, f32, sign, z_sign,
                                     out);
      }
#endif
      NormalKeyBounds(bounds, words_.data() + i0, th, epsilon, f32, sign, z_sign, out);
      return MaxOf(out, 16);
    };
    const size_t whole = d / 32 * 32;
    for (size_t i0 = 0; i0 < whole; i0 += 16) block_max[i0 / 16] = group(theta + i0, i0, key_hi + i0);
    if (whole < d) {
      // The last, partial block: its lanes may pair with padding coordinates, so it goes
      // through a padded copy of θ.
      double theta_pad[32], key_pad[32];
      std::fill_n(theta_pad, 32, 0.0);
      std::copy(theta + whole, theta + d, theta_pad);
      group(theta_pad, whole, key_pad);
      group(theta_pad + 16, whole + 16, key_pad + 16);
      std::copy(key_pad, key_pad + (d - whole), key_hi + whole);
      for (size_t i = whole; i < d; i += 16) block_max[i / 16] = MaxOf(key_hi + i, 16);
    }
  }
}

size_t NoiseSelector::Select(const NoiseRow& row, absl::Span<const double> theta,
                             double epsilon, bool f32, Sense sense, SparseVector& y,
                             double* eta, absl::Span<const int32_t> also_exact) {
  assert(row.single && theta.size() == d_);
  const double sign = sense == Sense::kMaximize ? 1.0 : -1.0;
  const size_t d = d_;
  const size_t k = k_;
  const double* th = theta.data();
  NoiseWords(row, d, words_.data());

  // 1. Bounds of every key, and their maxima over blocks of 16.
  KeyBounds(row, th, epsilon, f32, sign);
  const double* key_hi = key_hi_.data();
  const size_t blocks = block_max_.size();

  // 2. T = the smallest exact key of k seeds: the coordinates of the largest bound in the k
  // blocks of the largest maxima (k distinct coordinates), or the k largest bounds when there
  // are fewer than 2k blocks.
  double* bk = best_key_.data();
  int32_t* bi = best_index_.data();
  size_t size = 0;
  if (blocks >= 2 * k) {
    for (size_t g = 0; g < blocks; ++g) {
      OfferTopK(block_max_[g], static_cast<int32_t>(g), k, size, bk, bi);
    }
    for (size_t j = 0; j < k; ++j) {
      const size_t first = 16 * static_cast<size_t>(bi[j]);
      size_t at = first;
      while (!(key_hi[at] == bk[j])) ++at;
      bi[j] = static_cast<int32_t>(at);
    }
  } else {
    for (size_t i = 0; i < d; ++i) {
      OfferTopK(key_hi[i], static_cast<int32_t>(i), k, size, bk, bi);
    }
  }
  const uint32_t* words = words_.data();
  int32_t* cand = candidate_.data();
  double* cand_key = candidate_key_.data();
  float* z = z_.data();
  std::copy(bi, bi + k, cand);
  ExactKeys(row, words, th, cand, k, epsilon, f32, sign, z, cand_key, eta);
  const double threshold = *std::min_element(cand_key, cand_key + k);

  // 3. TopKOracle's scan over the coordinates whose bound is ≥ T, in index order.
  size_t n = Candidates(key_hi, block_max_.data(), blocks, threshold, cand);
  if (!also_exact.empty()) {
    // Offering a coordinate that is not a candidate changes nothing: its key is < T, below
    // each of the k best, so it leaves the buffer again and ties none of them.
    int32_t* merged = merged_.data();
    n = static_cast<size_t>(std::set_union(cand, cand + n, also_exact.begin(), also_exact.end(),
                                           merged) -
                            merged);
    cand = merged;
  }
  ExactKeys(row, words, th, cand, n, epsilon, f32, sign, z, cand_key, eta);
  size = 0;
  for (size_t j = 0; j < n; ++j) OfferTopK(cand_key[j], cand[j], k, size, bk, bi);
  const size_t exact = k + n;
  assert(size == k);
  std::sort(bi, bi + k);
  y.Clear();
  for (size_t j = 0; j < k; ++j) y.Push(bi[j], 1.0);
  return exact;
}

}  // namespace perturbd
