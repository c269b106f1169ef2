// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011), the counter-based generator of Random123 and cuRAND: 4×32-bit counter, 2×32-bit
// key, ten rounds. Written once for host and device (`PERTURBD_HOST_DEVICE`), so the CPU and
// CUDA backends draw identical bits for the same (key, counter).
#ifndef PERTURBD_SOLVERS_PERTURBED_PHILOX_H_
#define PERTURBD_SOLVERS_PERTURBED_PHILOX_H_

#include <cstdint>

#if defined(__CUDACC__)
#define PERTURBD_HOST_DEVICE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined so that vector loops over these functions (`omp simd`) stay call-free.
#define PERTURBD_HOST_DEVICE inline __attribute__((always_inline))
#else
#define PERTURBD_HOST_DEVICE inline
#endif

namespace perturbd {

struct PhiloxBlock {
  uint32_t x[4];
};

namespace philox_internal {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

PERTURBD_HOST_DEVICE void Round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0,
                                uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  const uint32_t n0 = hi1 ^ c1 ^ k0;
  const uint32_t n2 = hi0 ^ c3 ^ k1;
  c0 = n0;
  c1 = lo1;
  c2 = n2;
  c3 = lo0;
}
}  // namespace philox_internal

// One Philox4x32-10 block: 128 random bits for counter (c0, c1, c2, c3) under key (k0, k1).
PERTURBD_HOST_DEVICE PhiloxBlock Philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                               uint32_t k0, uint32_t k1) {
  using namespace philox_internal;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    Round(c0, c1, c2, c3, k0, k1);
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_PHILOX_H_
