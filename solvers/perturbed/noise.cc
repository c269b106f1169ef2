#include "solvers/perturbed/noise.h"

#include <algorithm>
#include <cstring>

namespace perturbd {
namespace {

// Quads per chunk: the Philox words and transformed values of one chunk stay in L1. A chunk
// is 16 blocks of 8 quads (32 coordinates).
constexpr size_t kBlockQuads = 8;
constexpr size_t kChunkQuads = 128;

// x86-64 builds carry AVX-512 and AVX2 clones of the vector kernels, chosen at load time;
// every clone computes the same bits (no contraction, same operation order).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define PERTURBD_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PERTURBD_VECTOR_CLONES
#endif

// The kernels work on *planar* chunks: plane p holds lane p of every quad, so each loop reads
// and writes contiguous arrays (what vectorisers handle best). With the lane-major blocks of
// noise.h, block g of a chunk is planes[0..3][8g .. 8g+7] in coordinate order.
struct Planes {
  alignas(64) double v[4][kChunkQuads];
};

// u[p][j] = uniform of lane p of quad q0 + j (with the GUMBEL antithetic complement).
PERTURBD_VECTOR_CLONES
void PhiloxUniforms(const NoiseRow& row, uint32_t q0, size_t nq, uint32_t complement, Planes& u) {
  const uint32_t draw = row.antithetic ? row.sample / 2 : row.sample;
  const uint32_t tag = static_cast<uint32_t>(row.distribution);
  const uint32_t k0 = static_cast<uint32_t>(row.key), k1 = static_cast<uint32_t>(row.key >> 32);
  double* __restrict u0 = u.v[0];
  double* __restrict u1 = u.v[1];
  double* __restrict u2 = u.v[2];
  double* __restrict u3 = u.v[3];
#pragma omp simd
  for (size_t j = 0; j < nq; ++j) {
    const PhiloxBlock b =
        Philox4x32_10(q0 + static_cast<uint32_t>(j), draw, row.instance, tag, k0, k1);
    u0[j] = noise_internal::UniformOpen(b.x[0] ^ complement);
    u1[j] = noise_internal::UniformOpen(b.x[1] ^ complement);
    u2[j] = noise_internal::UniformOpen(b.x[2] ^ complement);
    u3[j] = noise_internal::UniformOpen(b.x[3] ^ complement);
  }
}

PERTURBD_VECTOR_CLONES
void NormalPlanes(const Planes& u, size_t nq, double sign, Planes& z) {
  const double* __restrict u0 = u.v[0];
  const double* __restrict u1 = u.v[1];
  const double* __restrict u2 = u.v[2];
  const double* __restrict u3 = u.v[3];
  double* __restrict z0 = z.v[0];
  double* __restrict z1 = z.v[1];
  double* __restrict z2 = z.v[2];
  double* __restrict z3 = z.v[3];
#pragma omp simd
  for (size_t j = 0; j < nq; ++j) {
    noise_internal::BoxMuller(u0[j], u1[j], sign, z0[j], z1[j]);
    noise_internal::BoxMuller(u2[j], u3[j], sign, z2[j], z3[j]);
  }
}

PERTURBD_VECTOR_CLONES
void GumbelPlanes(const Planes& u, size_t nq, Planes& z, Planes& grad) {
  for (int p = 0; p < 4; ++p) {
    const double* __restrict up = u.v[p];
    double* __restrict zp = z.v[p];
    double* __restrict gp = grad.v[p];
#pragma omp simd
    for (size_t j = 0; j < nq; ++j) noise_internal::Gumbel(up[j], zp[j], gp[j]);
  }
}

// out[32g + 8p + j] = planes.v[p][8g + j]: the first `count` coordinates of a chunk.
void CopyBlocks(const Planes& planes, size_t count, double* __restrict out) {
  constexpr size_t kBlock = 4 * kBlockQuads;
  size_t g = 0;
  for (; (g + 1) * kBlock <= count; ++g) {  // whole blocks: fixed-size copies
    for (size_t p = 0; p < 4; ++p) {
      std::memcpy(out + g * kBlock + p * kBlockQuads, &planes.v[p][g * kBlockQuads],
                  kBlockQuads * sizeof(double));
    }
  }
  for (size_t i = g * kBlock; i < count; ++i) {  // the ragged tail
    out[i] = planes.v[(i % kBlock) / kBlockQuads][g * kBlockQuads + i % kBlockQuads];
  }
}

}  // namespace

void FillNoise(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu) {
  Planes u, zp, gp;
  const size_t d = z.size();
  const bool flip = NoiseFlipped(row);
  const bool normal = row.distribution == NoiseDistribution::kNormal;
  constexpr size_t kChunk = 4 * kChunkQuads;
  for (size_t start = 0; start < d; start += kChunk) {
    const size_t count = std::min(kChunk, d - start);
    // Coordinate i of a partial last block still belongs to quad NoiseQuadOf(i): that block
    // needs its first min(8, rest) quads (small d draws d quads, not 8).
    const size_t full_blocks = count / (4 * kBlockQuads);
    const size_t rest = count - full_blocks * 4 * kBlockQuads;
    const size_t quads = full_blocks * kBlockQuads + std::min(kBlockQuads, rest);
    // The antithetic GUMBEL partner uses 1 − u, exactly the uniform of the complemented word.
    PhiloxUniforms(row, static_cast<uint32_t>(start / 4), quads, flip && !normal ? 0xFFFFFFFFu : 0u,
                   u);
    if (normal) {
      NormalPlanes(u, quads, flip ? -1.0 : 1.0, zp);
      CopyBlocks(zp, count, z.data() + start);
      CopyBlocks(zp, count, grad_nu.data() + start);
    } else {
      GumbelPlanes(u, quads, zp, gp);
      CopyBlocks(zp, count, z.data() + start);
      CopyBlocks(gp, count, grad_nu.data() + start);
    }
  }
}

}  // namespace perturbd
