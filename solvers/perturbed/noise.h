// The perturbation noise Z[b, m, i] and its score ∇ν(Z), as a pure function of
// (key, instance, sample, coordinate, distribution) — DESIGN §2.
//
// One Philox4x32-10 call (philox.h) gives four 32-bit words for *quad* q:
//   key     = (low, high) 32 bits of the request seed, or of instance_seeds[b]
//   counter = (q, draw, instance, distribution tag)
// where `instance` is b (0 when instance seeds are given) and `draw` is m, or m / 2 for
// antithetic pairs. Coordinates come in blocks of 32 = 8 quads × 4 lanes, laid out lane-major
// so that vector code writes them without shuffling:
//   coordinate i  ↔  quad q = 8·(i / 32) + i % 8,  lane p = (i % 32) / 8.
// (NoiseQuadOf / NoiseLaneOf / NoiseCoordinate below.) Each word becomes u = (x + ½)·2⁻³² ∈ (0,1):
//   NORMAL  Box–Muller on lanes (0, 1) and (2, 3) of a quad:
//           Z₀ = √(−2 ln u₀) cos(2π u₁),  Z₁ = √(−2 ln u₀) sin(2π u₁);   ∇ν(Z) = Z
//   GUMBEL  Z = −ln(−ln u) (standard Gumbel, mean γ);  ∇ν(Z) = 1 − e^{−Z} = 1 + ln u
// Antithetic pairs: sample 2k+1 takes −Z of sample 2k (NORMAL), or 1 − u (GUMBEL, which is the
// uniform of the complemented word ~x, exactly).
// Single precision (NoiseRow::single, what every request uses; design-notes.md): the same
// words and formulas in float, u = (2·(x >> 9) + 1)·2⁻²⁴ (exact in float, ~x still gives 1 − u),
// noise_math's LogF / SinCos2PiF; Z and ∇ν are floats widened to double.
// The per-element functions are PERTURBD_HOST_DEVICE so the CUDA backend shares them.
#ifndef PERTURBD_SOLVERS_PERTURBED_NOISE_H_
#define PERTURBD_SOLVERS_PERTURBED_NOISE_H_

#include <cmath>
#include <cstdint>

#include "absl/types/span.h"
#include "solvers/perturbed/noise_math.h"
#include "solvers/perturbed/philox.h"

namespace perturbd {

enum class NoiseDistribution : uint32_t { kNormal = 0, kGumbel = 1 };

// Which random stream one (instance, sample) row of noise comes from.
struct NoiseRow {
  uint64_t key = 0;       // request seed, or instance_seeds[b]
  uint32_t instance = 0;  // b, or 0 with instance seeds
  uint32_t sample = 0;    // m
  bool antithetic = false;
  NoiseDistribution distribution = NoiseDistribution::kNormal;
  // Single precision: float transforms of the Philox words (see the header comment); every
  // request sets it (design-notes.md). False: the double transforms.
  bool single = false;
};

namespace noise_internal {
constexpr double kTwoPow32Inv = 2.3283064365386962890625e-10;  // 2⁻³²

PERTURBD_HOST_DEVICE double UniformOpen(uint32_t x) {
  // (x + ½)·2⁻³², with x converted through the 2⁵² bit trick (exact; vectorises without
  // unsigned conversion instructions).
  const double xd = noise_math::BitsDouble(0x4330000000000000ull | x) - 4503599627370496.0;
  return (xd + 0.5) * kTwoPow32Inv;
}

// Box–Muller on one pair of uniforms: (Z₀, Z₁) = √(−2 ln u₀) · (cos 2πu₁, sin 2πu₁).
// `sign` is −1 for the antithetic partner, +1 otherwise (an exact multiplication).
PERTURBD_HOST_DEVICE void BoxMuller(double u0, double u1, double sign, double& z0, double& z1) {
  const double radius = std::sqrt(-2.0 * noise_math::Log(u0));
  double s, c;
  noise_math::SinCos2Pi(u1, s, c);
  z0 = sign * (radius * c);
  z1 = sign * (radius * s);
}

// Standard Gumbel from one uniform: Z = −ln(−ln u), ∇ν(Z) = 1 + ln u.
PERTURBD_HOST_DEVICE void Gumbel(double u, double& z, double& grad_nu) {
  const double log_u = noise_math::Log(u);  // < 0
  z = -noise_math::Log(-log_u);
  grad_nu = 1.0 + log_u;
}

// Single precision (row.single). u = (2·(x >> 9) + 1)·2⁻²⁴ ∈ [2⁻²⁴, 1 − 2⁻²⁴]: exact in float,
// and the complemented word ~x gives exactly 1 − u (GUMBEL antithetic pairs).
PERTURBD_HOST_DEVICE float UniformOpenF(uint32_t x) {
  return static_cast<float>(static_cast<int32_t>(((x >> 9) << 1) | 1u)) * 5.9604644775390625e-8f;
}

// The Box–Muller radius √(−2 ln u₀) in float (NoiseSelector bounds it bucket by bucket).
PERTURBD_HOST_DEVICE float BoxMullerRadiusF(float u0) {
  return std::sqrt(-2.0f * noise_math::LogF(u0));
}

PERTURBD_HOST_DEVICE void BoxMullerF(float u0, float u1, float sign, float& z0, float& z1) {
  const float radius = BoxMullerRadiusF(u0);
  float s, c;
  noise_math::SinCos2PiF(u1, s, c);
  z0 = sign * (radius * c);
  z1 = sign * (radius * s);
}

PERTURBD_HOST_DEVICE void GumbelF(float u, float& z, float& grad_nu) {
  const float log_u = noise_math::LogF(u);  // < 0
  z = -noise_math::LogF(-log_u);
  grad_nu = 1.0f + log_u;
}
}  // namespace noise_internal

// Coordinate ↔ (quad, lane) map of the header comment.
PERTURBD_HOST_DEVICE uint32_t NoiseQuadOf(uint32_t i) { return 8u * (i / 32u) + i % 8u; }
PERTURBD_HOST_DEVICE uint32_t NoiseLaneOf(uint32_t i) { return (i % 32u) / 8u; }
PERTURBD_HOST_DEVICE uint32_t NoiseCoordinate(uint32_t q, uint32_t p) {
  return 32u * (q / 8u) + 8u * p + q % 8u;
}

// The Philox block of quad q of a row.
PERTURBD_HOST_DEVICE PhiloxBlock NoiseBlock(const NoiseRow& row, uint32_t q) {
  const uint32_t draw = row.antithetic ? row.sample / 2 : row.sample;
  return Philox4x32_10(q, draw, row.instance, static_cast<uint32_t>(row.distribution),
                       static_cast<uint32_t>(row.key), static_cast<uint32_t>(row.key >> 32));
}

// True for the second sample of an antithetic pair.
PERTURBD_HOST_DEVICE bool NoiseFlipped(const NoiseRow& row) {
  return row.antithetic && (row.sample & 1u) != 0;
}
// The sign of a NORMAL row's Z: −1 for the second sample of an antithetic pair.
PERTURBD_HOST_DEVICE float NormalZSign(const NoiseRow& row) {
  return NoiseFlipped(row) ? -1.0f : 1.0f;
}

// Z and ∇ν(Z) for the four lanes of quad q of a row, i.e. coordinates NoiseCoordinate(q, p)
// (the scalar reference; FillNoise computes the same values, bit for bit, with vector code).
PERTURBD_HOST_DEVICE void NoiseQuad(const NoiseRow& row, uint32_t q, double z[4],
                                    double grad_nu[4]) {
  const PhiloxBlock r = NoiseBlock(row, q);
  const bool flip = NoiseFlipped(row);
  if (row.single) {
    using noise_internal::UniformOpenF;
    float zf[4], gf[4];
    if (row.distribution == NoiseDistribution::kNormal) {
      const float sign = flip ? -1.0f : 1.0f;
      noise_internal::BoxMullerF(UniformOpenF(r.x[0]), UniformOpenF(r.x[1]), sign, zf[0], zf[1]);
      noise_internal::BoxMullerF(UniformOpenF(r.x[2]), UniformOpenF(r.x[3]), sign, zf[2], zf[3]);
      for (int p = 0; p < 4; ++p) gf[p] = zf[p];
    } else {
      for (int p = 0; p < 4; ++p) {
        noise_internal::GumbelF(UniformOpenF(flip ? ~r.x[p] : r.x[p]), zf[p], gf[p]);
      }
    }
    for (int p = 0; p < 4; ++p) {
      z[p] = zf[p];
      grad_nu[p] = gf[p];
    }
    return;
  }
  if (row.distribution == NoiseDistribution::kNormal) {
    using noise_internal::UniformOpen;
    const double sign = flip ? -1.0 : 1.0;
    noise_internal::BoxMuller(UniformOpen(r.x[0]), UniformOpen(r.x[1]), sign, z[0], z[1]);
    noise_internal::BoxMuller(UniformOpen(r.x[2]), UniformOpen(r.x[3]), sign, z[2], z[3]);
    for (int p = 0; p < 4; ++p) grad_nu[p] = z[p];
  } else {
    // The antithetic partner uses 1 − u, which is exactly the uniform of ~x.
    for (int p = 0; p < 4; ++p) {
      const uint32_t x = flip ? ~r.x[p] : r.x[p];
      noise_internal::Gumbel(noise_internal::UniformOpen(x), z[p], grad_nu[p]);
    }
  }
}

// Z[row, i] and ∇ν(Z[row, i]) for one coordinate i: the lane of NoiseQuad's quad computed
// alone (one Box–Muller pair or one Gumbel), the same bits. The GPU pipeline's per-coordinate
// steps use it.
PERTURBD_HOST_DEVICE void NoiseLane(const NoiseRow& row, uint32_t i, double& z, double& grad_nu) {
  const PhiloxBlock r = NoiseBlock(row, NoiseQuadOf(i));
  const uint32_t p = NoiseLaneOf(i);
  const bool flip = NoiseFlipped(row);
  const bool second_pair = p >= 2u;
  const uint32_t x0 = second_pair ? r.x[2] : r.x[0];
  const uint32_t x1 = second_pair ? r.x[3] : r.x[1];
  const uint32_t x = p == 0u ? r.x[0] : p == 1u ? r.x[1] : p == 2u ? r.x[2] : r.x[3];
  if (row.single) {
    using noise_internal::UniformOpenF;
    float zf, gf;
    if (row.distribution == NoiseDistribution::kNormal) {
      float z0, z1;
      noise_internal::BoxMullerF(UniformOpenF(x0), UniformOpenF(x1), flip ? -1.0f : 1.0f, z0, z1);
      zf = (p & 1u) != 0u ? z1 : z0;
      gf = zf;
    } else {
      noise_internal::GumbelF(UniformOpenF(flip ? ~x : x), zf, gf);
    }
    z = zf;
    grad_nu = gf;
    return;
  }
  if (row.distribution == NoiseDistribution::kNormal) {
    using noise_internal::UniformOpen;
    double z0, z1;
    noise_internal::BoxMuller(UniformOpen(x0), UniformOpen(x1), flip ? -1.0 : 1.0, z0, z1);
    z = (p & 1u) != 0u ? z1 : z0;
    grad_nu = z;
  } else {
    noise_internal::Gumbel(noise_internal::UniformOpen(flip ? ~x : x), z, grad_nu);
  }
}

// Fills z[i] = Z[row, i] and grad_nu[i] = ∇ν(Z[row, i]) for i = 0 .. z.size()−1. An empty
// grad_nu skips ∇ν (a forward pass without derivatives does not need it).
void FillNoise(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu);

// η = θ + ε·z for additive noise as every pass computes it (DESIGN §5): in double, rounded
// once to float for FLOAT32 θ. FormEta, FillNoiseEta and NoiseSelector share it: the
// selector's η must be the full pass's, bit for bit.
PERTURBD_HOST_DEVICE double AdditiveEta(double theta, double epsilon, double z, bool f32) {
  const double v = theta + epsilon * z;
  return f32 ? static_cast<double>(static_cast<float>(v)) : v;
}

// FillNoise followed by eta[i] = AdditiveEta(theta[i], epsilon, z[i], f32), without storing z,
// for a single-precision row (row.single): the same η and ∇ν, bit for bit.
void FillNoiseEta(const NoiseRow& row, const double* theta, double epsilon, bool f32,
                  absl::Span<double> eta, absl::Span<double> grad_nu);

// The Philox words of coordinates [0, 32·⌈d/32⌉) of a row in coordinate order: words[i] is the
// word of lane NoiseLaneOf(i) of quad NoiseQuadOf(i), complemented for the second GUMBEL
// sample of an antithetic pair, i.e. the word the single-precision transform of coordinate i
// takes. `words` holds 32·⌈d/32⌉ entries (the padding lanes complete the last quads).
// `vector_kernel` false: the portable kernel even on AVX-512 CPUs (the same words; tests).
void NoiseWords(const NoiseRow& row, size_t d, uint32_t* words, bool vector_kernel = true);

// Z[row, i] in single precision from NoiseWords' words (row.single): FillNoise's value, bit for
// bit (the same scalar transforms). The two distributions apart, for loops over coordinates:
// GUMBEL reads word i; NORMAL lane i reads its Box–Muller partner too, 8 coordinates away in
// the same quad, and z_sign is −1 for the second sample of an antithetic pair.
PERTURBD_HOST_DEVICE float GumbelFromWordsF(const uint32_t* words, uint32_t i) {
  float z, grad_nu;
  noise_internal::GumbelF(noise_internal::UniformOpenF(words[i]), z, grad_nu);
  return z;
}
PERTURBD_HOST_DEVICE float NormalFromWordsF(const uint32_t* words, uint32_t i, float z_sign) {
  using noise_internal::UniformOpenF;
  const uint32_t odd = NoiseLaneOf(i) & 1u;  // lanes (0, 1) and (2, 3) are pairs
  const uint32_t first = i - 8u * odd;
  float z0, z1;
  noise_internal::BoxMullerF(UniformOpenF(words[first]), UniformOpenF(words[first + 8u]), z_sign,
                             z0, z1);
  return odd != 0u ? z1 : z0;
}
PERTURBD_HOST_DEVICE float NoiseFromWordsF(const NoiseRow& row, const uint32_t* words,
                                           uint32_t i) {
  return row.distribution == NoiseDistribution::kGumbel
             ? GumbelFromWordsF(words, i)
             : NormalFromWordsF(words, i, NormalZSign(row));
}

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_NOISE_H_
