// The perturbation noise Z[b, m, i] and its score ∇ν(Z), as a pure function of
// (key, instance, sample, coordinate, distribution) — DESIGN §2.
//
// Layout of one Philox4x32-10 call (philox.h):
//   key     = (low, high) 32 bits of the request seed, or of instance_seeds[b]
//   counter = (i / 4, draw, instance, distribution tag)
// where `instance` is b (0 when instance seeds are given) and `draw` is m, or m / 2 for
// antithetic pairs. The four 32-bit outputs x serve coordinates 4·(i/4) .. 4·(i/4)+3, through
// u = (x + 1/2) · 2⁻³² ∈ (0, 1):
//   NORMAL  Box–Muller on lanes (0, 1) and (2, 3):
//           Z₀ = √(−2 ln u₀) cos(2π u₁),  Z₁ = √(−2 ln u₀) sin(2π u₁);   ∇ν(Z) = Z
//   GUMBEL  Z = −ln(−ln u) (standard Gumbel, mean γ);                  ∇ν(Z) = 1 − e^{−Z} = 1 + ln
//   u
// Antithetic pairs: sample 2k+1 takes −Z of sample 2k (NORMAL), or 1 − u (GUMBEL, which is the
// bitwise complement of x, exactly).
// The per-element functions are PERTURBD_HOST_DEVICE so the CUDA backend shares them.
#ifndef PERTURBD_SOLVERS_PERTURBED_NOISE_H_
#define PERTURBD_SOLVERS_PERTURBED_NOISE_H_

#include <cmath>
#include <cstdint>

#include "absl/types/span.h"
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
};

namespace noise_internal {
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kTwoPow32Inv = 2.3283064365386962890625e-10;  // 2⁻³²

PERTURBD_HOST_DEVICE double UniformOpen(uint32_t x) {
  return (static_cast<double>(x) + 0.5) * kTwoPow32Inv;
}
}  // namespace noise_internal

// The Philox block that serves coordinates 4q .. 4q+3 of a row.
PERTURBD_HOST_DEVICE PhiloxBlock NoiseBlock(const NoiseRow& row, uint32_t q) {
  const uint32_t draw = row.antithetic ? row.sample / 2 : row.sample;
  return Philox4x32_10(q, draw, row.instance, static_cast<uint32_t>(row.distribution),
                       static_cast<uint32_t>(row.key), static_cast<uint32_t>(row.key >> 32));
}

// Z and ∇ν(Z) for the four coordinates 4q .. 4q+3 of a row.
PERTURBD_HOST_DEVICE void NoiseQuad(const NoiseRow& row, uint32_t q, double z[4],
                                    double grad_nu[4]) {
  using namespace noise_internal;
  PhiloxBlock r = NoiseBlock(row, q);
  const bool flip = row.antithetic && (row.sample & 1u);
  if (row.distribution == NoiseDistribution::kNormal) {
    for (int p = 0; p < 4; p += 2) {
      const double radius = std::sqrt(-2.0 * std::log(UniformOpen(r.x[p])));
      const double angle = kTwoPi * UniformOpen(r.x[p + 1]);
      double z0 = radius * std::cos(angle);
      double z1 = radius * std::sin(angle);
      if (flip) {
        z0 = -z0;
        z1 = -z1;
      }
      z[p] = z0;
      z[p + 1] = z1;
      grad_nu[p] = z0;
      grad_nu[p + 1] = z1;
    }
  } else {
    for (int p = 0; p < 4; ++p) {
      const uint32_t x = flip ? ~r.x[p] : r.x[p];
      const double log_u = std::log(UniformOpen(x));  // < 0
      z[p] = -std::log(-log_u);
      grad_nu[p] = 1.0 + log_u;
    }
  }
}

// Fills z[i] = Z[row, i] and grad_nu[i] = ∇ν(Z[row, i]) for i = 0 .. z.size()−1.
void FillNoise(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_NOISE_H_
