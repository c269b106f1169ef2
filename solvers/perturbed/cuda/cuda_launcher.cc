#include "solvers/perturbed/cuda/cuda_launcher.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "solvers/base/status_macros.h"
#include "solvers/perturbed/cuda/cuda_kernels.h"

namespace perturbd::gpu_internal {
namespace {

// Arenas grow by at least a quarter and in whole 2 MiB pages, so that a stream of slightly
// larger requests does not reallocate each time.
constexpr size_t kArenaGranule = size_t{2} << 20;

}  // namespace

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  const std::string message = absl::StrCat("GPU backend: ", what, ": ", cudaGetErrorName(error),
                                           " (", cudaGetErrorString(error), ")");
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so the stream stays usable
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<CudaLauncher>> CudaLauncher::Create(size_t staging_bytes) {
  std::unique_ptr<CudaLauncher> launcher(new CudaLauncher());
  RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&launcher->stream_, cudaStreamNonBlocking),
                             "cudaStreamCreate"));
  launcher->staging_bytes_ = std::max<size_t>(staging_bytes, 1 << 16);
  void* staging = nullptr;
  RETURN_IF_ERROR(
      CudaStatus(cudaMallocHost(&staging, launcher->staging_bytes_), "cudaMallocHost (staging)"));
  launcher->staging_ = static_cast<char*>(staging);
  return launcher;
}

CudaLauncher::~CudaLauncher() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (arena_ != nullptr) cudaFree(arena_);
  if (staging_ != nullptr) cudaFreeHost(staging_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::StatusOr<char*> CudaLauncher::Reserve(size_t bytes) {
  if (bytes <= arena_bytes_) return arena_;
  RETURN_IF_ERROR(Synchronize());
  const size_t previous = arena_bytes_;
  if (arena_ != nullptr) {
    RETURN_IF_ERROR(CudaStatus(cudaFree(arena_), "cudaFree"));
    arena_ = nullptr;
    arena_bytes_ = 0;
  }
  const size_t wanted = std::max(bytes, previous + previous / 4);
  size_t size = (wanted + kArenaGranule - 1) / kArenaGranule * kArenaGranule;
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation && size > bytes) {  // retry without the headroom
    cudaGetLastError();
    size = bytes;
    e = cudaMalloc(&p, size);
  }
  RETURN_IF_ERROR(CudaStatus(e, absl::StrCat("cudaMalloc of ", size, " bytes for the request")));
  arena_ = static_cast<char*>(p);
  arena_bytes_ = size;
  return arena_;
}

absl::Status CudaLauncher::CopyToDevice(void* dst, const void* src, size_t bytes) {
  // Through the pinned buffer, one piece at a time (the piece must land before the buffer is
  // refilled).
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(staging_bytes_, bytes - done);
    std::memcpy(staging_, static_cast<const char*>(src) + done, n);
    RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(static_cast<char*>(dst) + done, staging_, n,
                                               cudaMemcpyHostToDevice, stream_),
                               "cudaMemcpyAsync (to device)"));
    RETURN_IF_ERROR(Synchronize());
    done += n;
  }
  return absl::OkStatus();
}

absl::Status CudaLauncher::CopyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_),
                    "cudaMemcpyAsync (on device)");
}

absl::Status CudaLauncher::CopyToHost(void* dst, const void* src, size_t bytes) {
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(staging_bytes_, bytes - done);
    RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(staging_, static_cast<const char*>(src) + done, n,
                                               cudaMemcpyDeviceToHost, stream_),
                               "cudaMemcpyAsync (to host)"));
    RETURN_IF_ERROR(Synchronize());
    std::memcpy(static_cast<char*>(dst) + done, staging_, n);
    done += n;
  }
  return absl::OkStatus();
}

absl::Status CudaLauncher::CopyFloatsToHost(double* dst, size_t block, size_t dst_stride,
                                            const float* src, size_t count) {
  const size_t piece = staging_bytes_ / sizeof(float);
  const float* staged = reinterpret_cast<const float*>(staging_);
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(piece, count - done);
    RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(staging_, src + done, n * sizeof(float), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync (samples to host)"));
    RETURN_IF_ERROR(Synchronize());
    // Element e = done + k lands at (e / block)·dst_stride + e % block; copy run by run.
    for (size_t k = 0; k < n;) {
      const size_t e = done + k;
      const size_t run = std::min(n - k, block - e % block);
      double* out = dst + (e / block) * dst_stride + e % block;
      for (size_t q = 0; q < run; ++q) out[q] = staged[k + q];
      k += run;
    }
    done += n;
  }
  return absl::OkStatus();
}

absl::Status CudaLauncher::Zero(void* dst, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemsetAsync(dst, 0, bytes, stream_), "cudaMemsetAsync");
}

absl::Status CudaLauncher::Synchronize() {
  return CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

absl::Status CudaLauncher::Perturb(const PerturbParams& p) {
  return CudaStatus(LaunchPerturb(p, stream_), "perturb kernel");
}

absl::Status CudaLauncher::Solve(const SolveParams& p) {
  return CudaStatus(LaunchSolve(p, stream_), "solve kernel");
}

absl::Status CudaLauncher::SampleScalars(const ScalarParams& p) {
  return CudaStatus(LaunchSampleScalars(p, stream_), "sample scalars kernel");
}

absl::Status CudaLauncher::Accumulate(const AccumulateParams& p) {
  return CudaStatus(LaunchAccumulate(p, stream_), "accumulate kernel");
}

absl::Status CudaLauncher::InstanceScalars(const InstanceScalarParams& p) {
  return CudaStatus(LaunchInstanceScalars(p, stream_), "instance scalars kernel");
}

absl::Status CudaLauncher::FinalizeJacobian(const JacobianParams& p) {
  return CudaStatus(LaunchFinalizeJacobian(p, stream_), "jacobian kernel");
}

}  // namespace perturbd::gpu_internal
