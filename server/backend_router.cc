#include "server/backend_router.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace perturbd {

absl::StatusOr<GpuMode> ParseGpuMode(absl::string_view text) {
  if (text == "auto") return GpuMode::kAuto;
  if (text == "off") return GpuMode::kOff;
  if (text == "required") return GpuMode::kRequired;
  return absl::InvalidArgumentError(
      absl::StrCat("--gpu: expected auto, off or required, got '", text, "'"));
}

ComputeBackend ChooseBackend(v1::Backend requested, bool has_gpu, bool oracle_on_gpu,
                             uint64_t work, uint64_t gpu_min_work) {
  switch (requested) {
    case v1::CPU:
      return ComputeBackend::kCpu;
    case v1::GPU:
      // The translator has refused GPU requests that cannot run there.
      return has_gpu && oracle_on_gpu ? ComputeBackend::kGpu : ComputeBackend::kCpu;
    default:  // AUTO, UNSPECIFIED
      return has_gpu && oracle_on_gpu && work >= gpu_min_work ? ComputeBackend::kGpu
                                                              : ComputeBackend::kCpu;
  }
}

BackendRouter::BackendRouter(Executor& cpu) : cpu_(cpu) {}

BackendRouter::BackendRouter(Executor& cpu, std::unique_ptr<GpuBackend> gpu,
                             const BackendOptions& options)
    : cpu_(cpu), gpu_(std::move(gpu)), options_(options) {
  if (gpu_ == nullptr) return;
  const std::vector<std::string> all = GpuBackend::Devices();
  if (options_.gpu_device >= 0 && options_.gpu_device < static_cast<int>(all.size())) {
    devices_.push_back(all[static_cast<size_t>(options_.gpu_device)]);
  }
  const int threads = std::max(1, options_.gpu_streams);
  gpu_threads_.reserve(static_cast<size_t>(threads));
  for (int k = 0; k < threads; ++k) gpu_threads_.emplace_back([this] { GpuThreadLoop(); });
}

absl::StatusOr<std::unique_ptr<BackendRouter>> BackendRouter::Create(
    Executor& cpu, const BackendOptions& options) {
  std::unique_ptr<GpuBackend> gpu;
  if (options.gpu != GpuMode::kOff && GpuBackend::Available()) {
    GpuBackendOptions gpu_options;
    gpu_options.device = options.gpu_device;
    gpu_options.streams = std::max(1, options.gpu_streams);
    absl::StatusOr<std::unique_ptr<GpuBackend>> created = GpuBackend::Create(gpu_options);
    if (created.ok()) {
      gpu = std::move(created).value();
    } else if (options.gpu == GpuMode::kRequired) {
      return created.status();
    }
  } else if (options.gpu == GpuMode::kRequired) {
    return absl::FailedPreconditionError(
        GpuBackend::BuiltWithCuda()
            ? "--gpu=required: no usable CUDA device (none present, or none that can run this "
              "build's kernels)"
            : "--gpu=required: this binary was built without CUDA (PERTURBD_ENABLE_CUDA=OFF)");
  }
  return std::unique_ptr<BackendRouter>(new BackendRouter(cpu, std::move(gpu), options));
}

BackendRouter::~BackendRouter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : gpu_threads_) t.join();
}

bool BackendRouter::GpuRuns(absl::string_view oracle_name) const {
  return has_gpu() && GpuBackend::SupportsOracleName(oracle_name);
}

ComputeBackend BackendRouter::Choose(const PerturbedRequest& request,
                                     v1::Backend requested) const {
  const bool on_gpu = has_gpu() && GpuBackend::Supports(*request.oracle);
  const uint64_t work = static_cast<uint64_t>(request.batch) * request.noise.num_samples *
                        static_cast<uint64_t>(request.oracle->dimension());
  return ChooseBackend(requested, has_gpu(), on_gpu, work, options_.gpu_min_work);
}

GpuBackend::Memory BackendRouter::gpu_memory() const {
  return gpu_ != nullptr ? gpu_->memory() : GpuBackend::Memory{};
}

void BackendRouter::RunAsync(const PerturbedRequest& request, v1::Backend requested,
                             std::shared_ptr<const CancelToken> cancel,
                             std::function<void(absl::StatusOr<PerturbedResult>)> done) {
  if (Choose(request, requested) == ComputeBackend::kCpu) {
    RunPerturbedAsync(cpu_, request, std::move(cancel), std::move(done));
    return;
  }
  absl::MutexLock lock(&mu_);
  gpu_queue_.push_back([this, &request, cancel = std::move(cancel), done = std::move(done)] {
    done(gpu_->Run(request, cancel.get()));
  });
}

void BackendRouter::GpuThreadLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &BackendRouter::GpuWorkOrStopping));
      if (gpu_queue_.empty()) return;  // stopping, and nothing left to run
      job = std::move(gpu_queue_.front());
      gpu_queue_.pop_front();
    }
    job();
  }
}

}  // namespace perturbd
