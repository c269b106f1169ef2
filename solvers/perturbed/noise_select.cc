#include "solvers/perturbed/noise_select.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

#include "solvers/oracles/internal/top_k_best.h"
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
  float z_max;  // the largest |Z bound| of the distribution (LargestZBound)
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

// The largest |Z bound| of a distribution's tables (the unused buckets are ±∞).
float LargestZBound(const BucketBounds& t, NoiseDistribution distribution) {
  const bool gumbel = distribution == NoiseDistribution::kGumbel;
  float m = 0.0f;
  for (const float* table :
       {gumbel ? t.gumbel_lo : t.radius_lo, gumbel ? t.gumbel_hi : t.radius_hi}) {
    for (int b = 0; b < kLogBuckets; ++b) {
      if (std::isfinite(table[b])) m = std::max(m, std::abs(table[b]));
    }
  }
  return m;  // NORMAL: |fl(r·a)| ≤ r, |a| ≤ 1
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
  t.z_max = LargestZBound(t, NoiseDistribution::kGumbel);
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
  t.z_max = LargestZBound(t, NoiseDistribution::kNormal);
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

// The bound of a GUMBEL Z from its word: z_bound = gumbel_hi (a key bound for MAXIMIZE) or
// gumbel_lo (MINIMIZE).
inline float GumbelZBound(const float* z_bound, uint32_t word) {
  return z_bound[LogBucket(kIndexMax - (word >> 9))];
}

// key_hi[i] ≥ sign·η_i for a GUMBEL row, i < n (the portable kernel).
void GumbelKeyBounds(const BucketBounds& t, const uint32_t* words, const double* theta, size_t n,
                     double epsilon, bool f32, double sign, double* key_hi) {
  const float* z_bound = sign > 0.0 ? t.gumbel_hi : t.gumbel_lo;
  for (size_t i = 0; i < n; ++i) {
    key_hi[i] = sign * Eta(theta[i], epsilon, GumbelZBound(z_bound, words[i]), f32);
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

// The Z bounds (upper for a key bound when NeedsUpper, else lower) of the 16 coordinates
// i0 .. i0 + 15 of lanes (p, p + 1) of one block (p even): i0 + j takes z_sign·fl(r·cos 2πu₁),
// i0 + 8 + j z_sign·fl(r·sin 2πu₁), with u₀ from words[i0 + j] and u₁ from words[i0 + 8 + j];
// z_sign = −1 for the second sample of an antithetic pair (the portable kernel).
void NormalZBounds(const BucketBounds& t, const uint32_t* words, bool upper, float z_sign,
                   float* z) {
  for (int j = 0; j < 8; ++j) {
    const int32_t rb = LogBucket(words[j] >> 9);
    const int32_t ab = static_cast<int32_t>(words[8 + j] >> (9 + kAngleShift));
    const float r_lo = t.radius_lo[rb], r_hi = t.radius_hi[rb];
    const float c = upper ? ProductHi(r_lo, r_hi, t.cos_hi[ab]) : ProductLo(r_lo, r_hi, t.cos_lo[ab]);
    const float s = upper ? ProductHi(r_lo, r_hi, t.sin_hi[ab]) : ProductLo(r_lo, r_hi, t.sin_lo[ab]);
    z[j] = z_sign * c;
    z[8 + j] = z_sign * s;
  }
}

// key_hi for the 16 coordinates of NormalZBounds (the portable kernel).
void NormalKeyBounds(const BucketBounds& t, const uint32_t* words, const double* theta,
                     double epsilon, bool f32, double sign, float z_sign, double* key_hi) {
  float z[16];
  NormalZBounds(t, words, NeedsUpper(sign, z_sign), z_sign, z);
  for (int j = 0; j < 16; ++j) key_hi[j] = sign * Eta(theta[j], epsilon, z[j], f32);
}

// Step 2's seeds: k distinct indices i < n with large values[i] (block maxima, or the bounds
// themselves). Any k distinct coordinates give a valid T (at least k keys are ≥ the smallest of
// theirs), so the choice only decides how many coordinates pass in step 3; it is made without
// data-dependent branches, which in a k-buffer over the values cost more than the rest of
// step 2:
//   - values[i] and i are packed into one int64 (Packed), distinct and ordered as the values;
//   - the values are dealt to 8 lanes, i mod 8, and each lane keeps its r = ⌈k/8⌉ largest by a
//     max/min network (no branch);
//   - the seeds are the k largest of those 8r: the k largest of all unless more than r of these
//     share a lane, and then large ones still.
// At least k of the 8r slots hold a value: all 8r when every lane has r values (n ≥ 8r), else
// every value lands in one (n ≥ k).

// The index bits of Packed for indices < n.
inline int64_t IndexBits(size_t n) { return (int64_t{1} << std::bit_width(n)) - 1; }

// The integer of x's order: its magnitude bits, negated for x < 0. Signed integer order is the
// order of doubles, −0 and +0 are both 0, and neither is INT64_MIN (NaN aside).
inline int64_t OrderedBits(double x) {
  const int64_t b = std::bit_cast<int64_t>(x);
  const int64_t s = b >> 63;
  return ((b & std::numeric_limits<int64_t>::max()) ^ s) - s;
}

// OrderedBits(x) with the `low` bits replaced by i: distinct for distinct i, ordered as the
// values except among those equal in all but the low bits (which costs the seeds nothing that
// matters).
inline int64_t Packed(double x, size_t i, int64_t low) {
  return (OrderedBits(x) & ~low) | static_cast<int64_t>(i);
}

// The seeds, into seeds[0 .. k), in no particular order (the portable kernel).
PERTURBD_ORACLE_VECTOR_CLONES
void ChooseSeeds(const double* values, size_t n, size_t k, int32_t* seeds) {
  const size_t slots = (k + 7) / 8 * 8;
  const int64_t low = IndexBits(n);
  int64_t top[NoiseSelector::kMaxK];  // top[8j + lane]: the (j+1)-th largest of the lane
  std::fill_n(top, slots, std::numeric_limits<int64_t>::min());
  for (size_t i = 0; i < n; i += 8) {
    int64_t v[8];
    for (size_t lane = 0; lane < 8; ++lane) {
      v[lane] = i + lane < n ? Packed(values[i + lane], i + lane, low)
                             : std::numeric_limits<int64_t>::min();
    }
    for (size_t s = 0; s < slots; s += 8) {
      for (size_t lane = 0; lane < 8; ++lane) {
        const int64_t hi = std::max(top[s + lane], v[lane]);
        v[lane] = std::min(top[s + lane], v[lane]);
        top[s + lane] = hi;
      }
    }
  }
  // The k largest: the slots of rank < k, rank = how many slots are larger (all distinct but
  // the empty ones, and at least k larger than those).
  size_t count = 0;
  for (size_t s = 0; s < slots; ++s) {
    size_t rank = 0;
    for (size_t h = 0; h < slots; ++h) rank += top[h] > top[s] ? 1 : 0;
    if (rank < k) seeds[count++] = static_cast<int32_t>(top[s] & low);
  }
  assert(count == k);
}

// blocks[j] ← the first coordinate of block blocks[j] whose bound is the block's maximum, j < k
// (there is one: the bounds are never NaN, θ and ε being finite; padding comes after the
// block's coordinates).
void BlockArgmax(const double* key_hi, const double* block_max, size_t k, int32_t* blocks) {
  for (size_t j = 0; j < k; ++j) {
    const size_t g = static_cast<size_t>(blocks[j]);
    size_t at = 16 * g;
    while (!(key_hi[at] == block_max[g])) ++at;
    blocks[j] = static_cast<int32_t>(at);
  }
}

// The lanes of block g that are coordinates (< d), for step 3: a T of −∞ (fewer than k finite
// keys) would let the padding's −∞ bounds pass.
inline uint32_t CoordinateLanes(size_t g, size_t d) {
  const size_t left = d - 16 * g;
  return left >= 16 ? 0xFFFFu : (1u << left) - 1;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define PERTURBD_SELECT_AVX512 1
// GCC 12 reports its own intrinsics' passthrough operands as (maybe) uninitialized here (a
// known false positive of the masked builtins behind them).
#ifndef __clang__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The same bounds sixteen coordinates at a time (AVX-512F): LogBucket from the float
// conversion, table lookups by two-register permutes (a gather costs more than the rest of
// the kernel), η and the key in double exactly as Eta.

// LogBucket of sixteen indices v < 2²³.
__attribute__((target("avx512f"))) inline __m512i LogBucket16(__m512i v) {
  const __m512i t = _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(v)), 22);
  return _mm512_max_epi32(_mm512_sub_epi32(t, _mm512_set1_epi32(253)), _mm512_setzero_si512());
}

// A 64-entry table in four registers, loaded once per row: the stores of the keys could alias
// it for the compiler, which would load it again for every lookup.
struct Table64 {
  __m512 q[4];
};

__attribute__((target("avx512f"))) inline Table64 LoadTable64(const float* table) {
  return {{_mm512_loadu_ps(table), _mm512_loadu_ps(table + 16), _mm512_loadu_ps(table + 32),
           _mm512_loadu_ps(table + 48)}};
}

// table[b] for sixteen indices b < 64: two-register permutes, no gather.
__attribute__((target("avx512f"))) inline __m512 Lookup64(const Table64& table, __m512i b) {
  const __m512 low = _mm512_permutex2var_ps(table.q[0], b, table.q[1]);
  const __m512 high = _mm512_permutex2var_ps(table.q[2], b, table.q[3]);
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

// The Z bounds of GUMBEL words i < n, n a multiple of 16, sixteen at a time into sink(i, z).
template <typename Sink>
__attribute__((target("avx512f"))) inline void GumbelScanAvx512(const BucketBounds& t,
                                                                const uint32_t* words, size_t n,
                                                                double sign, Sink& sink) {
  const Table64 z_bound = LoadTable64(sign > 0.0 ? t.gumbel_hi : t.gumbel_lo);
  const __m512i top = _mm512_set1_epi32(static_cast<int>(kIndexMax));
  for (size_t i = 0; i < n; i += 16) {
    const __m512i x = _mm512_loadu_si512(words + i);
    sink(i, Lookup64(z_bound, LogBucket16(_mm512_sub_epi32(top, _mm512_srli_epi32(x, 9)))));
  }
}

// The cos / sin bound tables (hi when `upper`, else lo) of a NORMAL scan in registers, and the
// angle bound of a group's sixteen lanes: lanes 0..7 cos, 8..15 sin of the angle words 8..15.
struct AngleTables {
  __m512 cos0, cos1, sin0, sin1;
};

__attribute__((target("avx512f"))) inline AngleTables LoadAngleTables(const BucketBounds& t,
                                                                      bool upper) {
  const float* cos_t = upper ? t.cos_hi : t.cos_lo;
  const float* sin_t = upper ? t.sin_hi : t.sin_lo;
  return {_mm512_loadu_ps(cos_t), _mm512_loadu_ps(cos_t + 16), _mm512_loadu_ps(sin_t),
          _mm512_loadu_ps(sin_t + 16)};
}

// The radius index (for LogBucket16) of sixteen radius words, and the angle bucket (0 .. 31)
// of sixteen angle words: the top bits that the bucket tables are indexed by.
__attribute__((target("avx512f"))) inline __m512i RadiusIndex16(__m512i words) {
  return _mm512_srli_epi32(words, 9);
}
__attribute__((target("avx512f"))) inline __m512i AngleBucket16(__m512i words) {
  return _mm512_srli_epi32(words, 9 + kAngleShift);
}

// w: a group's sixteen words; the radius index of each lane (words 0..7 in both halves) into
// *radius_index, the angle bound returned.
__attribute__((target("avx512f"))) inline __m512 AngleBound16(const AngleTables& a, __m512i w,
                                                              __m512i* radius_index) {
  constexpr __mmask16 kSin = 0xFF00;                    // the upper eight lanes take sin
  const __m512i x0 = _mm512_shuffle_i64x2(w, w, 0x44);  // words 0..7 in both halves
  const __m512i x1 = _mm512_shuffle_i64x2(w, w, 0xEE);  // words 8..15 in both halves
  *radius_index = RadiusIndex16(x0);
  const __m512i ab = AngleBucket16(x1);
  return _mm512_mask_blend_ps(kSin, _mm512_permutex2var_ps(a.cos0, ab, a.cos1),
                              _mm512_permutex2var_ps(a.sin0, ab, a.sin1));
}

// NormalZBounds for the groups of 16 in i < n, n a multiple of 16, into sink(i, z).
template <typename Sink>
__attribute__((target("avx512f"))) inline void NormalScanAvx512(const BucketBounds& t,
                                                                const uint32_t* words, size_t n,
                                                                double sign, float z_sign,
                                                                Sink& sink) {
  const Table64 radius_lo = LoadTable64(t.radius_lo);
  const Table64 radius_hi = LoadTable64(t.radius_hi);
  const bool upper = NeedsUpper(sign, z_sign);
  const AngleTables angles = LoadAngleTables(t, upper);
  for (size_t i = 0; i < n; i += 16) {
    __m512i radius_index;
    const __m512 a = AngleBound16(angles, _mm512_loadu_si512(words + i), &radius_index);
    const __m512i rb = LogBucket16(radius_index);
    const __m512 r_lo = Lookup64(radius_lo, rb);
    const __m512 r_hi = Lookup64(radius_hi, rb);
    // ProductHi / ProductLo: the radius bound the sign of a selects.
    const __mmask16 a_nonneg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GE_OQ);
    const __m512 r = upper ? _mm512_mask_blend_ps(a_nonneg, r_lo, r_hi)
                           : _mm512_mask_blend_ps(a_nonneg, r_hi, r_lo);
    sink(i, _mm512_mul_ps(_mm512_set1_ps(z_sign), _mm512_mul_ps(r, a)));
  }
}

// The key bounds of the scanned Z into key_hi, their maxima over each 16 into block_max.
struct KeyBoundSink {
  const double* theta;
  double epsilon;
  bool f32;
  double sign;
  double* key_hi;
  double* block_max;
  __attribute__((target("avx512f"))) void operator()(size_t i, __m512 z) const {
    block_max[i / 16] = StoreKeys16(z, theta + i, epsilon, f32, sign, key_hi + i);
  }
};

// The coordinates whose sign·Z bound is ≥ need[i], ascending, into out[n ..).
struct AboveSink {
  const float* need;
  __m512i flip;  // the sign bit for MINIMIZE
  int32_t* out;
  size_t n;
  __attribute__((target("avx512f"))) void operator()(size_t i, __m512 z) {
    Add(i, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(z), flip)));
  }
  // The lanes of group i whose sign·Z bound w is ≥ need.
  __attribute__((target("avx512f"))) void Add(size_t i, __m512 w) {
    const __mmask16 pass = _mm512_cmp_ps_mask(w, _mm512_loadu_ps(need + i), _CMP_GE_OQ);
    // No branch on pass: a third of the vectors or so hold a candidate, unpredictably.
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i idx = _mm512_maskz_compress_epi32(
        pass, _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(i))));
    const int m = __builtin_popcount(pass);
    _mm512_mask_storeu_epi32(out + n, static_cast<__mmask16>((1u << m) - 1), idx);
    n += static_cast<size_t>(m);
  }
};

// GUMBEL key bounds, i < n with n a multiple of 16; block_max[g] = the maximum over 16g ..
// 16g + 15.
__attribute__((target("avx512f"))) void GumbelKeyBoundsAvx512(const BucketBounds& t,
                                                              const uint32_t* words,
                                                              const double* theta, size_t n,
                                                              double epsilon, bool f32, double sign,
                                                              double* key_hi, double* block_max) {
  KeyBoundSink sink{theta, epsilon, f32, sign, key_hi, block_max};
  GumbelScanAvx512(t, words, n, sign, sink);
}

// NORMAL: NormalKeyBounds for the groups of 16 in i < n, n a multiple of 16; block_max[g] = the
// maximum over 16g .. 16g + 15.
__attribute__((target("avx512f"))) void NormalKeyBoundsAvx512(
    const BucketBounds& t, const uint32_t* words, const double* theta, size_t n, double epsilon,
    bool f32, double sign, float z_sign, double* key_hi, double* block_max) {
  KeyBoundSink sink{theta, epsilon, f32, sign, key_hi, block_max};
  NormalScanAvx512(t, words, n, sign, z_sign, sink);
}

// AboveAvx512 for NORMAL words with a looser bound and half the radius lookups. The bound
// that Above compares, w = sign·Z bound = ±fl(r·a) (+ when NeedsUpper), takes r_hi where it
// is ≥ 0 and r_lo where it is ≤ 0; max(±fl(r_hi·a), 0) is the same where the first is and an
// upper bound (0) where the second is. So it passes the same coordinates, and those with
// need_i ≤ 0 whatever their bound (θ_i alone reaches T_row: a handful a row, and exact keys
// are computed for candidates anyway).
// Two groups a block of 32 (n is a multiple of 32): the group's two halves share their
// radius words and their angle words, so one lookup of the block's sixteen distinct radius
// words and one of its sixteen angle words serve both groups (lanes 0..7 a, 8..15 b), and
// the products are regrouped: group a = (cos products of a, sin products of a), b likewise.
// The same products as a group at a time (AngleBound16), lane for lane.
__attribute__((target("avx512f"))) void NormalAboveAvx512(const BucketBounds& t,
                                                          const uint32_t* words, size_t n,
                                                          bool upper, AboveSink& sink) {
  const Table64 radius_hi = LoadTable64(t.radius_hi);
  const AngleTables angles = LoadAngleTables(t, upper);
  const __m512i flip = _mm512_set1_epi32(upper ? 0 : static_cast<int32_t>(0x80000000u));
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 32) {
    const __m512i wa = _mm512_loadu_si512(words + i);
    const __m512i wb = _mm512_loadu_si512(words + i + 16);
    const __m512i x0 = _mm512_shuffle_i64x2(wa, wb, 0x44);  // radius words: a 0..7, b 0..7
    const __m512i x1 = _mm512_shuffle_i64x2(wa, wb, 0xEE);  // angle words: a 8..15, b 8..15
    const __m512 r_hi = Lookup64(radius_hi, LogBucket16(RadiusIndex16(x0)));
    const __m512i ab = AngleBucket16(x1);
    const __m512 cos_w = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(
                             r_hi, _mm512_permutex2var_ps(angles.cos0, ab, angles.cos1))),
                         flip));
    const __m512 sin_w = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(
                             r_hi, _mm512_permutex2var_ps(angles.sin0, ab, angles.sin1))),
                         flip));
    sink.Add(i, _mm512_max_ps(_mm512_shuffle_f32x4(cos_w, sin_w, 0x44), zero));
    sink.Add(i + 16, _mm512_max_ps(_mm512_shuffle_f32x4(cos_w, sin_w, 0xEE), zero));
  }
}

// The coordinates i < n (a multiple of 32) whose sign·Z bound is ≥ need[i], into out.
__attribute__((target("avx512f"))) size_t AboveAvx512(const BucketBounds& t, const NoiseRow& row,
                                                      const uint32_t* words, size_t n, double sign,
                                                      const float* need, int32_t* out) {
  AboveSink sink{need, _mm512_set1_epi32(sign > 0.0 ? 0 : static_cast<int32_t>(0x80000000u)), out,
                 0};
  if (row.distribution == NoiseDistribution::kGumbel) {
    GumbelScanAvx512(t, words, n, sign, sink);
  } else {
    NormalAboveAvx512(t, words, n, NeedsUpper(sign, NormalZSign(row)), sink);
  }
  return sink.n;
}

// ChooseSeeds with R = ⌈k/8⌉ lane registers; the same seeds. The k largest of the 8R slots are
// those of rank < k, rank = how many slots are larger (the slots are distinct, the empty ones
// all INT64_MIN: at least k are larger than those).
template <int R>
__attribute__((target("avx512f"))) void ChooseSeedsAvx512(const double* values, size_t n, size_t k,
                                                          int32_t* seeds) {
  const int64_t low = IndexBits(n);
  const __m512i none = _mm512_set1_epi64(std::numeric_limits<int64_t>::min());
  const __m512i keep = _mm512_set1_epi64(~low);
  __m512i index = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  __m512i top[R];
  for (__m512i& t : top) t = none;
  for (size_t i = 0; i < n; i += 8) {
    const __mmask8 valid = FirstLanes8(n - i);
    const __m512i ordered = OrderedBits8(_mm512_maskz_loadu_pd(valid, values + i));
    __m512i v = _mm512_mask_or_epi64(none, valid, _mm512_and_si512(ordered, keep), index);
    for (__m512i& t : top) {
      const __m512i hi = _mm512_max_epi64(t, v);
      v = _mm512_min_epi64(t, v);
      t = hi;
    }
    index = _mm512_add_epi64(index, _mm512_set1_epi64(8));
  }
  alignas(64) int64_t slot[8 * R];
  for (int j = 0; j < R; ++j) _mm512_store_si512(slot + 8 * j, top[j]);
  const __m512i one = _mm512_set1_epi64(1);
  size_t count = 0;
  for (const __m512i& t : top) {
    __m512i rank = _mm512_setzero_si512();
    for (int h = 0; h < 8 * R; ++h) {
      rank = _mm512_mask_add_epi64(rank, _mm512_cmpgt_epi64_mask(_mm512_set1_epi64(slot[h]), t),
                                   rank, one);
    }
    const __mmask8 chosen =
        _mm512_cmplt_epi64_mask(rank, _mm512_set1_epi64(static_cast<int64_t>(k)));
    const __m512i idx = _mm512_castsi256_si512(_mm512_cvtepi64_epi32(
        _mm512_maskz_compress_epi64(chosen, _mm512_and_si512(t, _mm512_set1_epi64(low)))));
    const int m = __builtin_popcount(chosen);
    _mm512_mask_storeu_epi32(seeds + count, static_cast<__mmask16>((1u << m) - 1), idx);
    count += static_cast<size_t>(m);
  }
  assert(count == k);
}

// BlockArgmax by one compare of each block's sixteen bounds.
__attribute__((target("avx512f"))) void BlockArgmaxAvx512(const double* key_hi,
                                                          const double* block_max, size_t k,
                                                          int32_t* blocks) {
  for (size_t j = 0; j < k; ++j) {
    const size_t g = static_cast<size_t>(blocks[j]);
    const __m512d m = _mm512_set1_pd(block_max[g]);
    const double* block = key_hi + 16 * g;
    const uint32_t at =
        _mm512_cmp_pd_mask(_mm512_loadu_pd(block), m, _CMP_EQ_OQ) |
        static_cast<uint32_t>(_mm512_cmp_pd_mask(_mm512_loadu_pd(block + 8), m, _CMP_EQ_OQ)) << 8;
    blocks[j] = static_cast<int32_t>(16 * g + static_cast<size_t>(__builtin_ctz(at)));
  }
}

// Candidates: the blocks of maximum ≥ T as the bits of a mask of up to 64 (a branch per block
// would mispredict, and so would a loop per eight), and the coordinates of each by a compress.
__attribute__((target("avx512f"))) size_t CandidatesAvx512(const double* key_hi,
                                                           const double* block_max, size_t d,
                                                           double threshold, int32_t* out) {
  const size_t blocks = (d + 15) / 16;
  const __m512d t = _mm512_set1_pd(threshold);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t n = 0;
  for (size_t g0 = 0; g0 < blocks; g0 += 64) {
    uint64_t live = 0;
    for (size_t g = g0; g < std::min(blocks, g0 + 64); g += 8) {
      const __mmask8 valid =
          FirstLanes8(blocks - g);
      live |= static_cast<uint64_t>(_mm512_mask_cmp_pd_mask(
                  valid, _mm512_maskz_loadu_pd(valid, block_max + g), t, _CMP_GE_OQ))
              << (g - g0);
    }
    for (; live != 0; live &= live - 1) {
      const size_t g = g0 + static_cast<size_t>(__builtin_ctzll(live));
      const double* block = key_hi + 16 * g;
      const uint32_t pass =
          (_mm512_cmp_pd_mask(_mm512_loadu_pd(block), t, _CMP_GE_OQ) |
           static_cast<uint32_t>(_mm512_cmp_pd_mask(_mm512_loadu_pd(block + 8), t, _CMP_GE_OQ))
               << 8) &
          CoordinateLanes(g, d);
      const __m512i idx = _mm512_maskz_compress_epi32(
          static_cast<__mmask16>(pass),
          _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(16 * g))));
      const int m = __builtin_popcount(pass);
      _mm512_mask_storeu_epi32(out + n, static_cast<__mmask16>((1u << m) - 1), idx);
      n += static_cast<size_t>(m);
    }
  }
  return n;
}

#ifndef __clang__
#pragma GCC diagnostic pop
#endif
#endif

// η_i (stored into eta[i]) and key[j] = sign·η_i of the coordinates i = idx[j], j < n, from
// the row's words (NoiseFromWordsF, one loop per distribution so that it vectorises). The
// transforms run over whole vectors of 16 (idx[n ..) ← 0, z as long) unless one coordinate is
// left over: a remainder runs a coordinate at a time, and n is mostly under 16 or just over.
PERTURBD_ORACLE_VECTOR_CLONES
void ExactKeys(const NoiseRow& row, const uint32_t* __restrict words,
               const double* __restrict theta, int32_t* __restrict idx, size_t n, double epsilon,
               bool f32, double sign, float* __restrict z, double* __restrict key,
               double* __restrict eta) {
  const size_t whole = n % 16 <= 1 ? n : (n + 15) / 16 * 16;
  std::fill(idx + n, idx + whole, 0);
  if (row.distribution == NoiseDistribution::kGumbel) {
#pragma omp simd
    for (size_t j = 0; j < whole; ++j) {
      z[j] = GumbelFromWordsF(words, static_cast<uint32_t>(idx[j]));
    }
  } else {
    const float z_sign = NormalZSign(row);
#pragma omp simd
    for (size_t j = 0; j < whole; ++j) {
      z[j] = NormalFromWordsF(words, static_cast<uint32_t>(idx[j]), z_sign);
    }
  }
  for (size_t j = 0; j < n; ++j) {
    const double v = Eta(theta[idx[j]], epsilon, z[j], f32);
    eta[idx[j]] = v;
    key[j] = sign * v;
  }
}

// Step 2's seeds as coordinates, into seeds[0 .. k): the coordinates of the largest bound in k
// blocks of large maxima, or k coordinates of large bounds when there are fewer than 2k blocks
// (one seed per block would then reach into blocks of small maxima).
void Seeds(const double* key_hi, const double* block_max, size_t d, size_t blocks, size_t k,
           bool avx512, int32_t* seeds) {
  const bool by_block = blocks >= 2 * k;
  const double* values = by_block ? block_max : key_hi;
  const size_t n = by_block ? blocks : d;
#ifdef PERTURBD_SELECT_AVX512
  if (avx512) {
    switch ((k + 7) / 8) {
      case 1:
        ChooseSeedsAvx512<1>(values, n, k, seeds);
        break;
      case 2:
        ChooseSeedsAvx512<2>(values, n, k, seeds);
        break;
      case 3:
        ChooseSeedsAvx512<3>(values, n, k, seeds);
        break;
      default:
        ChooseSeedsAvx512<4>(values, n, k, seeds);
        break;
    }
    if (by_block) BlockArgmaxAvx512(key_hi, block_max, k, seeds);
    return;
  }
#endif
  ChooseSeeds(values, n, k, seeds);
  if (by_block) BlockArgmax(key_hi, block_max, k, seeds);
}

// The coordinates, ascending, whose bound is ≥ threshold, into out; returns how many.
PERTURBD_ORACLE_VECTOR_CLONES
size_t Candidates(const double* __restrict key_hi, const double* __restrict block_max, size_t d,
                  double threshold, bool avx512, int32_t* __restrict out) {
#ifdef PERTURBD_SELECT_AVX512
  if (avx512) return CandidatesAvx512(key_hi, block_max, d, threshold, out);
#endif
  size_t n = 0;
  for (size_t g = 0; 16 * g < d; ++g) {
    if (!(block_max[g] >= threshold)) continue;
    uint32_t mask = 0;
    for (uint32_t j = 0; j < 16; ++j) mask |= (key_hi[16 * g + j] >= threshold ? 1u : 0u) << j;
    for (mask &= CoordinateLanes(g, d); mask != 0; mask &= mask - 1) {
      out[n++] = static_cast<int32_t>(16 * g + static_cast<size_t>(__builtin_ctz(mask)));
    }
  }
  return n;
}

// The coordinates i < n (a multiple of 32: NoiseWords' blocks) whose sign·Z bound is ≥ need[i],
// ascending, into out; returns how many.
size_t Above(const BucketBounds& t, const NoiseRow& row, const uint32_t* words, size_t n,
             double sign, const float* need, bool avx512, int32_t* out) {
#ifdef PERTURBD_SELECT_AVX512
  if (avx512) return AboveAvx512(t, row, words, n, sign, need, out);
#endif
  const float* z_gumbel = sign > 0.0 ? t.gumbel_hi : t.gumbel_lo;
  const float z_sign = NormalZSign(row);
  const float flip = sign > 0.0 ? 1.0f : -1.0f;
  size_t m = 0;
  for (size_t i = 0; i < n; i += 16) {
    float z[16];
    if (row.distribution == NoiseDistribution::kGumbel) {
      for (size_t j = 0; j < 16; ++j) z[j] = GumbelZBound(z_gumbel, words[i + j]);
    } else {
      NormalZBounds(t, words + i, NeedsUpper(sign, z_sign), z_sign, z);
    }
    for (size_t j = 0; j < 16; ++j) {
      if (flip * z[j] >= need[i + j]) out[m++] = static_cast<int32_t>(i + j);
    }
  }
  return m;
}

// need_i for T: a float ≤ every Z bound z (sign·z, that is) whose key bound sign·fl(θ + ε·z)
// (rounded to float when f32) is ≥ T, for |z| ≤ z_max. With w = sign·z and sθ = sign·θ the
// key bound is fl(sθ + fl(ε·w)) (rounding commutes with negation), within
// s = 2⁻²⁰·(|θ| + ε·z_max) + 10⁻³⁷ of sθ + ε·w (three roundings of at most 2⁻²⁴ relative,
// float's subnormal steps); so w ≥ (T − sθ − s)/ε. Computed here in double with room for its
// own roundings (2⁻⁴⁸ relative), lowered by 2⁻²⁰ relative and 10⁻³⁷ so that the rounding to
// the nearest float cannot raise it above that, and without branches (it vectorises): beyond
// float's range it is ±∞, and anything not a number gives −∞ (every z passes: safe).
PERTURBD_ORACLE_VECTOR_CLONES
void Needs(double threshold, const double* __restrict theta, size_t n, double epsilon, double sign,
           double z_max, float* __restrict need) {
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  const double inverse = 1.0 / epsilon;
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    const double s_theta = sign * theta[i];
    const double slack = 0x1p-20 * (std::abs(theta[i]) + epsilon * z_max) + 1e-37;
    const double room = 0x1p-48 * (std::abs(threshold) + std::abs(s_theta) + slack);
    double q = (threshold - s_theta - slack - room) * inverse;
    q -= 0x1p-20 * std::abs(q) + 1e-37;
    q = q >= -kFloatMax ? q : -kInf;  // NaN too
    q = q > kFloatMax ? kInf : q;
    need[i] = static_cast<float>(q);
  }
}

// Samples of a row through steps 1–3 before it has a threshold, and the misses after which it
// has none.
constexpr int kObservedSamples = 3;
constexpr int kMaxMisses = 3;
// T_row = the smallest k-th best key seen − kSpread·(their range): on the e2e shapes (argmax
// and top-10, d = 1000) 0.5 misses about one sample in a hundred and passes 10–30 coordinates
// (1.0 passes 25–60 and costs more in exact keys than it saves in misses; 0 misses most).
constexpr double kSpread = 0.5;

// GUMBEL's ∇ν = 1 + ln u from the words, as GumbelF computes it.
PERTURBD_ORACLE_VECTOR_CLONES
void GumbelGradFromWords(const uint32_t* __restrict words, size_t d, double* __restrict grad) {
#pragma omp simd
  for (size_t i = 0; i < d; ++i) {
    grad[i] = static_cast<double>(1.0f + noise_math::LogF(noise_internal::UniformOpenF(words[i])));
  }
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
      candidate_(key_hi_.size()),
      merged_(key_hi_.size()),
      z_(key_hi_.size()),
      candidate_key_(d),
      need_(words_.size(), std::numeric_limits<float>::infinity()) {
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
  std::fill(key_hi + d, key_hi + key_hi_.size(), -kInf);  // padding: raises no block maximum
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
    const float z_sign = NormalZSign(row);
    // The groups of 16 at i0 .. i0 + n − 1 (n a multiple of 16) of θ = th into out, and their
    // maxima into maxima.
    auto groups = [&](const double* th, size_t i0, size_t n, double* out, double* maxima) {
#ifdef PERTURBD_SELECT_AVX512
      if (avx512) {
        NormalKeyBoundsAvx512(bounds, words_.data() + i0, th, n, epsilon, f32, sign, z_sign, out,
                              maxima);
        return;
      }
#endif
      for (size_t i = 0; i < n; i += 16) {
        NormalKeyBounds(bounds, words_.data() + i0 + i, th + i, epsilon, f32, sign, z_sign,
                        out + i);
        maxima[i / 16] = MaxOf(out + i, 16);
      }
    };
    const size_t whole = d / 32 * 32;
    groups(theta, 0, whole, key_hi, block_max);
    if (whole < d) {
      // The last, partial block: its lanes may pair with padding coordinates, so it goes
      // through a padded copy of θ.
      double theta_pad[32], key_pad[32], pad_max[2];  // pad_max: over padding too, unused
      std::fill_n(theta_pad, 32, 0.0);
      std::copy(theta + whole, theta + d, theta_pad);
      groups(theta_pad, whole, 32, key_pad, pad_max);
      std::copy(key_pad, key_pad + (d - whole), key_hi + whole);
      for (size_t i = whole; i < d; i += 16) block_max[i / 16] = MaxOf(key_hi + i, 16);
    }
  }
}

void NoiseSelector::GumbelGrad(absl::Span<double> grad_nu) const {
  assert(grad_nu.size() == d_);
  GumbelGradFromWords(words_.data(), d_, grad_nu.data());
}

size_t NoiseSelector::Select(const NoiseRow& row, absl::Span<const double> theta, double epsilon,
                             bool f32, Sense sense, SparseVector& y, double* eta,
                             absl::Span<const int32_t> also_exact, bool same_row) {
  assert(row.single && theta.size() == d_);
  const double sign = sense == Sense::kMaximize ? 1.0 : -1.0;
  const size_t d = d_;
  const size_t k = k_;
  const double* th = theta.data();
  NoiseWords(row, d, words_.data(), avx512_);
  if (!same_row) row_ = RowThreshold{};
  if (row_.armed) {
    size_t exact = 0;
    if (SelectAbove(row, th, epsilon, f32, sign, y, eta, also_exact, exact)) {
      ++threshold_samples_;
      return exact;
    }
  }

  // 1. Bounds of every key, and their maxima over blocks of 16.
  KeyBounds(row, th, epsilon, f32, sign);
  const double* key_hi = key_hi_.data();
  const size_t blocks = block_max_.size();

  // 2. T = the smallest exact key of k seeds (Seeds).
  const double* block_max = block_max_.data();
  const uint32_t* words = words_.data();
  int32_t* cand = candidate_.data();
  double* cand_key = candidate_key_.data();
  float* z = z_.data();
  Seeds(key_hi, block_max, d, blocks, k, avx512_, cand);
  ExactKeys(row, words, th, cand, k, epsilon, f32, sign, z, cand_key, eta);
  const double threshold = *std::min_element(cand_key, cand_key + k);

  // 3. TopKOracle's scan over the coordinates whose bound is ≥ T, in index order.
  size_t n = Candidates(key_hi, block_max, d, threshold, avx512_, cand);
  const double kth = BestOfCandidates(row, th, epsilon, f32, sign, threshold, also_exact, n, y, eta);
  Observe(kth, row.distribution, th, epsilon, sign);
  return k + n;
}

double NoiseSelector::BestOfCandidates(const NoiseRow& row, const double* theta, double epsilon,
                                       bool f32, double sign, double threshold,
                                       absl::Span<const int32_t> also_exact, size_t& n,
                                       SparseVector& y, double* eta) {
  const size_t k = k_;
  int32_t* cand = candidate_.data();
  if (!also_exact.empty()) {
    // Offering a coordinate that is not a candidate changes nothing: its key is < T, below
    // each of the k best, so it leaves the buffer again and ties none of them.
    int32_t* merged = merged_.data();
    n = static_cast<size_t>(
        std::set_union(cand, cand + n, also_exact.begin(), also_exact.end(), merged) - merged);
    cand = merged;
  }
  double* cand_key = candidate_key_.data();
  ExactKeys(row, words_.data(), theta, cand, n, epsilon, f32, sign, z_.data(), cand_key, eta);
  size_t reach = 0;
  for (size_t j = 0; j < n; ++j) reach += cand_key[j] >= threshold ? 1 : 0;
  if (reach < k) return std::numeric_limits<double>::quiet_NaN();
  int32_t* bi = best_index_.data();
  const double kth =
      TopKOfCandidates(cand, cand_key, n, k, threshold, avx512_, best_key_.data(), bi);
  y.Clear();
  for (size_t j = 0; j < k; ++j) y.Push(bi[j], 1.0);
  return kth;
}

bool NoiseSelector::SelectAbove(const NoiseRow& row, const double* theta, double epsilon, bool f32,
                                double sign, SparseVector& y, double* eta,
                                absl::Span<const int32_t> also_exact, size_t& exact) {
  size_t n = Above(Bounds(row.distribution), row, words_.data(), words_.size(), sign, need_.data(),
                   avx512_, candidate_.data());
  if (n > d_ / 8 + kRankedMax) {
    // More transforms than steps 1–3 would do: not for this row.
    row_.misses = kMaxMisses;
    row_.armed = false;
    return false;
  }
  if (std::isnan(BestOfCandidates(row, theta, epsilon, f32, sign, row_.threshold, also_exact, n,
                                   y, eta))) {
    ++row_.misses;
    row_.armed = false;
    return false;
  }
  exact = n;
  return true;
}

void NoiseSelector::Observe(double kth, NoiseDistribution distribution, const double* theta,
                            double epsilon, double sign) {
  row_.kth_lo = std::min(row_.kth_lo, kth);
  row_.kth_hi = std::max(row_.kth_hi, kth);
  if (++row_.observed < kObservedSamples || row_.armed || row_.misses >= kMaxMisses ||
      !(epsilon > 0.0)) {
    return;
  }
  const double threshold = row_.kth_lo - kSpread * (row_.kth_hi - row_.kth_lo);
  if (!std::isfinite(threshold)) return;
  Needs(threshold, theta, d_, epsilon, sign, Bounds(distribution).z_max, need_.data());
  row_.threshold = threshold;
  row_.armed = true;
}

}  // namespace perturbd
