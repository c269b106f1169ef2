// The gRPC service `perturbd.v1.PerturbedOptimizer` on the callback API.
//
// Every handler returns at once: it checks the bearer token when one is configured
// (bearer_token_auth.h), translates and validates the request (request_translator.h), admits it
// (admission_queue.h: started at once, queued, or refused), hands it to the shared `Executor`
// with `RunPerturbedAsync` when it gets a slot, and finishes its reactor from the engine's
// completion callback on a worker thread. gRPC threads never wait for solves; they run only
// requests estimated at some 20 µs themselves, and only when no other request is in the
// executor (EstimatorPlan::run_inline, executor.h: less than a worker's wake-up).
//
//   Solve, Backward   ServerUnaryReactor; OnCancel (client cancel, deadline, server shutdown)
//                     takes a queued request out of the queue (CANCELLED / DEADLINE_EXCEEDED)
//                     or cancels a running one's CancelToken, whose deadline is the call's: the
//                     executor skips its remaining work items and its buffers are freed.
//                     Its reactions run inline on the gRPC thread that completes the call (no
//                     hand-off to gRPC's executor thread: they are short and never wait).
//   SolveStream       ServerBidiReactor that reads, solves and writes one message at a time, so
//                     responses come in request order; a message that fails (malformed,
//                     rejected, or failing in the engine) finishes the stream with its status,
//                     after the earlier responses. Each message counts as one in-flight request
//                     while it is being solved.
//   ListSolvers       answered inline.
//
// Admission: at most `max_inflight` requests (unary calls, or stream messages) are solved at
// once and `max_queue` more wait in FIFO order; beyond, RESOURCE_EXHAUSTED names the limit. A
// request whose deadline is under `min_deadline` away is refused with DEADLINE_EXCEEDED.
// Authentication comes first (UNAUTHENTICATED), then validation, so a malformed request gets
// INVALID_ARGUMENT even under load.
//
// Thread safety: gRPC calls the handlers concurrently; the service's state is atomic.
// Lifetimes: `executor` and `metrics` must outlive the service, and the service must outlive
// the grpc::Server it is registered with (Shutdown + Wait first).
#ifndef PERTURBD_SERVER_SERVICE_H_
#define PERTURBD_SERVER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "server/admission_queue.h"
#include "server/backend_router.h"
#include "server/bearer_token_auth.h"
#include "server/metrics.h"
#include "server/request_translator.h"
#include "solvers/perturbed/executor.h"

namespace perturbd {

inline constexpr char kServiceName[] = "perturbd.v1.PerturbedOptimizer";

struct ServiceOptions {
  // Per-request work and size limits.
  ServerLimits limits;
  // Requests solved at once.
  uint32_t max_inflight = 256;
  // Requests waiting for an in-flight slot before RESOURCE_EXHAUSTED.
  uint32_t max_queue = 256;
  // Requests with less time than this before their deadline are refused (DEADLINE_EXCEEDED).
  absl::Duration min_deadline = absl::Milliseconds(1);
  // When set, every perturbd.v1 call needs `authorization: Bearer <token>`.
  std::shared_ptr<const BearerTokenAuth> auth;
  // Reported by ListSolvers.
  std::string version = "unknown";
  // The backends (backend_router.h); null: the CPU executor alone.
  std::shared_ptr<BackendRouter> backends;
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

  // Requests being solved, and requests waiting for a slot.
  int64_t inflight() const { return admission_.inflight(); }
  int64_t queued() const { return admission_.queued(); }

  // Implementation details shared with the reactors in service.cc.
  Executor& executor() { return executor_; }
  BackendRouter& backends() { return *backends_; }
  // Counts a finished request's solves by backend (and GPU memory after a GPU request).
  void RecordSolves(const PerturbedResult& result);
  ServerMetrics& metrics() { return metrics_; }
  AdmissionQueue& admission() { return admission_; }
  const ServiceOptions& options() const { return options_; }
  // OK, or UNAUTHENTICATED when a token is configured and the call does not carry it.
  absl::Status Authenticate(const grpc::CallbackServerContext& context) const;

 private:
  Executor& executor_;
  std::shared_ptr<BackendRouter> backends_;
  ServerMetrics& metrics_;
  const ServiceOptions options_;
  AdmissionQueue admission_;
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_SERVICE_H_
