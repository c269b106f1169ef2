// CUDA kernels of the GPU pipeline: thin wrappers that map CUDA threads (or warps) to the
// host–device step functions of device_estimator.h. Built with --fmad=false (see noise_math.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "solvers/perturbed/cuda/cuda_kernels.h"

namespace perturbd::gpu_internal {
namespace {

constexpr int kBlockThreads = 256;
constexpr int kGridBlockThreads = 128;  // grid_shortest_path: one Dijkstra per thread
constexpr int kWarpSize = 32;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;  // grid-stride loops beyond this
constexpr unsigned kFullMask = 0xFFFFFFFFu;

// The 32 lanes of a CUDA warp, for the Warp-templated row solvers (device_oracles.h). Every
// lane of the warp must call each member together (they shuffle). Host builds of the template
// are never run; their bodies exist only to compile.
struct CudaWarp {
  __host__ __device__ int32_t lane() const {
#if defined(__CUDA_ARCH__)
    return static_cast<int32_t>(threadIdx.x % kWarpSize);
#else
    return 0;
#endif
  }
  __host__ __device__ int32_t width() const { return kWarpSize; }
  // Butterfly: after step `off` every lane holds the Pick of its 2·off-lane group; Pick is
  // symmetric, so all lanes end with the same element.
  __host__ __device__ RankedIndex Reduce(RankedIndex c, bool from_best) const {
#if defined(__CUDA_ARCH__)
    for (int off = kWarpSize / 2; off > 0; off /= 2) {
      RankedIndex other;
      other.key = __shfl_xor_sync(kFullMask, c.key, off);
      other.index = __shfl_xor_sync(kFullMask, c.index, off);
      c = Pick(c, other, from_best);
    }
#endif
    return c;
  }
  __host__ __device__ uint32_t Ballot(bool p) const {
#if defined(__CUDA_ARCH__)
    return __ballot_sync(kFullMask, p);
#else
    return p ? 1u : 0u;
#endif
  }
  // x_l + x_{l^off} = x_{l^off} + x_l bit for bit, so every lane gets the same sum.
  __host__ __device__ double Sum(double x) const {
#if defined(__CUDA_ARCH__)
    for (int off = kWarpSize / 2; off > 0; off /= 2) x += __shfl_xor_sync(kFullMask, x, off);
#endif
    return x;
  }
};

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridThreads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

unsigned Blocks(int64_t threads, int block) {
  return static_cast<unsigned>(std::clamp<int64_t>((threads + block - 1) / block, 1, kMaxBlocks));
}

__global__ void PerturbKernel(const PerturbParams p) {
  const int64_t n = p.threads();
  for (int64_t t = GlobalThread(); t < n; t += GridThreads()) PerturbThread(p, t);
}

// Warp w serves rows w, w + warps, …; the loop bound is uniform across a warp's lanes.
__global__ void SolveWarpKernel(const SolveParams p) {
  const int64_t warps = GridThreads() / kWarpSize;
  for (int64_t r = GlobalThread() / kWarpSize; r < p.rows; r += warps) SolveRow(CudaWarp{}, p, r);
}

__global__ void SolveGridKernel(const SolveParams p) {
  for (int64_t r = GlobalThread(); r < p.rows; r += GridThreads()) SolveGridRow(p, r);
}

__global__ void SampleScalarsKernel(const ScalarParams p) {
  const int64_t warps = GridThreads() / kWarpSize;
  for (int64_t r = GlobalThread() / kWarpSize; r < p.rows; r += warps) {
    SampleScalarsRow(CudaWarp{}, p, r);
  }
}

__global__ void AccumulateKernel(const AccumulateParams p) {
  const int64_t n = p.threads();
  for (int64_t t = GlobalThread(); t < n; t += GridThreads()) AccumulateThread(p, t);
}

__global__ void InstanceScalarsKernel(const InstanceScalarParams p) {
  for (int64_t b = GlobalThread(); b < p.batch; b += GridThreads()) InstanceScalarsThread(p, b);
}

__global__ void FinalizeJacobianKernel(const JacobianParams p) {
  const int64_t n = p.threads();
  for (int64_t e = GlobalThread(); e < n; e += GridThreads()) FinalizeJacobianThread(p, e);
}

}  // namespace

cudaError_t LaunchPerturb(const PerturbParams& p, cudaStream_t stream) {
  if (p.threads() == 0) return cudaSuccess;
  PerturbKernel<<<Blocks(p.threads(), kBlockThreads), kBlockThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchSolve(const SolveParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  if (p.oracle.per_thread()) {
    SolveGridKernel<<<Blocks(p.rows, kGridBlockThreads), kGridBlockThreads, 0, stream>>>(p);
  } else {
    SolveWarpKernel<<<Blocks(p.rows * kWarpSize, kBlockThreads), kBlockThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

cudaError_t LaunchSampleScalars(const ScalarParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  SampleScalarsKernel<<<Blocks(p.rows * kWarpSize, kBlockThreads), kBlockThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchAccumulate(const AccumulateParams& p, cudaStream_t stream) {
  if (p.threads() == 0) return cudaSuccess;
  AccumulateKernel<<<Blocks(p.threads(), kBlockThreads), kBlockThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchInstanceScalars(const InstanceScalarParams& p, cudaStream_t stream) {
  if (p.batch == 0) return cudaSuccess;
  InstanceScalarsKernel<<<Blocks(p.batch, kBlockThreads), kBlockThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchFinalizeJacobian(const JacobianParams& p, cudaStream_t stream) {
  if (p.threads() == 0) return cudaSuccess;
  FinalizeJacobianKernel<<<Blocks(p.threads(), kBlockThreads), kBlockThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

bool KernelImageAvailable() {
  cudaFuncAttributes attributes;
  const cudaError_t e = cudaFuncGetAttributes(&attributes, PerturbKernel);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
}

}  // namespace perturbd::gpu_internal
