// HostLauncher: the GPU pipeline's steps as plain loops on the calling CPU thread, one loop
// iteration per GPU thread (or per warp, with a single lane). It exists to test the pipeline
// and the host–device kernels bodies on machines without a GPU, and as a slow reference; it is
// not a production backend (use RunPerturbed on the CPU).
//
//   HostLauncher launcher;
//   absl::StatusOr<PerturbedResult> r = RunPipeline(launcher, request, PipelineOptions{});
//
// Thread safety: one RunPipeline at a time per launcher.
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_HOST_LAUNCHER_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_HOST_LAUNCHER_H_

#include <cstddef>
#include <memory>

#include "solvers/perturbed/cuda/gpu_pipeline.h"

namespace perturbd::gpu_internal {

class HostLauncher final : public Launcher {
 public:
  absl::StatusOr<char*> Reserve(size_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyFloatsToHost(double* dst, size_t block, size_t dst_stride, const float* src,
                                size_t count) override;
  absl::Status Zero(void* dst, size_t bytes) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }

  absl::Status Perturb(const PerturbParams& p) override;
  absl::Status Solve(const SolveParams& p) override;
  absl::Status SampleScalars(const ScalarParams& p) override;
  absl::Status Accumulate(const AccumulateParams& p) override;
  absl::Status InstanceScalars(const InstanceScalarParams& p) override;
  absl::Status FinalizeJacobian(const JacobianParams& p) override;

  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, Free> arena_;
  size_t capacity_ = 0;
};

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_HOST_LAUNCHER_H_
