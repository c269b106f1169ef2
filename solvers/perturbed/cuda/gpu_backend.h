// GpuBackend: perturbed optimizers on a CUDA GPU, for the oracles argmax, top_k, threshold,
// ranking and grid_shortest_path. Same request, same result type and the same contract as
// RunPerturbed (DESIGN §2): the noise Z[b, m, i] is the CPU's, bit for bit; every per-sample
// solution y_m is the CPU oracle's (same tie rules); the estimates equal the CPU's up to the
// order of float64 additions. docs/gpu.md has the details and the known exceptions
// (MULTIPLICATIVE noise: exp() may differ from the CPU's in the last ulp).
//
// This header has no CUDA in it, and the library links in every build: built without CUDA
// (PERTURBD_ENABLE_CUDA=OFF) Available() is false and Create() fails with FAILED_PRECONDITION.
//
// Usage:
//   if (GpuBackend::Available() && GpuBackend::Supports(*request.oracle)) {
//     ASSIGN_OR_RETURN(std::unique_ptr<GpuBackend> gpu, GpuBackend::Create());  // once
//     ASSIGN_OR_RETURN(PerturbedResult result, gpu->Run(request, &cancel_token));
//   }
//
// Thread safety: Run may be called from any number of threads at once. Up to
// `options.streams` requests run concurrently, each on its own CUDA stream with its own device
// arena and pinned staging buffer (allocated on first use, grown when a request needs more,
// then reused: no cudaMalloc per request once warm); further callers wait for a free stream.
// Run blocks its calling thread until the result is on the host — call it from a thread that
// may block (not a gRPC reactor).
// Lifetimes: the backend must outlive every Run; the request's oracle and spans must outlive
// the Run call.
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_BACKEND_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solvers/oracles/oracle.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

struct GpuBackendOptions {
  int device = 0;   // CUDA device ordinal
  int streams = 4;  // requests in flight at once (one stream, arena, staging buffer each)
  // Per-sample buffers of one chunk of samples (η, y, scratch); M is processed in chunks that
  // fit. Each stream's arena holds one chunk plus the request's inputs and sums ([B, d], and
  // [B, d, d] per Jacobian sum).
  size_t chunk_bytes = size_t{512} << 20;
  size_t staging_bytes = size_t{16} << 20;  // pinned host buffer per stream
};

class GpuBackend {
 public:
  // True when this binary was built with the CUDA backend.
  static bool BuiltWithCuda();
  // True when built with CUDA and device 0 exists and can run this binary's kernels (the
  // answer is computed once per process).
  static bool Available();
  // One line per CUDA device: "0: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)". Empty without.
  static std::vector<std::string> Devices();
  // True for the oracles the GPU serves (by concrete class: ArgmaxOracle, TopKOracle,
  // ThresholdOracle, RankingOracle, GridShortestPathOracle; 1 ≤ d < 2²⁴). Works in every build.
  static bool Supports(const Oracle& oracle);
  // The wire names of the oracles the GPU serves ("argmax", ...), for ListSolvers; an oracle
  // of one of these names is Supports() unless its d is out of range.
  static bool SupportsOracleName(absl::string_view name);

  // FAILED_PRECONDITION when !Available() or `options.device` does not exist.
  static absl::StatusOr<std::unique_ptr<GpuBackend>> Create(const GpuBackendOptions& options = {});

  ~GpuBackend();
  GpuBackend(const GpuBackend&) = delete;
  GpuBackend& operator=(const GpuBackend&) = delete;

  // Runs one request to completion. Errors: those of ValidatePerturbedRequest (INVALID_ARGUMENT
  // naming the field); INVALID_ARGUMENT naming `backend` for an oracle !Supports; CANCELLED /
  // DEADLINE_EXCEEDED from `cancel`, checked between chunks of samples; RESOURCE_EXHAUSTED when
  // device memory runs out; INTERNAL for CUDA failures. result.threads is 1 (the calling thread).
  absl::StatusOr<PerturbedResult> Run(const PerturbedRequest& request,
                                      const CancelToken* cancel = nullptr);

  const GpuBackendOptions& options() const { return options_; }

  // Device memory, for the metrics: what this backend's streams hold (arenas, reused across
  // requests) and what the device reports in use and in total (cudaMemGetInfo; every process
  // on the device counts). Zeros without CUDA.
  struct Memory {
    uint64_t arena_bytes = 0;
    uint64_t device_used_bytes = 0;
    uint64_t device_total_bytes = 0;
  };
  Memory memory() const;

 private:
  struct Impl;
  GpuBackend(const GpuBackendOptions& options, std::unique_ptr<Impl> impl);

  GpuBackendOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_GPU_BACKEND_H_
