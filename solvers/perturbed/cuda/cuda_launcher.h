// CudaLauncher: the GPU pipeline (gpu_pipeline.h) on one CUDA stream of one device, with a
// device arena and a pinned host staging buffer that are allocated once, grown when a request
// needs more, and reused, so a warm launcher does no cudaMalloc / cudaMallocHost per request.
//
// Thread safety: none; GpuBackend gives each request in flight its own launcher. Every call
// must run on a thread whose current device (cudaSetDevice) is the launcher's.
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_LAUNCHER_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_LAUNCHER_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solvers/perturbed/cuda/gpu_pipeline.h"

namespace perturbd::gpu_internal {

// OK for cudaSuccess; RESOURCE_EXHAUSTED for allocation failures; INTERNAL otherwise, with the
// CUDA error's name and `what`.
absl::Status CudaStatus(cudaError_t error, absl::string_view what);

class CudaLauncher final : public Launcher {
 public:
  // A launcher on the current device with a `staging_bytes` pinned buffer.
  static absl::StatusOr<std::unique_ptr<CudaLauncher>> Create(size_t staging_bytes);
  ~CudaLauncher() override;
  CudaLauncher(const CudaLauncher&) = delete;
  CudaLauncher& operator=(const CudaLauncher&) = delete;

  absl::StatusOr<char*> Reserve(size_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyFloatsToHost(double* dst, size_t block, size_t dst_stride, const float* src,
                                size_t count) override;
  absl::Status Zero(void* dst, size_t bytes) override;
  absl::Status Synchronize() override;

  absl::Status Perturb(const PerturbParams& p) override;
  absl::Status Solve(const SolveParams& p) override;
  absl::Status SampleScalars(const ScalarParams& p) override;
  absl::Status Accumulate(const AccumulateParams& p) override;
  absl::Status InstanceScalars(const InstanceScalarParams& p) override;
  absl::Status FinalizeJacobian(const JacobianParams& p) override;

  size_t arena_bytes() const { return arena_bytes_; }

 private:
  CudaLauncher() = default;

  cudaStream_t stream_ = nullptr;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  char* staging_ = nullptr;
  size_t staging_bytes_ = 0;
};

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_LAUNCHER_H_
