// GpuBackend on CUDA (built when PERTURBD_ENABLE_CUDA is ON; gpu_backend_stub.cc otherwise).
#include "solvers/perturbed/cuda/gpu_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "solvers/base/status_macros.h"
#include "solvers/perturbed/cuda/cuda_kernels.h"
#include "solvers/perturbed/cuda/cuda_launcher.h"
#include "solvers/perturbed/cuda/gpu_pipeline.h"

namespace perturbd {

using gpu_internal::CudaLauncher;
using gpu_internal::CudaStatus;

// A pool of launchers (stream + arena + staging), created on demand up to options.streams.
struct GpuBackend::Impl {
  explicit Impl(int streams) : limit(streams) {}

  // Waits for a free launcher (or room to create one) until the request's deadline.
  absl::StatusOr<std::unique_ptr<CudaLauncher>> Acquire(const GpuBackendOptions& options,
                                                        const CancelToken* cancel) {
    {
      absl::MutexLock lock(&mu);
      const absl::Time deadline = cancel != nullptr ? cancel->deadline() : absl::InfiniteFuture();
      if (!mu.AwaitWithDeadline(absl::Condition(this, &Impl::CanAcquire), deadline)) {
        return absl::DeadlineExceededError("deadline exceeded waiting for a GPU stream");
      }
      if (cancel != nullptr) RETURN_IF_ERROR(cancel->Check());
      if (!idle.empty()) {
        std::unique_ptr<CudaLauncher> launcher = std::move(idle.back());
        idle.pop_back();
        return launcher;
      }
      ++created;
    }
    absl::StatusOr<std::unique_ptr<CudaLauncher>> launcher =
        CudaLauncher::Create(options.staging_bytes);
    if (!launcher.ok()) {
      absl::MutexLock lock(&mu);
      --created;
    }
    return launcher;
  }

  void Release(std::unique_ptr<CudaLauncher> launcher) {
    // Nothing of the finished request may still run on the stream when the next one starts.
    launcher->Synchronize().IgnoreError();
    absl::MutexLock lock(&mu);
    arena_bytes[launcher.get()] = launcher->arena_bytes();
    idle.push_back(std::move(launcher));
  }

  uint64_t TotalArenaBytes() const {
    absl::MutexLock lock(&mu);
    uint64_t total = 0;
    for (const auto& [launcher, bytes] : arena_bytes) total += bytes;
    return total;
  }

  bool CanAcquire() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !idle.empty() || created < limit;
  }

  const int limit;  // options.streams
  mutable absl::Mutex mu;
  // Arena size of every launcher, as of its last release (launchers live as long as the pool).
  absl::flat_hash_map<const CudaLauncher*, size_t> arena_bytes ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<CudaLauncher>> idle ABSL_GUARDED_BY(mu);
  int created ABSL_GUARDED_BY(mu) = 0;
};

bool GpuBackend::BuiltWithCuda() { return true; }

bool GpuBackend::Available() {
  static const bool available = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return count > 0 && gpu_internal::KernelImageAvailable();
  }();
  return available;
}

std::vector<std::string> GpuBackend::Devices() {
  std::vector<std::string> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    out.push_back(absl::StrFormat("%d: %s (sm_%d%d, %.1f GiB)", i, prop.name, prop.major,
                                  prop.minor,
                                  static_cast<double>(prop.totalGlobalMem) / (1 << 30)));
  }
  return out;
}

bool GpuBackend::Supports(const Oracle& oracle) { return gpu_internal::SupportsOracle(oracle); }

bool GpuBackend::SupportsOracleName(absl::string_view name) {
  return gpu_internal::SupportsOracleName(name);
}

GpuBackend::Memory GpuBackend::memory() const {
  Memory memory;
  memory.arena_bytes = impl_->TotalArenaBytes();
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaSetDevice(options_.device) == cudaSuccess &&
      cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    memory.device_used_bytes = total_bytes - free_bytes;
    memory.device_total_bytes = total_bytes;
  } else {
    cudaGetLastError();
  }
  return memory;
}

absl::StatusOr<std::unique_ptr<GpuBackend>> GpuBackend::Create(const GpuBackendOptions& options) {
  if (!Available()) {
    return absl::FailedPreconditionError(
        "backend: GPU requested but no usable CUDA device is present");
  }
  int count = 0;
  RETURN_IF_ERROR(CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount"));
  if (options.device < 0 || options.device >= count) {
    return absl::FailedPreconditionError(absl::StrCat("backend: CUDA device ", options.device,
                                                      " does not exist (", count, " devices)"));
  }
  RETURN_IF_ERROR(CudaStatus(cudaSetDevice(options.device), "cudaSetDevice"));
  if (!gpu_internal::KernelImageAvailable()) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend: CUDA device ", options.device,
                     " cannot run this build's kernels "
                     "(rebuild with its architecture in CMAKE_CUDA_ARCHITECTURES)"));
  }
  auto impl = std::make_unique<Impl>(std::max(1, options.streams));
  // One launcher up front, so that a broken setup fails here rather than in the first request.
  ASSIGN_OR_RETURN(std::unique_ptr<CudaLauncher> first, impl->Acquire(options, nullptr));
  impl->Release(std::move(first));
  return std::unique_ptr<GpuBackend>(new GpuBackend(options, std::move(impl)));
}

GpuBackend::GpuBackend(const GpuBackendOptions& options, std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)) {}

GpuBackend::~GpuBackend() = default;

absl::StatusOr<PerturbedResult> GpuBackend::Run(const PerturbedRequest& request,
                                                const CancelToken* cancel) {
  // Cheap checks before waiting for a stream.
  RETURN_IF_ERROR(ValidatePerturbedRequest(request));
  RETURN_IF_ERROR(gpu_internal::DescribeOracle(*request.oracle).status());
  RETURN_IF_ERROR(CudaStatus(cudaSetDevice(options_.device), "cudaSetDevice"));
  ASSIGN_OR_RETURN(std::unique_ptr<CudaLauncher> launcher, impl_->Acquire(options_, cancel));
  gpu_internal::PipelineOptions pipeline;
  pipeline.chunk_bytes = options_.chunk_bytes;
  absl::StatusOr<PerturbedResult> result =
      gpu_internal::RunPipeline(*launcher, request, pipeline, cancel);
  impl_->Release(std::move(launcher));
  if (result.ok()) result->backend = "gpu";
  return result;
}

}  // namespace perturbd
