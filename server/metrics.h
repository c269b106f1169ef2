// Prometheus metrics of the server (DESIGN §6), exposed by prometheus-cpp on their own port.
//
//   perturbd_requests_total{method,oracle,code}            counter, one per finished request
//                                                          (per message for SolveStream)
//   perturbd_request_duration_seconds{method,oracle}       histogram, receipt → response
//   perturbd_queue_wait_seconds                            histogram, admitted → work started
//                                                          (time in the admission queue)
//   perturbd_solves_total{backend}                         counter, oracle calls (cpu, gpu)
//   perturbd_gpu_memory_bytes{kind}                        gauge, GPU memory: `arena` held by
//                                                          the GPU streams, `device_used` and
//                                                          `device_total` (cudaMemGetInfo);
//                                                          0 without a GPU backend
//   perturbd_request_samples                               histogram of M per request
//   perturbd_request_batch_size                            histogram of B per request
//   perturbd_inflight_requests                             gauge, being solved (holding a slot)
//   perturbd_queued_requests                               gauge, waiting for a slot
//   perturbd_rejected_requests_total{reason}               counter: max_inflight, max_queue,
//                                                          max_work, max_response_values,
//                                                          max_message_bytes, oracle_limit (e.g.
//                                                          a knapsack DP table):
//                                                          RESOURCE_EXHAUSTED; deadline:
//                                                          DEADLINE_EXCEEDED at admission
//   perturbd_build_info{version}                           gauge = 1
//
// `method` is the RPC name (Solve, Backward, SolveStream, ListSolvers), `oracle` the wire name
// of the problem (`none` when unset or for ListSolvers), `code` the gRPC code name.
//
// Hot path: every labelled child is created once through `Family::Add` and its reference kept
// (label sets are small and fixed: 4 methods × 11 oracle names × 17 codes at most), so recording
// a request is a few atomic operations.
//
// Thread safety: every method may be called from any thread.
#ifndef PERTURBD_SERVER_METRICS_H_
#define PERTURBD_SERVER_METRICS_H_

#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace perturbd {

enum class RpcMethod { kSolve = 0, kBackward, kSolveStream, kListSolvers };
inline constexpr int kNumRpcMethods = 4;
absl::string_view RpcMethodName(RpcMethod method);

class ServerMetrics {
 public:
  explicit ServerMetrics(absl::string_view version);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // One finished request: its code and its duration from receipt to response.
  void RecordRequest(RpcMethod method, absl::string_view oracle, grpc::StatusCode code,
                     double seconds);
  // The shape of one admitted request.
  void RecordShape(int64_t batch, uint32_t samples);
  void RecordQueueWait(double seconds);
  // Oracle calls done by `backend` ("cpu" or "gpu").
  void RecordSolves(uint64_t solves, absl::string_view backend = "cpu");
  // Sets the GPU memory gauges (they stay 0 on a server without a GPU backend).
  void SetGpuMemory(uint64_t arena_bytes, uint64_t device_used_bytes, uint64_t device_total_bytes);
  // `reason`: a limit's name (request_translator.h), "max_inflight", "max_queue" or "deadline".
  void RecordRejected(absl::string_view reason);
  void AddInflight(double delta) { inflight_->Increment(delta); }
  void AddQueued(double delta) { queued_->Increment(delta); }

 private:
  static constexpr int kNumOracles = 11;  // ten oracles and "none"
  static constexpr int kNumCodes = 17;
  static int OracleIndex(absl::string_view oracle);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* durations_;
  std::array<std::atomic<prometheus::Counter*>, kNumRpcMethods * kNumOracles * kNumCodes>
      request_counters_{};
  std::array<std::atomic<prometheus::Histogram*>, kNumRpcMethods * kNumOracles>
      duration_histograms_{};
  prometheus::Histogram* queue_wait_;
  prometheus::Counter* cpu_solves_;
  prometheus::Counter* gpu_solves_;
  prometheus::Gauge* gpu_arena_;
  prometheus::Gauge* gpu_device_used_;
  prometheus::Gauge* gpu_device_total_;
  prometheus::Histogram* samples_;
  prometheus::Histogram* batch_size_;
  prometheus::Gauge* inflight_;
  prometheus::Gauge* queued_;
  prometheus::Family<prometheus::Counter>* rejected_;
  std::array<prometheus::Counter*, 7> rejected_counters_{};
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_METRICS_H_
