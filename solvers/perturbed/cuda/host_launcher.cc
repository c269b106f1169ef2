#include "solvers/perturbed/cuda/host_launcher.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace perturbd::gpu_internal {

void HostLauncher::Free::operator()(char* p) const { std::free(p); }

absl::StatusOr<char*> HostLauncher::Reserve(size_t bytes) {
  if (bytes <= capacity_) return arena_.get();
  const size_t size = (bytes + 255) / 256 * 256;
  arena_.reset(static_cast<char*>(std::aligned_alloc(256, size)));
  if (arena_ == nullptr) {
    capacity_ = 0;
    return absl::ResourceExhaustedError("host launcher: out of memory");
  }
  capacity_ = size;
  // Poison, so that a step that reads what no step wrote shows up in the tests.
  std::memset(arena_.get(), 0xFF, size);
  return arena_.get();
}

absl::Status HostLauncher::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status HostLauncher::CopyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memmove(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status HostLauncher::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status HostLauncher::CopyFloatsToHost(double* dst, size_t block, size_t dst_stride,
                                            const float* src, size_t count) {
  for (size_t e = 0; e < count; ++e) dst[(e / block) * dst_stride + e % block] = src[e];
  return absl::OkStatus();
}

absl::Status HostLauncher::Zero(void* dst, size_t bytes) {
  if (bytes > 0) std::memset(dst, 0, bytes);
  return absl::OkStatus();
}

absl::Status HostLauncher::Perturb(const PerturbParams& p) {
  for (int64_t t = 0; t < p.threads(); ++t) PerturbThread(p, t);
  return absl::OkStatus();
}

absl::Status HostLauncher::Solve(const SolveParams& p) {
  for (int64_t r = 0; r < p.rows; ++r) {
    if (p.oracle.per_thread()) {
      SolveGridRow(p, r);
    } else {
      SolveRow(SingleLane{}, p, r);
    }
  }
  return absl::OkStatus();
}

absl::Status HostLauncher::SampleScalars(const ScalarParams& p) {
  for (int64_t r = 0; r < p.rows; ++r) SampleScalarsRow(SingleLane{}, p, r);
  return absl::OkStatus();
}

absl::Status HostLauncher::Accumulate(const AccumulateParams& p) {
  for (int64_t t = 0; t < p.threads(); ++t) AccumulateThread(p, t);
  return absl::OkStatus();
}

absl::Status HostLauncher::InstanceScalars(const InstanceScalarParams& p) {
  for (int64_t b = 0; b < p.batch; ++b) InstanceScalarsThread(p, b);
  return absl::OkStatus();
}

absl::Status HostLauncher::FinalizeJacobian(const JacobianParams& p) {
  for (int64_t e = 0; e < p.threads(); ++e) FinalizeJacobianThread(p, e);
  return absl::OkStatus();
}

}  // namespace perturbd::gpu_internal
