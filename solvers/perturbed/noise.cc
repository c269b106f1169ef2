#include "solvers/perturbed/noise.h"

#include <algorithm>

namespace perturbd {

void FillNoise(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu) {
  const size_t d = z.size();
  const size_t full = d / 4;
  for (size_t q = 0; q < full; ++q) {
    NoiseQuad(row, static_cast<uint32_t>(q), &z[4 * q], &grad_nu[4 * q]);
  }
  if (const size_t rest = d - 4 * full; rest > 0) {
    double zq[4], gq[4];
    NoiseQuad(row, static_cast<uint32_t>(full), zq, gq);
    std::copy(zq, zq + rest, z.begin() + 4 * full);
    std::copy(gq, gq + rest, grad_nu.begin() + 4 * full);
  }
}

}  // namespace perturbd
