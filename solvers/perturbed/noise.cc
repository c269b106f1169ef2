#include "solvers/perturbed/noise.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "solvers/oracles/internal/vector_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

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

// The Philox words of a chunk, planar: w.v[p][j] = word p of quad q0 + j, for j < nq (the
// AVX-512 kernel rounds nq up to a multiple of 8, ≤ kChunkQuads; the extra quads are ignored).
struct Words {
  alignas(64) uint32_t v[4][kChunkQuads];
};

// The portable kernel (and the AVX2 / baseline clones): Philox4x32_10 per quad.
PERTURBD_VECTOR_CLONES
void PhiloxWordsGeneric(const NoiseRow& row, uint32_t q0, size_t nq, Words& w) {
  const uint32_t draw = row.antithetic ? row.sample / 2 : row.sample;
  const uint32_t tag = static_cast<uint32_t>(row.distribution);
  const uint32_t k0 = static_cast<uint32_t>(row.key), k1 = static_cast<uint32_t>(row.key >> 32);
  uint32_t* __restrict w0 = w.v[0];
  uint32_t* __restrict w1 = w.v[1];
  uint32_t* __restrict w2 = w.v[2];
  uint32_t* __restrict w3 = w.v[3];
#pragma omp simd
  for (size_t j = 0; j < nq; ++j) {
    const PhiloxBlock b =
        Philox4x32_10(q0 + static_cast<uint32_t>(j), draw, row.instance, tag, k0, k1);
    w0[j] = b.x[0];
    w1[j] = b.x[1];
    w2[j] = b.x[2];
    w3[j] = b.x[3];
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define PERTURBD_PHILOX_AVX512 1
// GCC 12 reports its own intrinsics' passthrough operands as (maybe) uninitialized here (a
// known false positive of the *_mask builtins behind _mm512_mul_epu32 and the shifts).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// Where a step's eight words of lane p of quads q .. q + 7 go: the planes of Words, or
// NoiseWords' coordinate order (a block of 8 quads is 32 coordinates, lane p its 8p .. 8p + 7)
// with the antithetic GUMBEL complement.
struct PlaneStore {
  Words& w;
  __attribute__((target("avx512f"), always_inline)) void operator()(int p, size_t q,
                                                                    __m256i v) const {
    _mm256_store_si256(reinterpret_cast<__m256i*>(&w.v[p][q]), v);
  }
};
struct CoordinateStore {
  uint32_t* out;  // the chunk's first coordinate
  uint32_t complement;
  __attribute__((target("avx512f"), always_inline)) void operator()(int p, size_t q,
                                                                    __m256i v) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4 * q + 8 * static_cast<size_t>(p)),
                        _mm256_xor_si256(v, _mm256_set1_epi32(static_cast<int>(complement))));
  }
};

// The 8·H quads q0 + j .. of one step: H independent chains hide vpmuludq's latency. The
// loops are unrolled by pragma: left rolled, GCC keeps the chains' registers in memory
// (four chains were then 40 % slower than two; unrolled, 10 % faster).
template <int H, typename Store>
__attribute__((target("avx512f"), always_inline)) inline void PhiloxStepAvx512(const NoiseRow& row,
                                                                               uint32_t q0,
                                                                               size_t j,
                                                                               const Store& store) {
  using philox_internal::kMul0;
  using philox_internal::kMul1;
  using philox_internal::kWeyl0;
  using philox_internal::kWeyl1;
  const uint32_t draw = row.antithetic ? row.sample / 2 : row.sample;
  const uint32_t tag = static_cast<uint32_t>(row.distribution);
  const __m512i mul0 = _mm512_set1_epi64(kMul0);
  const __m512i mul1 = _mm512_set1_epi64(kMul1);
  const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  constexpr int kXor3 = 0x96;  // vpternlog: a ^ b ^ c
  __m512i c0[H], c1[H], c2[H], c3[H];
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) {
    c0[h] = _mm512_add_epi64(_mm512_set1_epi64(q0 + j + 8 * static_cast<uint32_t>(h)), lanes);
    c1[h] = _mm512_set1_epi64(draw);
    c2[h] = _mm512_set1_epi64(row.instance);
    c3[h] = _mm512_set1_epi64(tag);
  }
  uint32_t k0 = static_cast<uint32_t>(row.key), k1 = static_cast<uint32_t>(row.key >> 32);
#pragma GCC unroll 10
  for (int r = 0; r < 10; ++r) {
    const __m512i kk0 = _mm512_set1_epi64(k0);
    const __m512i kk1 = _mm512_set1_epi64(k1);
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      const __m512i p0 = _mm512_mul_epu32(c0[h], mul0);  // kMul0 · c0
      const __m512i p1 = _mm512_mul_epu32(c2[h], mul1);  // kMul1 · c2
      c0[h] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), c1[h], kk0, kXor3);
      c2[h] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), c3[h], kk1, kXor3);
      c1[h] = p1;
      c3[h] = p0;
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  const __m512i* planes[4] = {c0, c1, c2, c3};
#pragma GCC unroll 4
  for (int p = 0; p < 4; ++p) {
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      store(p, j + 8 * static_cast<size_t>(h), _mm512_cvtepi64_epi32(planes[p][h]));
    }
  }
}

// AVX-512F: eight quads per vector, one per 64-bit lane whose low half holds the 32-bit
// word, so each 32×32→64 product is one vpmuludq whose low half is the next word and whose
// high half is one shift away — no blends to split even and odd lanes. The high halves of the
// lanes collect garbage (a product's high word, xored along), which vpmuludq ignores and the
// final vpmovqd drops. Integer arithmetic, so the same bits as Philox4x32_10 (the tests
// compare them).
// The nq quads from q0 into store: steps of four chains, then two, then one, so exactly the
// quads up to a multiple of 8 (NoiseWords' coordinates have no room past them).
template <typename Store>
__attribute__((target("avx512f"), always_inline)) inline void PhiloxStepsAvx512(
    const NoiseRow& row, uint32_t q0, size_t nq, const Store& store) {
  size_t j = 0;
  for (; j + 8 * 4 <= nq; j += 8 * 4) PhiloxStepAvx512<4>(row, q0, j, store);
  for (; j + 8 * 2 <= nq; j += 8 * 2) PhiloxStepAvx512<2>(row, q0, j, store);
  for (; j < nq; j += 8) PhiloxStepAvx512<1>(row, q0, j, store);
}

__attribute__((target("avx512f"))) void PhiloxWordsAvx512(const NoiseRow& row, uint32_t q0,
                                                          size_t nq, Words& w) {
  PhiloxStepsAvx512(row, q0, nq, PlaneStore{w});
}

// NoiseWords' chunk of nq quads (a multiple of 8) from quad q0, straight into coordinate order.
__attribute__((target("avx512f"))) void PhiloxCoordinatesAvx512(const NoiseRow& row, uint32_t q0,
                                                                size_t nq, uint32_t complement,
                                                                uint32_t* out) {
  PhiloxStepsAvx512(row, q0, nq, CoordinateStore{out, complement});
}
#pragma GCC diagnostic pop
#endif

void PhiloxWords(const NoiseRow& row, uint32_t q0, size_t nq, Words& w) {
#ifdef PERTURBD_PHILOX_AVX512
  if (CpuHasAvx512F()) {
    PhiloxWordsAvx512(row, q0, nq, w);
    return;
  }
#endif
  PhiloxWordsGeneric(row, q0, nq, w);
}

// u[p][j] = uniform of lane p of quad q0 + j (with the GUMBEL antithetic complement).
PERTURBD_VECTOR_CLONES
void WordsToUniforms(const Words& w, size_t nq, uint32_t complement, Planes& u) {
  for (int p = 0; p < 4; ++p) {
    const uint32_t* __restrict wp = w.v[p];
    double* __restrict up = u.v[p];
#pragma omp simd
    for (size_t j = 0; j < nq; ++j) up[j] = noise_internal::UniformOpen(wp[j] ^ complement);
  }
}

void PhiloxUniforms(const NoiseRow& row, uint32_t q0, size_t nq, uint32_t complement, Planes& u) {
  Words w;
  PhiloxWords(row, q0, nq, w);
  WordsToUniforms(w, nq, complement, u);
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

// Single precision (NoiseRow::single): float planes, twice the lanes per vector.
struct PlanesF {
  alignas(64) float v[4][kChunkQuads];
};

PERTURBD_VECTOR_CLONES
void WordsToUniformsF(const Words& w, size_t nq, uint32_t complement, PlanesF& u) {
  for (int p = 0; p < 4; ++p) {
    const uint32_t* __restrict wp = w.v[p];
    float* __restrict up = u.v[p];
#pragma omp simd
    for (size_t j = 0; j < nq; ++j) up[j] = noise_internal::UniformOpenF(wp[j] ^ complement);
  }
}

void PhiloxUniformsF(const NoiseRow& row, uint32_t q0, size_t nq, uint32_t complement,
                     PlanesF& u) {
  Words w;
  PhiloxWords(row, q0, nq, w);
  WordsToUniformsF(w, nq, complement, u);
}

PERTURBD_VECTOR_CLONES
void NormalPlanesF(const PlanesF& u, size_t nq, float sign, PlanesF& z) {
  const float* __restrict u0 = u.v[0];
  const float* __restrict u1 = u.v[1];
  const float* __restrict u2 = u.v[2];
  const float* __restrict u3 = u.v[3];
  float* __restrict z0 = z.v[0];
  float* __restrict z1 = z.v[1];
  float* __restrict z2 = z.v[2];
  float* __restrict z3 = z.v[3];
#pragma omp simd
  for (size_t j = 0; j < nq; ++j) {
    noise_internal::BoxMullerF(u0[j], u1[j], sign, z0[j], z1[j]);
    noise_internal::BoxMullerF(u2[j], u3[j], sign, z2[j], z3[j]);
  }
}

PERTURBD_VECTOR_CLONES
void GumbelPlanesF(const PlanesF& u, size_t nq, PlanesF& z, PlanesF& grad) {
  for (int p = 0; p < 4; ++p) {
    const float* __restrict up = u.v[p];
    float* __restrict zp = z.v[p];
    float* __restrict gp = grad.v[p];
#pragma omp simd
    for (size_t j = 0; j < nq; ++j) noise_internal::GumbelF(up[j], zp[j], gp[j]);
  }
}

// out[32g + 8p + j] = planes.v[p][8g + j]: the first `count` coordinates of a chunk.
template <typename P>
__attribute__((always_inline)) inline void CopyBlocks(const P& planes, size_t count,
                                                      double* __restrict out) {
  constexpr size_t kBlock = 4 * kBlockQuads;
  size_t g = 0;
  for (; (g + 1) * kBlock <= count; ++g) {  // whole blocks: fixed-size copies
    for (size_t p = 0; p < 4; ++p) {
      double* __restrict o = out + g * kBlock + p * kBlockQuads;
      const auto* __restrict v = &planes.v[p][g * kBlockQuads];
      for (size_t j = 0; j < kBlockQuads; ++j) o[j] = static_cast<double>(v[j]);
    }
  }
  for (size_t i = g * kBlock; i < count; ++i) {  // the ragged tail
    out[i] = planes.v[(i % kBlock) / kBlockQuads][g * kBlockQuads + i % kBlockQuads];
  }
}

// CopyBlocks of float planes, in the vector clones.
PERTURBD_VECTOR_CLONES
void CopyBlocksF(const PlanesF& planes, size_t count, double* out) {
  CopyBlocks(planes, count, out);
}

// CopyBlocks of float Z planes with η formed on the way: out[i] = AdditiveEta(theta[i], ε, Z_i)
// for the first `count` coordinates of a chunk (theta and out point at the chunk's start).
template <bool kF32>
__attribute__((always_inline)) inline void EtaBlocksT(const PlanesF& planes, size_t count,
                                                      const double* __restrict theta,
                                                      double epsilon, double* __restrict out) {
  constexpr size_t kBlock = 4 * kBlockQuads;
  size_t g = 0;
  for (; (g + 1) * kBlock <= count; ++g) {
    for (size_t p = 0; p < 4; ++p) {
      const size_t at = g * kBlock + p * kBlockQuads;
      const float* __restrict v = &planes.v[p][g * kBlockQuads];
      for (size_t j = 0; j < kBlockQuads; ++j) {
        out[at + j] = AdditiveEta(theta[at + j], epsilon, static_cast<double>(v[j]), kF32);
      }
    }
  }
  for (size_t i = g * kBlock; i < count; ++i) {
    const float v = planes.v[(i % kBlock) / kBlockQuads][g * kBlockQuads + i % kBlockQuads];
    out[i] = AdditiveEta(theta[i], epsilon, static_cast<double>(v), kF32);
  }
}

PERTURBD_VECTOR_CLONES
void EtaBlocks(const PlanesF& planes, size_t count, const double* theta, double epsilon, bool f32,
               double* out) {
  if (f32) {
    EtaBlocksT<true>(planes, count, theta, epsilon, out);
  } else {
    EtaBlocksT<false>(planes, count, theta, epsilon, out);
  }
}

// FillNoise for row.single: the chunk loop of FillNoise on float planes. With theta, the Z
// planes go out as η (EtaBlocks) instead of as z.
void FillNoiseSingle(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu,
                     const double* theta = nullptr, double epsilon = 0.0, bool f32 = false) {
  PlanesF u, zp, gp;
  const size_t d = z.size();
  const bool flip = NoiseFlipped(row);
  const bool normal = row.distribution == NoiseDistribution::kNormal;
  const bool want_grad = !grad_nu.empty();
  constexpr size_t kChunk = 4 * kChunkQuads;
  for (size_t start = 0; start < d; start += kChunk) {
    const size_t count = std::min(kChunk, d - start);
    const size_t full_blocks = count / (4 * kBlockQuads);
    const size_t rest = count - full_blocks * 4 * kBlockQuads;
    const size_t needed = full_blocks * kBlockQuads + std::min(kBlockQuads, rest);
    // Past one block, whole blocks of eight quads: the transforms' scalar remainder loop took
    // more than half of a d = 100 row (28 quads: 16 + 8 + 4 scalar). The extra quads are
    // computed and ignored; each lane's bits are its own. Up to one block (d ≤ 32) the scalar
    // loop is cheaper than a vector.
    const size_t quads = needed <= kBlockQuads ? needed : (needed + 7) / 8 * 8;
    PhiloxUniformsF(row, static_cast<uint32_t>(start / 4), quads,
                    flip && !normal ? 0xFFFFFFFFu : 0u, u);
    if (normal) {
      NormalPlanesF(u, quads, flip ? -1.0f : 1.0f, zp);
    } else {
      GumbelPlanesF(u, quads, zp, gp);
    }
    if (theta != nullptr) {
      EtaBlocks(zp, count, theta + start, epsilon, f32, z.data() + start);
    } else {
      CopyBlocksF(zp, count, z.data() + start);
    }
    if (want_grad) CopyBlocksF(normal ? zp : gp, count, grad_nu.data() + start);
  }
}

}  // namespace

void NoiseWords(const NoiseRow& row, size_t d, uint32_t* words, bool vector_kernel) {
  const uint32_t complement =
      NoiseFlipped(row) && row.distribution == NoiseDistribution::kGumbel ? 0xFFFFFFFFu : 0u;
  constexpr size_t kChunk = 4 * kChunkQuads;
  const size_t padded = (d + 31) / 32 * 32;
#ifdef PERTURBD_PHILOX_AVX512
  if (vector_kernel && CpuHasAvx512F()) {
    for (size_t start = 0; start < padded; start += kChunk) {
      PhiloxCoordinatesAvx512(row, static_cast<uint32_t>(start / 4),
                              std::min(kChunk, padded - start) / 4, complement, words + start);
    }
    return;
  }
#else
  (void)vector_kernel;
#endif
  // Without AVX-512: the portable kernel's planes, copied into coordinate order.
  Words w;
  for (size_t start = 0; start < padded; start += kChunk) {
    const size_t count = std::min(kChunk, padded - start);  // whole blocks of 8 quads
    PhiloxWordsGeneric(row, static_cast<uint32_t>(start / 4), count / 4, w);
    for (size_t g = 0; g < count / 32; ++g) {
      for (size_t p = 0; p < 4; ++p) {
        uint32_t* __restrict out = words + start + 32 * g + 8 * p;
        const uint32_t* __restrict in = &w.v[p][kBlockQuads * g];
        for (size_t j = 0; j < kBlockQuads; ++j) out[j] = in[j] ^ complement;
      }
    }
  }
}

void FillNoiseEta(const NoiseRow& row, const double* theta, double epsilon, bool f32,
                  absl::Span<double> eta, absl::Span<double> grad_nu) {
  assert(row.single);
  FillNoiseSingle(row, eta, grad_nu, theta, epsilon, f32);
}

void FillNoise(const NoiseRow& row, absl::Span<double> z, absl::Span<double> grad_nu) {
  if (row.single) {
    FillNoiseSingle(row, z, grad_nu);
    return;
  }
  Planes u, zp, gp;
  const size_t d = z.size();
  const bool flip = NoiseFlipped(row);
  const bool normal = row.distribution == NoiseDistribution::kNormal;
  const bool want_grad = !grad_nu.empty();
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
      if (want_grad) CopyBlocks(zp, count, grad_nu.data() + start);
    } else {
      GumbelPlanes(u, quads, zp, gp);
      CopyBlocks(zp, count, z.data() + start);
      if (want_grad) CopyBlocks(gp, count, grad_nu.data() + start);
    }
  }
}

}  // namespace perturbd
