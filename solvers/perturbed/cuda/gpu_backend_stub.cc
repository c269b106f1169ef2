// GpuBackend without CUDA (PERTURBD_ENABLE_CUDA=OFF): links everywhere, never available.
#include "solvers/perturbed/cuda/gpu_backend.h"
#include "solvers/perturbed/cuda/gpu_pipeline.h"

namespace perturbd {

struct GpuBackend::Impl {};

bool GpuBackend::BuiltWithCuda() { return false; }
bool GpuBackend::Available() { return false; }
std::vector<std::string> GpuBackend::Devices() { return {}; }
bool GpuBackend::Supports(const Oracle& oracle) { return gpu_internal::SupportsOracle(oracle); }
bool GpuBackend::SupportsOracleName(absl::string_view name) {
  return gpu_internal::SupportsOracleName(name);
}
GpuBackend::Memory GpuBackend::memory() const { return {}; }

absl::StatusOr<std::unique_ptr<GpuBackend>> GpuBackend::Create(const GpuBackendOptions&) {
  return absl::FailedPreconditionError(
      "backend: GPU requested but this server was built without CUDA (PERTURBD_ENABLE_CUDA=OFF)");
}

GpuBackend::GpuBackend(const GpuBackendOptions& options, std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)) {}

GpuBackend::~GpuBackend() = default;

absl::StatusOr<PerturbedResult> GpuBackend::Run(const PerturbedRequest&, const CancelToken*) {
  return absl::FailedPreconditionError("backend: built without CUDA");
}

}  // namespace perturbd
