// Which backend solves a request — the CPU executor or the GPU — and running it there.
//
// A server has the CPU backend (the shared `Executor`) and, when the binary was built with CUDA,
// a device is present and `--gpu` is not `off`, the GPU backend (`GpuBackend`, docs/gpu.md).
// The request's `backend` field decides:
//
//   CPU   the executor.
//   GPU   the GPU. The translator refuses it first: FAILED_PRECONDITION on a server without a GPU
//         backend, INVALID_ARGUMENT naming `backend` for an oracle the GPU does not run.
//   AUTO  (and UNSPECIFIED) the GPU when the server has one, the oracle runs there and the work
//         B·M·d is at least `gpu_min_work` (below it the transfers and launches cost more than
//         the CPU needs: docs/gpu.md has the measured crossover); the CPU otherwise.
//
// The choice depends only on the request and the server's flags, so a given server answers a
// given request from the same backend every time (and the CPU's answers are bit-identical).
//
// GpuBackend::Run blocks its thread until the result is on the host, so GPU requests run on the
// router's own threads (one per GPU stream), never on a gRPC thread or a CPU worker.
//
// Thread safety: every method may be called concurrently. Lifetimes: the executor must outlive
// the router; destroying the router waits for the GPU requests it has started.
#ifndef PERTURBD_SERVER_BACKEND_ROUTER_H_
#define PERTURBD_SERVER_BACKEND_ROUTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "perturbd/v1/perturbd.pb.h"
#include "solvers/perturbed/cuda/gpu_backend.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

// --gpu: `auto` uses a GPU when one is usable, `off` never, `required` fails startup without.
enum class GpuMode { kAuto, kOff, kRequired };
absl::StatusOr<GpuMode> ParseGpuMode(absl::string_view text);

struct BackendOptions {
  GpuMode gpu = GpuMode::kAuto;
  int gpu_device = 0;
  // GPU requests in flight at once (one CUDA stream, arena and thread each).
  int gpu_streams = 4;
  // AUTO sends a request to the GPU from this much work B·M·d on.
  uint64_t gpu_min_work = uint64_t{1} << 16;
};

enum class ComputeBackend { kCpu, kGpu };

// The policy above, as a pure function. `requested` is the wire enum; `oracle_on_gpu` whether
// the GPU runs the request's oracle; `work` = B·M·d.
ComputeBackend ChooseBackend(v1::Backend requested, bool has_gpu, bool oracle_on_gpu,
                             uint64_t work, uint64_t gpu_min_work);

class BackendRouter {
 public:
  // CPU only (no GPU backend whatever the machine has).
  explicit BackendRouter(Executor& cpu);
  // With `options.gpu`: kAuto creates the GPU backend when GpuBackend::Available(), kRequired
  // fails (FAILED_PRECONDITION, saying why) when it cannot, kOff never creates it.
  static absl::StatusOr<std::unique_ptr<BackendRouter>> Create(Executor& cpu,
                                                               const BackendOptions& options);
  ~BackendRouter();
  BackendRouter(const BackendRouter&) = delete;
  BackendRouter& operator=(const BackendRouter&) = delete;

  bool has_gpu() const { return gpu_ != nullptr; }
  // "0: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" for the device in use; empty without a GPU.
  const std::vector<std::string>& devices() const { return devices_; }
  // Whether this server runs the oracle of that wire name on its GPU.
  bool GpuRuns(absl::string_view oracle_name) const;
  // The backend a validated request goes to.
  ComputeBackend Choose(const PerturbedRequest& request, v1::Backend requested) const;
  // GPU memory (zeros without a GPU).
  GpuBackend::Memory gpu_memory() const;

  // Runs a validated request on the chosen backend; `done` is called exactly once, on a CPU
  // worker or a GPU thread, with the result (its `backend` says which ran it).
  void RunAsync(const PerturbedRequest& request, v1::Backend requested,
                std::shared_ptr<const CancelToken> cancel,
                std::function<void(absl::StatusOr<PerturbedResult>)> done);

 private:
  BackendRouter(Executor& cpu, std::unique_ptr<GpuBackend> gpu, const BackendOptions& options);
  void GpuThreadLoop();
  bool GpuWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !gpu_queue_.empty();
  }

  Executor& cpu_;
  std::unique_ptr<GpuBackend> gpu_;
  BackendOptions options_;
  std::vector<std::string> devices_;

  // GPU requests waiting for a GPU thread.
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> gpu_queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> gpu_threads_;
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_BACKEND_ROUTER_H_
