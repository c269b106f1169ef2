#include "server/service.h"

#include <chrono>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/result_validator.h"
#include "server/status_util.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const std::chrono::system_clock::time_point deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

void RecordIfRejected(ServerMetrics& metrics, const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted &&
      status.code() != absl::StatusCode::kDeadlineExceeded) {
    return;
  }
  const std::string reason = RejectReason(status);
  if (!reason.empty()) metrics.RecordRejected(reason);
}

// Translation with the allocations it makes guarded: a structure whose size was not bounded
// before being allocated must fail this call, not escape into gRPC (which would answer
// UNIMPLEMENTED and leak the reactor).
template <typename Request, typename Translate>
absl::StatusOr<std::unique_ptr<TranslatedRequest>> TranslateGuarded(Translate translate,
                                                                    const Request& request,
                                                                    const ServerLimits& limits) {
  try {
    return translate(request, limits);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "problem: the request's structure needs more memory than the server can allocate");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("request translation failed: ", e.what()));
  }
}

// Why a request left the admission queue when its call was cancelled.
absl::Status CancelledWhileQueued(absl::Time deadline) {
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError("deadline exceeded in the admission queue; not started");
  }
  return absl::CancelledError("cancelled in the admission queue; not started");
}

// One Solve or Backward call. Deletes itself when gRPC is done with it.
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(PerturbedOptimizerService& service, RpcMethod method, absl::string_view oracle,
            absl::Time deadline)
      : service_(service),
        method_(method),
        oracle_(oracle),
        start_(absl::Now()),
        deadline_(deadline),
        cancel_(std::make_shared<CancelToken>(deadline)) {}

  std::shared_ptr<const CancelToken> cancel() const { return cancel_; }
  absl::Time deadline() const { return deadline_; }

  // Finishes the call; the last use of `this` by the caller.
  void Complete(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    service_.metrics().RecordRequest(method_, oracle_, grpc_status.error_code(),
                                     absl::ToDoubleSeconds(absl::Now() - start_));
    Finish(grpc_status);
  }

  // Called by the handler once the request is admitted. A cancel that gRPC reported before
  // (between Admit and here) takes a still-queued request out of the queue now.
  void SetTicket(const std::shared_ptr<AdmissionQueue::Ticket>& ticket) {
    bool cancelled = false;
    {
      absl::MutexLock lock(&mu_);
      ticket_ = ticket;
      cancelled = cancelled_;
    }
    if (cancelled) service_.admission().Cancel(ticket, CancelledWhileQueued(deadline_));
  }

  void OnCancel() override {
    cancel_->Cancel();
    std::shared_ptr<AdmissionQueue::Ticket> ticket;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      ticket = ticket_;
    }
    // Still queued: leave the queue now (its start callback completes the call).
    service_.admission().Cancel(ticket, CancelledWhileQueued(deadline_));
  }
  void OnDone() override { delete this; }

  // Lets gRPC run OnCancel and OnDone on the thread that completes the call rather than
  // handing each to its executor thread, which cost a thread wake-up per call (gRPC's own
  // default reactor, which its health service uses, runs inline the same way). Both are short
  // and never wait: OnCancel stores an atomic, holds `mu_` for two assignments and takes a
  // still-queued request out of the admission queue (whose start callback then finishes the
  // call); OnDone deletes. gRPC keeps a reference across OnCancel, so OnDone never runs inside
  // it; OnDone may run inside a worker's Finish, which is why Complete's Finish is its last use
  // of `this`.
  bool InternalInlineable() override { return true; }

 private:
  PerturbedOptimizerService& service_;
  const RpcMethod method_;
  const absl::string_view oracle_;  // a static label from ProblemKindName
  const absl::Time start_;
  const absl::Time deadline_;
  const std::shared_ptr<CancelToken> cancel_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<AdmissionQueue::Ticket> ticket_ ABSL_GUARDED_BY(mu_);
};

// The shared path of Solve and Backward: authenticate, translate, admit, run, fill, finish.
template <typename Request, typename Response, typename Translate, typename Fill>
grpc::ServerUnaryReactor* RunUnary(PerturbedOptimizerService& service, RpcMethod method,
                                   grpc::CallbackServerContext* context, const Request& request,
                                   Response* response, Translate translate, Fill fill) {
  if (absl::Status auth = service.Authenticate(*context); !auth.ok()) {
    auto* call = new UnaryCall(service, method, "none", DeadlineOf(context));
    call->Complete(auth);
    return call;
  }
  auto* call =
      new UnaryCall(service, method, ProblemKindName(request.problem()), DeadlineOf(context));
  absl::StatusOr<std::unique_ptr<TranslatedRequest>> translated =
      TranslateGuarded(translate, request, service.options().limits);
  if (!translated.ok()) {
    RecordIfRejected(service.metrics(), translated.status());
    call->Complete(translated.status());
    return call;
  }
  std::shared_ptr<TranslatedRequest> owned = std::move(translated).value();
  response->set_request_id(request.request_id());
  const absl::Time admitted_at = absl::Now();
  absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> ticket = service.admission().Admit(
      call->deadline(),
      [&service, call, owned, response, fill, admitted_at](absl::Status admitted) {
        if (!admitted.ok()) {  // left the queue without running
          call->Complete(admitted);
          return;
        }
        service.metrics().RecordQueueWait(absl::ToDoubleSeconds(absl::Now() - admitted_at));
        service.metrics().RecordShape(owned->request.batch, owned->request.noise.num_samples);
        service.backends().RunAsync(
            owned->request, owned->backend, call->cancel(),
            [&service, call, owned, response, fill](absl::StatusOr<PerturbedResult> result) {
              absl::Status status = result.status();
              if (result.ok()) {
                service.RecordSolves(*result);
                status = ValidateResult(owned->request, *result);
                if (status.ok()) fill(*owned, *result, response);
              }
              service.admission().Release();
              call->Complete(status);
            });
      });
  if (!ticket.ok()) {
    RecordIfRejected(service.metrics(), ticket.status());
    call->Complete(ticket.status());
    return call;
  }
  call->SetTicket(*ticket);
  return call;
}

// One SolveStream: read → solve → write, one message at a time, so that responses keep the
// request order and only one operation is ever outstanding. Deletes itself in OnDone.
class SolveStreamCall final : public grpc::ServerBidiReactor<v1::SolveRequest, v1::SolveResponse> {
 public:
  SolveStreamCall(PerturbedOptimizerService& service, grpc::CallbackServerContext* context)
      : service_(service), deadline_(DeadlineOf(context)) {
    if (absl::Status auth = service.Authenticate(*context); !auth.ok()) {
      start_ = absl::Now();
      Fail(auth);  // before reading anything
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or the call is gone): every response was written
      Finish(grpc::Status::OK);
      return;
    }
    start_ = absl::Now();
    oracle_ = ProblemKindName(request_.problem());
    absl::StatusOr<std::unique_ptr<TranslatedRequest>> translated =
        TranslateGuarded(TranslateSolveRequest, request_, service_.options().limits);
    if (!translated.ok()) {
      RecordIfRejected(service_.metrics(), translated.status());
      Fail(translated.status());
      return;
    }
    std::shared_ptr<TranslatedRequest> owned = std::move(translated).value();
    std::shared_ptr<CancelToken> cancel = std::make_shared<CancelToken>(deadline_);
    uint64_t message = 0;
    {
      absl::MutexLock lock(&mu_);
      message = ++messages_;
    }
    const absl::Time admitted_at = absl::Now();
    absl::StatusOr<std::shared_ptr<AdmissionQueue::Ticket>> ticket = service_.admission().Admit(
        deadline_, [this, owned, cancel, admitted_at,
                    request_id = request_.request_id()](absl::Status admitted) {
          if (!admitted.ok()) {
            Fail(admitted);
            return;
          }
          service_.metrics().RecordQueueWait(absl::ToDoubleSeconds(absl::Now() - admitted_at));
          service_.metrics().RecordShape(owned->request.batch, owned->request.noise.num_samples);
          Solve(owned, cancel, request_id);
        });
    if (!ticket.ok()) {
      RecordIfRejected(service_.metrics(), ticket.status());
      Fail(ticket.status());
      return;
    }
    bool cancelled = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
      // When it started at once, this message may already have been answered and the next one
      // read and queued (on other threads): keep the newest message's ticket only.
      if (message == messages_) ticket_ = *ticket;
    }
    if (cancelled) service_.admission().Cancel(*ticket, CancelledWhileQueued(deadline_));
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "SolveStream: the client went away"));
      return;
    }
    // No request_.Clear(): the read's parse clears it, on the thread that completes the read.
    StartRead(&request_);
  }

  void OnCancel() override {
    std::shared_ptr<AdmissionQueue::Ticket> ticket;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (cancel_) cancel_->Cancel();
      ticket = ticket_;
    }
    service_.admission().Cancel(ticket, CancelledWhileQueued(deadline_));
  }

  void OnDone() override { delete this; }

 private:
  // Holds an in-flight slot: runs the message on the executor, then writes its response.
  // request_ is touched only by the read's parse and OnReadDone (its request_id comes along
  // here), never by the executor's thread or OnWriteDone: gRPC orders those threads in its
  // uninstrumented core, which TSan cannot see.
  void Solve(const std::shared_ptr<TranslatedRequest>& owned,
             const std::shared_ptr<CancelToken>& cancel, const std::string& request_id) {
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) cancel->Cancel();
      cancel_ = cancel;
    }
    service_.backends().RunAsync(owned->request, owned->backend, cancel,
                                 [this, owned, request_id](absl::StatusOr<PerturbedResult> result) {
                                   service_.admission().Release();
                                   if (!result.ok()) {
                                     Fail(result.status());
                                     return;
                                   }
                                   service_.RecordSolves(*result);
                                   if (absl::Status valid = ValidateResult(owned->request, *result);
                                       !valid.ok()) {
                                     Fail(valid);
                                     return;
                                   }
                                   response_.Clear();
                                   response_.set_request_id(request_id);
                                   FillSolveResponse(*owned, *result, &response_);
                                   Record(grpc::StatusCode::OK);
                                   StartWrite(&response_);
                                 });
  }
  void Record(grpc::StatusCode code) {
    service_.metrics().RecordRequest(RpcMethod::kSolveStream, oracle_, code,
                                     absl::ToDoubleSeconds(absl::Now() - start_));
  }
  void Fail(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    Record(grpc_status.error_code());
    Finish(grpc_status);
  }

  PerturbedOptimizerService& service_;
  const absl::Time deadline_;
  // Used by one operation at a time (read → solve → write), so they need no lock.
  v1::SolveRequest request_;
  v1::SolveResponse response_;
  absl::Time start_;
  absl::string_view oracle_ = "none";

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t messages_ ABSL_GUARDED_BY(mu_) = 0;  // messages read so far
  std::shared_ptr<CancelToken> cancel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<AdmissionQueue::Ticket> ticket_ ABSL_GUARDED_BY(mu_);
};

void AddParameter(v1::SolverInfo* info, std::string name, std::string type,
                  std::string description) {
  v1::SolverParameter* p = info->add_parameters();
  p->set_name(std::move(name));
  p->set_type(std::move(type));
  p->set_description(std::move(description));
}

// The options with their backends filled in (the CPU alone when none are given), and
// `limits.gpu` saying whether `backend: GPU` is served, for the translator.
ServiceOptions WithBackends(ServiceOptions options, Executor& executor) {
  if (options.backends == nullptr) options.backends = std::make_shared<BackendRouter>(executor);
  options.limits.gpu = options.backends->has_gpu();
  return options;
}

void RecordGpuMemory(ServerMetrics& metrics, const BackendRouter& backends) {
  const GpuBackend::Memory memory = backends.gpu_memory();
  metrics.SetGpuMemory(memory.arena_bytes, memory.device_used_bytes, memory.device_total_bytes);
}

v1::SolverInfo* AddSolver(v1::ListSolversResponse* response, const BackendRouter& backends,
                          std::string name,
                          std::string description, v1::Sense natural,
                          std::initializer_list<v1::Sense> senses) {
  v1::SolverInfo* info = response->add_solvers();
  info->set_name(std::move(name));
  info->set_description(std::move(description));
  info->set_natural_sense(natural);
  for (v1::Sense s : senses) info->add_senses(s);
  info->add_backends(v1::CPU);
  if (backends.GpuRuns(info->name())) info->add_backends(v1::GPU);
  return info;
}

void FillSolverList(v1::ListSolversResponse* response, const BackendRouter& backends) {
  AddSolver(response, backends, "argmax", "one-hot of the largest score; d = any (simplex)", v1::MAXIMIZE,
            {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(AddSolver(response, backends, "top_k", "k-hot of the k largest scores; d >= k", v1::MAXIMIZE,
                         {v1::MAXIMIZE, v1::MINIMIZE}),
               "k", "uint32", "number of selected coordinates, 1 <= k <= d");
  AddSolver(response, backends, "threshold", "y_i = 1[theta_i > 0] (multilabel); d = any", v1::MAXIMIZE,
            {v1::MAXIMIZE, v1::MINIMIZE});
  AddSolver(response, backends, "ranking",
            "0-based ascending ranks (permutahedron); MINIMIZE gives the largest theta rank 0",
            v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  v1::SolverInfo* grid = AddSolver(
      response, backends, "grid_shortest_path",
      "vertex costs on a rows x cols grid, top-left to bottom-right path, both ends marked; "
      "d = rows*cols; negative perturbed costs clamped at zero",
      v1::MINIMIZE, {v1::MINIMIZE});
  AddParameter(grid, "rows", "uint32", "grid rows, >= 1");
  AddParameter(grid, "cols", "uint32", "grid columns, >= 1");
  AddParameter(grid, "connectivity", "Connectivity", "FOUR or EIGHT (default) neighbours");
  v1::SolverInfo* graph = AddSolver(
      response, backends, "graph_shortest_path",
      "edge costs of a directed graph, y marks the edges of the source-target path; d = edges; "
      "DAG: any sign, MAXIMIZE allowed; otherwise Dijkstra, MINIMIZE only",
      v1::MINIMIZE, {v1::MINIMIZE, v1::MAXIMIZE});
  AddParameter(graph, "num_nodes", "uint32", "nodes, numbered 0 .. num_nodes-1");
  AddParameter(graph, "edge_sources", "repeated uint32", "tail of each edge");
  AddParameter(graph, "edge_targets", "repeated uint32", "head of each edge");
  AddParameter(graph, "source", "uint32", "start node");
  AddParameter(graph, "target", "uint32", "end node");
  v1::SolverInfo* assignment =
      AddSolver(response, backends, "assignment",
                "0/1 matching of a rows x cols score matrix, min(rows, cols) ones; d = rows*cols",
                v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(assignment, "rows", "uint32", "matrix rows, >= 1");
  AddParameter(assignment, "cols", "uint32", "matrix columns, >= 1");
  v1::SolverInfo* tree = AddSolver(
      response, backends, "spanning_tree",
      "edges of a spanning tree (forest when disconnected) of an undirected graph; d = edges",
      v1::MINIMIZE, {v1::MINIMIZE, v1::MAXIMIZE});
  AddParameter(tree, "num_nodes", "uint32", "nodes, numbered 0 .. num_nodes-1");
  AddParameter(tree, "edge_sources", "repeated uint32", "one end of each edge");
  AddParameter(tree, "edge_targets", "repeated uint32", "the other end of each edge");
  v1::SolverInfo* knapsack =
      AddSolver(response, backends, "knapsack", "0/1 knapsack: chosen items under one capacity; d = items",
                v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(knapsack, "weights", "repeated int64", "item weights, non-negative integers");
  AddParameter(knapsack, "capacity", "int64", "capacity, a non-negative integer");
  v1::SolverInfo* lp = AddSolver(
      response, backends, "linear_program",
      "optimal vertex / integer point of row_lower <= A y <= row_upper with variable bounds and "
      "integrality (COIN-OR Clp/Cbc); d = num_variables",
      v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(lp, "num_variables", "uint32", "variables, >= 1");
  AddParameter(lp, "row_index", "repeated uint32", "row of each coefficient of A");
  AddParameter(lp, "column_index", "repeated uint32", "column of each coefficient of A");
  AddParameter(lp, "coefficient", "repeated double", "coefficients of A; duplicates summed");
  AddParameter(lp, "row_lower", "repeated double", "lower bound of each row of A y");
  AddParameter(lp, "row_upper", "repeated double", "upper bound of each row of A y");
  AddParameter(lp, "variable_lower", "repeated double", "empty = 0 for every variable");
  AddParameter(lp, "variable_upper", "repeated double", "empty = +inf for every variable");
  AddParameter(lp, "integer", "repeated bool", "integrality flags; empty = all continuous");
}

}  // namespace

namespace {

AdmissionQueue::Options AdmissionOptions(const ServiceOptions& options, ServerMetrics& metrics) {
  AdmissionQueue::Options admission;
  admission.max_inflight = options.max_inflight;
  admission.max_queue = options.max_queue;
  admission.min_deadline = options.min_deadline;
  admission.on_change = [&metrics](int inflight_delta, int queued_delta) {
    if (inflight_delta != 0) metrics.AddInflight(inflight_delta);
    if (queued_delta != 0) metrics.AddQueued(queued_delta);
  };
  return admission;
}

}  // namespace

PerturbedOptimizerService::PerturbedOptimizerService(Executor& executor, ServerMetrics& metrics,
                                                     ServiceOptions options)
    : executor_(executor),
      metrics_(metrics),
      options_(WithBackends(std::move(options), executor)),
      admission_(AdmissionOptions(options_, metrics)) {
  backends_ = options_.backends;
  if (backends_->has_gpu()) RecordGpuMemory(metrics_, *backends_);
}

void PerturbedOptimizerService::RecordSolves(const PerturbedResult& result) {
  metrics_.RecordSolves(result.solves, result.backend);
  if (absl::string_view(result.backend) == "gpu") RecordGpuMemory(metrics_, *backends_);
}

absl::Status PerturbedOptimizerService::Authenticate(
    const grpc::CallbackServerContext& context) const {
  if (options_.auth == nullptr) return absl::OkStatus();
  return options_.auth->Check(context.client_metadata());
}

grpc::ServerUnaryReactor* PerturbedOptimizerService::Solve(grpc::CallbackServerContext* context,
                                                           const v1::SolveRequest* request,
                                                           v1::SolveResponse* response) {
  return RunUnary(*this, RpcMethod::kSolve, context, *request, response, TranslateSolveRequest,
                  FillSolveResponse);
}

grpc::ServerUnaryReactor* PerturbedOptimizerService::Backward(grpc::CallbackServerContext* context,
                                                              const v1::BackwardRequest* request,
                                                              v1::BackwardResponse* response) {
  return RunUnary(*this, RpcMethod::kBackward, context, *request, response,
                  TranslateBackwardRequest, FillBackwardResponse);
}

grpc::ServerBidiReactor<v1::SolveRequest, v1::SolveResponse>*
PerturbedOptimizerService::SolveStream(grpc::CallbackServerContext* context) {
  return new SolveStreamCall(*this, context);
}

grpc::ServerUnaryReactor* PerturbedOptimizerService::ListSolvers(
    grpc::CallbackServerContext* context, const v1::ListSolversRequest* request,
    v1::ListSolversResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authenticate(*context); !auth.ok()) {
    const grpc::Status status = ToGrpcStatus(auth);
    metrics_.RecordRequest(RpcMethod::kListSolvers, "none", status.error_code(),
                           absl::ToDoubleSeconds(absl::Now() - start));
    reactor->Finish(status);
    return reactor;
  }
  FillSolverList(response, *backends_);
  v1::Limits* limits = response->mutable_limits();
  limits->set_max_work(options_.limits.max_work);
  limits->set_max_message_bytes(options_.limits.max_message_bytes);
  limits->set_max_inflight(options_.max_inflight);
  limits->set_max_response_values(options_.limits.max_response_values);
  response->set_threads(static_cast<uint32_t>(executor_.num_threads()));
  response->set_version(options_.version);
  for (const std::string& device : backends_->devices()) response->add_devices(device);
  metrics_.RecordRequest(RpcMethod::kListSolvers, "none", grpc::StatusCode::OK,
                         absl::ToDoubleSeconds(absl::Now() - start));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace perturbd
