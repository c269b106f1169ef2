#include "server/service.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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
  if (status.code() != absl::StatusCode::kResourceExhausted) return;
  const std::string reason = RejectReason(status);
  if (!reason.empty()) metrics.RecordRejected(reason);
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
        cancel_(std::make_shared<CancelToken>(deadline)) {}

  std::shared_ptr<const CancelToken> cancel() const { return cancel_; }

  // Finishes the call; the last use of `this` by the caller.
  void Complete(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    service_.metrics().RecordRequest(method_, oracle_, grpc_status.error_code(),
                                     absl::ToDoubleSeconds(absl::Now() - start_));
    Finish(grpc_status);
  }

  void OnCancel() override { cancel_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  PerturbedOptimizerService& service_;
  const RpcMethod method_;
  const absl::string_view oracle_;  // a static label from ProblemKindName
  const absl::Time start_;
  const std::shared_ptr<CancelToken> cancel_;
};

// The shared path of Solve and Backward: translate, admit, run, fill, finish.
template <typename Request, typename Response, typename Translate, typename Fill>
grpc::ServerUnaryReactor* RunUnary(PerturbedOptimizerService& service, RpcMethod method,
                                   grpc::CallbackServerContext* context, const Request& request,
                                   Response* response, Translate translate, Fill fill) {
  auto* call =
      new UnaryCall(service, method, ProblemKindName(request.problem()), DeadlineOf(context));
  absl::StatusOr<std::unique_ptr<TranslatedRequest>> translated =
      translate(request, service.options().limits);
  if (!translated.ok()) {
    RecordIfRejected(service.metrics(), translated.status());
    call->Complete(translated.status());
    return call;
  }
  if (absl::Status admitted = service.Admit(); !admitted.ok()) {
    call->Complete(admitted);
    return call;
  }
  std::shared_ptr<TranslatedRequest> owned = std::move(translated).value();
  service.metrics().RecordShape(owned->request.batch, owned->request.noise.num_samples);
  response->set_request_id(request.request_id());
  const absl::Time admitted_at = absl::Now();
  RunPerturbedAsync(
      service.executor(), owned->request, call->cancel(),
      [&service, call, owned, response, fill, admitted_at](absl::StatusOr<PerturbedResult> result) {
        if (result.ok()) {
          fill(*owned, *result, response);
          service.metrics().RecordSolves(result->solves);
          service.metrics().RecordQueueWait(
              std::max(0.0, absl::ToDoubleSeconds(absl::Now() - admitted_at) - result->seconds));
        }
        service.Release();
        call->Complete(result.status());
      });
  return call;
}

// One SolveStream: read → solve → write, one message at a time, so that responses keep the
// request order and only one operation is ever outstanding. Deletes itself in OnDone.
class SolveStreamCall final : public grpc::ServerBidiReactor<v1::SolveRequest, v1::SolveResponse> {
 public:
  SolveStreamCall(PerturbedOptimizerService& service, grpc::CallbackServerContext* context)
      : service_(service), deadline_(DeadlineOf(context)) {
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
        TranslateSolveRequest(request_, service_.options().limits);
    if (!translated.ok()) {
      RecordIfRejected(service_.metrics(), translated.status());
      Fail(translated.status());
      return;
    }
    if (absl::Status admitted = service_.Admit(); !admitted.ok()) {
      Fail(admitted);
      return;
    }
    std::shared_ptr<TranslatedRequest> owned = std::move(translated).value();
    service_.metrics().RecordShape(owned->request.batch, owned->request.noise.num_samples);
    std::shared_ptr<CancelToken> cancel = std::make_shared<CancelToken>(deadline_);
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) cancel->Cancel();
      cancel_ = cancel;
    }
    const absl::Time admitted_at = absl::Now();
    RunPerturbedAsync(
        service_.executor(), owned->request, cancel,
        [this, owned, admitted_at](absl::StatusOr<PerturbedResult> result) {
          service_.Release();
          if (!result.ok()) {
            Fail(result.status());
            return;
          }
          service_.metrics().RecordSolves(result->solves);
          service_.metrics().RecordQueueWait(
              std::max(0.0, absl::ToDoubleSeconds(absl::Now() - admitted_at) - result->seconds));
          response_.Clear();
          response_.set_request_id(request_.request_id());
          FillSolveResponse(*owned, *result, &response_);
          Record(grpc::StatusCode::OK);
          StartWrite(&response_);
        });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "SolveStream: the client went away"));
      return;
    }
    request_.Clear();
    StartRead(&request_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (cancel_) cancel_->Cancel();
  }

  void OnDone() override { delete this; }

 private:
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
  std::shared_ptr<CancelToken> cancel_ ABSL_GUARDED_BY(mu_);
};

void AddParameter(v1::SolverInfo* info, std::string name, std::string type,
                  std::string description) {
  v1::SolverParameter* p = info->add_parameters();
  p->set_name(std::move(name));
  p->set_type(std::move(type));
  p->set_description(std::move(description));
}

v1::SolverInfo* AddSolver(v1::ListSolversResponse* response, std::string name,
                          std::string description, v1::Sense natural,
                          std::initializer_list<v1::Sense> senses) {
  v1::SolverInfo* info = response->add_solvers();
  info->set_name(std::move(name));
  info->set_description(std::move(description));
  info->set_natural_sense(natural);
  for (v1::Sense s : senses) info->add_senses(s);
  info->add_backends(v1::CPU);
  return info;
}

void FillSolverList(v1::ListSolversResponse* response) {
  AddSolver(response, "argmax", "one-hot of the largest score; d = any (simplex)", v1::MAXIMIZE,
            {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(AddSolver(response, "top_k", "k-hot of the k largest scores; d >= k", v1::MAXIMIZE,
                         {v1::MAXIMIZE, v1::MINIMIZE}),
               "k", "uint32", "number of selected coordinates, 1 <= k <= d");
  AddSolver(response, "threshold", "y_i = 1[theta_i > 0] (multilabel); d = any", v1::MAXIMIZE,
            {v1::MAXIMIZE, v1::MINIMIZE});
  AddSolver(response, "ranking",
            "0-based ascending ranks (permutahedron); MINIMIZE gives the largest theta rank 0",
            v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  v1::SolverInfo* grid = AddSolver(
      response, "grid_shortest_path",
      "vertex costs on a rows x cols grid, top-left to bottom-right path, both ends marked; "
      "d = rows*cols; negative perturbed costs clamped at zero",
      v1::MINIMIZE, {v1::MINIMIZE});
  AddParameter(grid, "rows", "uint32", "grid rows, >= 1");
  AddParameter(grid, "cols", "uint32", "grid columns, >= 1");
  AddParameter(grid, "connectivity", "Connectivity", "FOUR or EIGHT (default) neighbours");
  v1::SolverInfo* graph = AddSolver(
      response, "graph_shortest_path",
      "edge costs of a directed graph, y marks the edges of the source-target path; d = edges; "
      "DAG: any sign, MAXIMIZE allowed; otherwise Dijkstra, MINIMIZE only",
      v1::MINIMIZE, {v1::MINIMIZE, v1::MAXIMIZE});
  AddParameter(graph, "num_nodes", "uint32", "nodes, numbered 0 .. num_nodes-1");
  AddParameter(graph, "edge_sources", "repeated uint32", "tail of each edge");
  AddParameter(graph, "edge_targets", "repeated uint32", "head of each edge");
  AddParameter(graph, "source", "uint32", "start node");
  AddParameter(graph, "target", "uint32", "end node");
  v1::SolverInfo* assignment =
      AddSolver(response, "assignment",
                "0/1 matching of a rows x cols score matrix, min(rows, cols) ones; d = rows*cols",
                v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(assignment, "rows", "uint32", "matrix rows, >= 1");
  AddParameter(assignment, "cols", "uint32", "matrix columns, >= 1");
  v1::SolverInfo* tree = AddSolver(
      response, "spanning_tree",
      "edges of a spanning tree (forest when disconnected) of an undirected graph; d = edges",
      v1::MINIMIZE, {v1::MINIMIZE, v1::MAXIMIZE});
  AddParameter(tree, "num_nodes", "uint32", "nodes, numbered 0 .. num_nodes-1");
  AddParameter(tree, "edge_sources", "repeated uint32", "one end of each edge");
  AddParameter(tree, "edge_targets", "repeated uint32", "the other end of each edge");
  v1::SolverInfo* knapsack =
      AddSolver(response, "knapsack", "0/1 knapsack: chosen items under one capacity; d = items",
                v1::MAXIMIZE, {v1::MAXIMIZE, v1::MINIMIZE});
  AddParameter(knapsack, "weights", "repeated int64", "item weights, non-negative integers");
  AddParameter(knapsack, "capacity", "int64", "capacity, a non-negative integer");
  v1::SolverInfo* lp = AddSolver(
      response, "linear_program",
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

PerturbedOptimizerService::PerturbedOptimizerService(Executor& executor, ServerMetrics& metrics,
                                                     ServiceOptions options)
    : executor_(executor), metrics_(metrics), options_(std::move(options)) {}

absl::Status PerturbedOptimizerService::Admit() {
  const int64_t before = inflight_.fetch_add(1, std::memory_order_relaxed);
  if (before >= static_cast<int64_t>(options_.max_inflight)) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.RecordRejected("max_inflight");
    return absl::ResourceExhaustedError(absl::StrCat("max_inflight (", options_.max_inflight,
                                                     ") requests already in flight; retry later"));
  }
  metrics_.AddInflight(1.0);
  return absl::OkStatus();
}

void PerturbedOptimizerService::Release() {
  inflight_.fetch_sub(1, std::memory_order_relaxed);
  metrics_.AddInflight(-1.0);
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
  FillSolverList(response);
  v1::Limits* limits = response->mutable_limits();
  limits->set_max_work(options_.limits.max_work);
  limits->set_max_message_bytes(options_.limits.max_message_bytes);
  limits->set_max_inflight(options_.max_inflight);
  limits->set_max_response_values(options_.limits.max_response_values);
  response->set_threads(static_cast<uint32_t>(executor_.num_threads()));
  response->set_version(options_.version);
  metrics_.RecordRequest(RpcMethod::kListSolvers, "none", grpc::StatusCode::OK,
                         absl::ToDoubleSeconds(absl::Now() - start));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace perturbd
