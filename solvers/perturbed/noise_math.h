// Elementary functions for the noise transforms, written as straight-line IEEE arithmetic
// (no table, no libm call, no branch) so that:
//   * a loop over them vectorises (`omp simd`: 4 or 8 lanes with AVX2 / AVX-512);
//   * the CPU and the CUDA backend compute bit-identical noise: every operation is a correctly
//     rounded +, −, ×, ÷ or √, and the library is built with -ffp-contract=off (nvcc with
//     --fmad=false) so that no compiler fuses them differently.
// Accuracy: a few ulp over the arguments the noise uses (u ∈ [2⁻³³, 1)), far below what any
// statistical use can see; the tests compare them with libm.
#ifndef PERTURBD_SOLVERS_PERTURBED_NOISE_MATH_H_
#define PERTURBD_SOLVERS_PERTURBED_NOISE_MATH_H_

#include <cmath>
#include <cstdint>
#include <cstring>

#include "solvers/perturbed/philox.h"

namespace perturbd {
namespace noise_math {

PERTURBD_HOST_DEVICE uint64_t DoubleBits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

PERTURBD_HOST_DEVICE double BitsDouble(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

// ln x for a positive, normal, finite x:
//   x = m · 2^e with m ∈ [√½, √2),  ln m = 2 atanh(f) = 2 Σ f^{2k+1}/(2k+1),  f = (m−1)/(m+1),
// |f| ≤ 0.1716, so eleven terms reach double precision.
PERTURBD_HOST_DEVICE double Log(double x) {
  const uint64_t bits = DoubleBits(x);
  // The biased exponent as a double without an int→double conversion: 2⁵² + e_biased − 2⁵².
  double e = BitsDouble((bits >> 52) | 0x4330000000000000ull) - 4503599627370496.0 - 1023.0;
  double m = BitsDouble((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  const bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  e = big ? e + 1.0 : e;
  const double f = (m - 1.0) / (m + 1.0);
  const double f2 = f * f;
  double p = 2.0 / 21.0;
  p = p * f2 + 2.0 / 19.0;
  p = p * f2 + 2.0 / 17.0;
  p = p * f2 + 2.0 / 15.0;
  p = p * f2 + 2.0 / 13.0;
  p = p * f2 + 2.0 / 11.0;
  p = p * f2 + 2.0 / 9.0;
  p = p * f2 + 2.0 / 7.0;
  p = p * f2 + 2.0 / 5.0;
  p = p * f2 + 2.0 / 3.0;
  p = p * f2 + 2.0;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // high bits of ln 2, exact × e
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  return e * kLn2Hi + (f * p + e * kLn2Lo);
}

// sin(2πu) and cos(2πu) for u ∈ [0, 1]: reduce to w = u − (round(4u)/4 mod 1), |w| ≤ 1/8, so
// a = 2πw ∈ [−π/4, π/4], evaluate Taylor series to a¹⁷ / a¹⁶, then rotate by the quadrant.
PERTURBD_HOST_DEVICE void SinCos2Pi(double u, double& s, double& c) {
  const double v = u >= 0.5 ? u - 1.0 : u;  // [−½, ½), exact
  // round(4v) ∈ {−2, …, 2} by the 1.5·2⁵² trick (no int conversion, vectorises everywhere).
  const double q = (4.0 * v + 6755399441055744.0) - 6755399441055744.0;
  const double w = v - 0.25 * q;  // exact
  const double a = 6.283185307179586476925 * w;
  const double a2 = a * a;
  double sp = 1.0 / 355687428096000.0;  // 1/17!
  sp = sp * a2 - 1.0 / 1307674368000.0;
  sp = sp * a2 + 1.0 / 6227020800.0;
  sp = sp * a2 - 1.0 / 39916800.0;
  sp = sp * a2 + 1.0 / 362880.0;
  sp = sp * a2 - 1.0 / 5040.0;
  sp = sp * a2 + 1.0 / 120.0;
  sp = sp * a2 - 1.0 / 6.0;
  const double sin_a = a + a * (a2 * sp);
  double cp = 1.0 / 20922789888000.0;  // 1/16!
  cp = cp * a2 - 1.0 / 87178291200.0;
  cp = cp * a2 + 1.0 / 479001600.0;
  cp = cp * a2 - 1.0 / 3628800.0;
  cp = cp * a2 + 1.0 / 40320.0;
  cp = cp * a2 - 1.0 / 720.0;
  cp = cp * a2 + 1.0 / 24.0;
  cp = cp * a2 - 0.5;
  const double cos_a = 1.0 + a2 * cp;
  // 2πv = a + qπ/2, q ∈ {−2, …, 2}: rotate (sin a, cos a) by π when |q| = 2, by ±π/2 when
  // q = ±1. One comparison per select, so the loop if-converts and vectorises.
  const bool half_turn = std::fabs(q) == 2.0;
  const double s1 = half_turn ? -sin_a : sin_a;
  const double c1 = half_turn ? -cos_a : cos_a;
  const bool plus = q == 1.0;
  const bool minus = q == -1.0;
  s = plus ? c1 : (minus ? -c1 : s1);
  c = plus ? -s1 : (minus ? s1 : c1);
}

// ---- single precision (the noise of every request; see noise.h) ----

PERTURBD_HOST_DEVICE uint32_t FloatBits(float x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__float_as_uint(x));
#else
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

PERTURBD_HOST_DEVICE float BitsFloat(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

// ln x in float for a positive, normal, finite float x: the reduction of Log with
// |f| ≤ 0.1716 and five terms of 2 atanh f (the next one is below 2⁻²⁸ relative).
PERTURBD_HOST_DEVICE float LogF(float x) {
  const uint32_t bits = FloatBits(x);
  // The biased exponent as a float without an int→float conversion: 2²³ + e_biased − 2²³.
  float e = BitsFloat((bits >> 23) | 0x4B000000u) - 8388608.0f - 127.0f;
  float m = BitsFloat((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  const float f = (m - 1.0f) / (m + 1.0f);
  const float f2 = f * f;
  float p = 2.0f / 9.0f;
  p = p * f2 + 2.0f / 7.0f;
  p = p * f2 + 2.0f / 5.0f;
  p = p * f2 + 2.0f / 3.0f;
  p = p * f2 + 2.0f;
  constexpr float kLn2Hi = 6.93145752e-01f;  // 0x3F317200: e · kLn2Hi is exact for |e| < 2⁸
  constexpr float kLn2Lo = 1.42860677e-06f;  // 0x35BFBE8E
  return e * kLn2Hi + (f * p + e * kLn2Lo);
}

// sin(2πu) and cos(2πu) in float for u ∈ [0, 1]: SinCos2Pi's reduction (exact in float for
// the uniforms of noise.h, multiples of 2⁻²⁴), Taylor series to a⁹ / a¹⁰.
PERTURBD_HOST_DEVICE void SinCos2PiF(float u, float& s, float& c) {
  const float v = u >= 0.5f ? u - 1.0f : u;                   // [−½, ½), exact
  const float q = (4.0f * v + 12582912.0f) - 12582912.0f;    // round(4v) ∈ {−2, …, 2}
  const float w = v - 0.25f * q;                              // exact, |w| ≤ 1/8
  const float a = 6.28318530717958647692f * w;
  const float a2 = a * a;
  float sp = 1.0f / 362880.0f;  // 1/9!
  sp = sp * a2 - 1.0f / 5040.0f;
  sp = sp * a2 + 1.0f / 120.0f;
  sp = sp * a2 - 1.0f / 6.0f;
  const float sin_a = a + a * (a2 * sp);
  float cp = -1.0f / 3628800.0f;  // −1/10!
  cp = cp * a2 + 1.0f / 40320.0f;
  cp = cp * a2 - 1.0f / 720.0f;
  cp = cp * a2 + 1.0f / 24.0f;
  cp = cp * a2 - 0.5f;
  const float cos_a = 1.0f + a2 * cp;
  const bool half_turn = q == 2.0f || q == -2.0f;
  const float s1 = half_turn ? -sin_a : sin_a;
  const float c1 = half_turn ? -cos_a : cos_a;
  const bool plus = q == 1.0f;
  const bool minus = q == -1.0f;
  s = plus ? c1 : (minus ? -c1 : s1);
  c = plus ? -s1 : (minus ? s1 : c1);
}

}  // namespace noise_math
}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_NOISE_MATH_H_
