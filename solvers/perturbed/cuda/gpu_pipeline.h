// The GPU estimator pipeline, written once against a `Launcher`: the CUDA launcher
// (cuda_launcher.h: one stream, a device arena, pinned staging) runs it on a GPU; HostLauncher
// (host_launcher.h) runs the same steps as plain loops on the CPU, so the pipeline's logic —
// chunking, buffer roles, step order, finalisation — is tested on machines without a GPU.
//
// RunPipeline(launcher, request):
//   validate (ValidatePerturbedRequest) and describe the oracle (INVALID_ARGUMENT `backend`
//   for an oracle the GPU does not serve); plan (EstimatorPlan::Make); lay out one arena
//   (inputs, sums, one chunk of per-sample buffers) and reserve it; upload θ, targets,
//   cotangent, keys; for each chunk of mc samples (a multiple of the antithetic unit):
//   Perturb → Solve → SampleScalars → Accumulate → InstanceScalars (device_estimator.h), and
//   copy y_m out when samples are asked for; then the UNPERTURBED solve y*(θ) when needed,
//   FinalizeJacobian on the device, and FinalizeInstance (estimator.h) on the host for
//   everything else. Cancellation is checked between chunks.
//
// Thread safety: a Launcher serves one RunPipeline at a time. Lifetimes: the request's spans
// and oracle must outlive the call.
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_PIPELINE_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_PIPELINE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "solvers/oracles/oracle.h"
#include "solvers/perturbed/cuda/device_estimator.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd::gpu_internal {

// Where the pipeline's steps run. All calls on one launcher are ordered (one CUDA stream);
// copies to the host return once the data is there. "Device" pointers point into the arena
// returned by Reserve.
class Launcher {
 public:
  virtual ~Launcher() = default;

  // An arena of at least `bytes` (256-byte aligned), reused from request to request and grown
  // when too small. Invalidates earlier arenas. RESOURCE_EXHAUSTED when memory runs out.
  virtual absl::StatusOr<char*> Reserve(size_t bytes) = 0;
  virtual absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  // dst[(e / block)·dst_stride + e % block] = src[e] for e < count (floats widened to double).
  virtual absl::Status CopyFloatsToHost(double* dst, size_t block, size_t dst_stride,
                                        const float* src, size_t count) = 0;
  virtual absl::Status Zero(void* dst, size_t bytes) = 0;
  virtual absl::Status Synchronize() = 0;

  virtual absl::Status Perturb(const PerturbParams& p) = 0;
  virtual absl::Status Solve(const SolveParams& p) = 0;
  virtual absl::Status SampleScalars(const ScalarParams& p) = 0;
  virtual absl::Status Accumulate(const AccumulateParams& p) = 0;
  virtual absl::Status InstanceScalars(const InstanceScalarParams& p) = 0;
  virtual absl::Status FinalizeJacobian(const JacobianParams& p) = 0;
};

struct PipelineOptions {
  // Bytes of per-sample buffers (η, y, scratch) one chunk may use; M is cut into chunks of
  // whole antithetic units that fit (at least one unit per chunk).
  size_t chunk_bytes = size_t{512} << 20;
};

// The oracles the GPU serves (argmax, top_k, threshold, ranking, grid_shortest_path with
// d < 2²⁴), recognised by their concrete classes.
bool SupportsOracle(const Oracle& oracle);
// True for the names (Oracle::name()) of the oracle classes SupportsOracle accepts.
bool SupportsOracleName(absl::string_view name);
// INVALID_ARGUMENT naming `backend` when !SupportsOracle(oracle).
absl::StatusOr<DeviceOracle> DescribeOracle(const Oracle& oracle);

// Bytes of arena that `request` needs with `options` (for a caller that wants to check before
// running). The request must be valid.
size_t PipelineArenaBytes(const PerturbedRequest& request, const PipelineOptions& options);

absl::StatusOr<PerturbedResult> RunPipeline(Launcher& launcher, const PerturbedRequest& request,
                                            const PipelineOptions& options,
                                            const CancelToken* cancel = nullptr);

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_PIPELINE_H_
