// The gRPC service `perturbd.v1.PerturbedOptimizer` on the callback API.
//
// Every handler returns at once: it translates and validates the request
// (request_translator.h), admits it against `max_inflight`, hands it to the shared `Executor`
// with `RunPerturbedAsync`, and finishes its reactor from the engine's completion callback on a
// worker thread. gRPC threads never wait for solves.
//
//   Solve, Backward   ServerUnaryReactor; OnCancel (client cancel, deadline, server shutdown)
//                     cancels the request's CancelToken, whose deadline is the call's.
//   SolveStream       ServerBidiReactor that reads, solves and writes one message at a time, so
//                     responses come in request order; a message that fails (malformed,
//                     rejected, or failing in the engine) finishes the stream with its status,
//                     after the earlier responses. Each message counts as one in-flight request
//                     while it is being solved.
//   ListSolvers       answered inline.
//
// Admission: at most `max_inflight` requests (unary calls, or stream messages being solved)
// at once; one more gets RESOURCE_EXHAUSTED "max_inflight (N) requests already in flight".
// Validation comes first, so a malformed request gets INVALID_ARGUMENT even under load.
//
// Thread safety: gRPC calls the handlers concurrently; the service's state is atomic.
// Lifetimes: `executor` and `metrics` must outlive the service, and the service must outlive
// the grpc::Server it is registered with (Shutdown + Wait first).
#ifndef PERTURBD_SERVER_SERVICE_H_
#define PERTURBD_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "perturbd/v1/perturbd.grpc.pb.h"
#include "server/metrics.h"
#include "server/request_translator.h"
#include "solvers/perturbed/executor.h"

namespace perturbd {

inline constexpr char kServiceName[] = "perturbd.v1.PerturbedOptimizer";

struct ServiceOptions {
  // Per-request work and size limits.
  ServerLimits limits;
  // Concurrent requests before RESOURCE_EXHAUSTED.
  uint32_t max_inflight = 256;
  // Reported by ListSolvers.
  std::string version = "unknown";
};

class PerturbedOptimizerService final : public v1::PerturbedOptimizer::CallbackService {
 public:
  PerturbedOptimizerService(Executor& executor, ServerMetrics& metrics, ServiceOptions options);

  grpc::ServerUnaryReactor* Solve(grpc::CallbackServerContext* context,
                                  const v1::SolveRequest* request,
                                  v1::SolveResponse* response) override;
  grpc::ServerUnaryReactor* Backward(grpc::CallbackServerContext* context,
                                     const v1::BackwardRequest* request,
                                     v1::BackwardResponse* response) override;
  grpc::ServerBidiReactor<v1::SolveRequest, v1::SolveResponse>* SolveStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListSolvers(grpc::CallbackServerContext* context,
                                        const v1::ListSolversRequest* request,
                                        v1::ListSolversResponse* response) override;

  // Requests admitted and not finished.
  int64_t inflight() const { return inflight_.load(std::memory_order_relaxed); }

  // Implementation details shared with the reactors in service.cc.
  Executor& executor() { return executor_; }
  ServerMetrics& metrics() { return metrics_; }
  const ServiceOptions& options() const { return options_; }
  // Takes an in-flight slot, or returns RESOURCE_EXHAUSTED (and counts the rejection).
  absl::Status Admit();
  void Release();

 private:
  Executor& executor_;
  ServerMetrics& metrics_;
  const ServiceOptions options_;
  std::atomic<int64_t> inflight_{0};
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_SERVICE_H_
