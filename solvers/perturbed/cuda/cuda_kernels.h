// Launchers of the CUDA kernels of the GPU pipeline, one per step of device_estimator.h. Each
// enqueues its kernel on `stream` and returns the launch error (cudaSuccess when none); the
// kernels run the host–device step functions, so they compute what HostLauncher computes.
// Internal to solvers/perturbed/cuda (cuda_launcher.cc is the only caller).
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_KERNELS_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include "solvers/perturbed/cuda/device_estimator.h"

namespace perturbd::gpu_internal {

cudaError_t LaunchPerturb(const PerturbParams& p, cudaStream_t stream);
// One warp per sample (argmax, top_k, threshold, ranking) or one thread (grid_shortest_path).
cudaError_t LaunchSolve(const SolveParams& p, cudaStream_t stream);
cudaError_t LaunchSampleScalars(const ScalarParams& p, cudaStream_t stream);
cudaError_t LaunchAccumulate(const AccumulateParams& p, cudaStream_t stream);
cudaError_t LaunchInstanceScalars(const InstanceScalarParams& p, cudaStream_t stream);
cudaError_t LaunchFinalizeJacobian(const JacobianParams& p, cudaStream_t stream);

// True when this binary holds kernels the current device can run (the build targets
// CMAKE_CUDA_ARCHITECTURES; an older GPU has no image).
bool KernelImageAvailable();

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_CUDA_KERNELS_H_
