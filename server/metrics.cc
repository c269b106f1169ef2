#include "server/metrics.h"

#include <string>

#include "server/status_util.h"

namespace perturbd {
namespace {

// The ten oracles' wire names, then "none" (no problem.kind, or ListSolvers).
constexpr std::array<absl::string_view, 11> kOracleLabels = {"argmax",
                                                             "top_k",
                                                             "threshold",
                                                             "ranking",
                                                             "grid_shortest_path",
                                                             "graph_shortest_path",
                                                             "assignment",
                                                             "spanning_tree",
                                                             "knapsack",
                                                             "linear_program",
                                                             "none"};
constexpr std::array<absl::string_view, 7> kRejectReasons = {
    "max_inflight", "max_queue",         "max_work",    "max_response_values",
    "deadline",     "max_message_bytes", "oracle_limit"};

// Powers of two 1 .. 2^20.
prometheus::Histogram::BucketBoundaries PowersOfTwo() {
  prometheus::Histogram::BucketBoundaries buckets;
  for (int k = 0; k <= 20; ++k) buckets.push_back(static_cast<double>(int64_t{1} << k));
  return buckets;
}

// 0.5 ms .. ~2 min, ×2 per bucket.
prometheus::Histogram::BucketBoundaries Seconds() {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double s = 0.0005; s < 150.0; s *= 2.0) buckets.push_back(s);
  return buckets;
}

}  // namespace

absl::string_view RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kSolve:
      return "Solve";
    case RpcMethod::kBackward:
      return "Backward";
    case RpcMethod::kSolveStream:
      return "SolveStream";
    case RpcMethod::kListSolvers:
      return "ListSolvers";
  }
  return "unknown";
}

ServerMetrics::ServerMetrics(absl::string_view version)
    : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ =
      &prometheus::BuildCounter()
           .Name("perturbd_requests_total")
           .Help("Finished requests (SolveStream: messages) by method, oracle and gRPC code")
           .Register(*registry_);
  durations_ = &prometheus::BuildHistogram()
                    .Name("perturbd_request_duration_seconds")
                    .Help("Time from receiving a request to sending its response")
                    .Register(*registry_);
  queue_wait_ = &prometheus::BuildHistogram()
                     .Name("perturbd_queue_wait_seconds")
                     .Help(
                         "Time an admitted request waited in the admission queue for an "
                         "in-flight slot")
                     .Register(*registry_)
                     .Add({}, Seconds());
  prometheus::Family<prometheus::Counter>& solves = prometheus::BuildCounter()
                                                      .Name("perturbd_solves_total")
                                                      .Help("Oracle calls by backend")
                                                      .Register(*registry_);
  cpu_solves_ = &solves.Add({{"backend", "cpu"}});
  gpu_solves_ = &solves.Add({{"backend", "gpu"}});
  // Registered on every server (zeros without a GPU backend), so that every name the
  // dashboard uses is always exported.
  prometheus::Family<prometheus::Gauge>& gpu_memory =
      prometheus::BuildGauge()
          .Name("perturbd_gpu_memory_bytes")
          .Help("GPU memory: arena = held by this server's GPU streams (reused across requests); "
                "device_used / device_total = cudaMemGetInfo of the device; 0 without a GPU")
          .Register(*registry_);
  gpu_arena_ = &gpu_memory.Add({{"kind", "arena"}});
  gpu_device_used_ = &gpu_memory.Add({{"kind", "device_used"}});
  gpu_device_total_ = &gpu_memory.Add({{"kind", "device_total"}});
  samples_ = &prometheus::BuildHistogram()
                  .Name("perturbd_request_samples")
                  .Help("Samples M per admitted request")
                  .Register(*registry_)
                  .Add({}, PowersOfTwo());
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("perturbd_request_batch_size")
                     .Help("Instances B per admitted request")
                     .Register(*registry_)
                     .Add({}, PowersOfTwo());
  inflight_ = &prometheus::BuildGauge()
                   .Name("perturbd_inflight_requests")
                   .Help("Requests being solved (holding an in-flight slot)")
                   .Register(*registry_)
                   .Add({});
  queued_ = &prometheus::BuildGauge()
                 .Name("perturbd_queued_requests")
                 .Help("Admitted requests waiting in the admission queue for an in-flight slot")
                 .Register(*registry_)
                 .Add({});
  rejected_ = &prometheus::BuildCounter()
                   .Name("perturbd_rejected_requests_total")
                   .Help(
                       "Requests refused before any work: RESOURCE_EXHAUSTED by the limit "
                       "they hit, or DEADLINE_EXCEEDED (reason deadline) at admission")
                   .Register(*registry_);
  for (size_t k = 0; k < kRejectReasons.size(); ++k) {
    rejected_counters_[k] = &rejected_->Add({{"reason", std::string(kRejectReasons[k])}});
  }
  prometheus::BuildGauge()
      .Name("perturbd_build_info")
      .Help("Build information; the value is always 1")
      .Register(*registry_)
      .Add({{"version", std::string(version)}})
      .Set(1.0);
}

int ServerMetrics::OracleIndex(absl::string_view oracle) {
  static_assert(kOracleLabels.size() == kNumOracles);
  for (int k = 0; k < kNumOracles; ++k) {
    if (kOracleLabels[k] == oracle) return k;
  }
  return kNumOracles - 1;  // "none"
}

void ServerMetrics::RecordRequest(RpcMethod method, absl::string_view oracle, grpc::StatusCode code,
                                  double seconds) {
  const int m = static_cast<int>(method);
  const int o = OracleIndex(oracle);
  int c = static_cast<int>(code);
  if (c < 0 || c >= kNumCodes) c = static_cast<int>(grpc::StatusCode::UNKNOWN);

  // Family::Add is idempotent for equal labels, so a race here only repeats a lookup.
  std::atomic<prometheus::Counter*>& counter =
      request_counters_[(m * kNumOracles + o) * kNumCodes + c];
  prometheus::Counter* counter_ptr = counter.load(std::memory_order_acquire);
  if (counter_ptr == nullptr) {
    counter_ptr =
        &requests_->Add({{"method", std::string(RpcMethodName(method))},
                         {"oracle", std::string(kOracleLabels[o])},
                         {"code", std::string(GrpcCodeName(static_cast<grpc::StatusCode>(c)))}});
    counter.store(counter_ptr, std::memory_order_release);
  }
  counter_ptr->Increment();

  std::atomic<prometheus::Histogram*>& histogram = duration_histograms_[m * kNumOracles + o];
  prometheus::Histogram* histogram_ptr = histogram.load(std::memory_order_acquire);
  if (histogram_ptr == nullptr) {
    histogram_ptr = &durations_->Add(
        {{"method", std::string(RpcMethodName(method))}, {"oracle", std::string(kOracleLabels[o])}},
        Seconds());
    histogram.store(histogram_ptr, std::memory_order_release);
  }
  histogram_ptr->Observe(seconds);
}

void ServerMetrics::RecordShape(int64_t batch, uint32_t samples) {
  batch_size_->Observe(static_cast<double>(batch));
  samples_->Observe(static_cast<double>(samples));
}

void ServerMetrics::RecordQueueWait(double seconds) { queue_wait_->Observe(seconds); }

void ServerMetrics::RecordSolves(uint64_t solves, absl::string_view backend) {
  (backend == "gpu" ? gpu_solves_ : cpu_solves_)->Increment(static_cast<double>(solves));
}

void ServerMetrics::SetGpuMemory(uint64_t arena_bytes, uint64_t device_used_bytes,
                                 uint64_t device_total_bytes) {
  gpu_arena_->Set(static_cast<double>(arena_bytes));
  gpu_device_used_->Set(static_cast<double>(device_used_bytes));
  gpu_device_total_->Set(static_cast<double>(device_total_bytes));
}

void ServerMetrics::RecordRejected(absl::string_view reason) {
  for (size_t k = 0; k < kRejectReasons.size(); ++k) {
    if (kRejectReasons[k] == reason) {
      rejected_counters_[k]->Increment();
      return;
    }
  }
  rejected_->Add({{"reason", std::string(reason)}}).Increment();
}

}  // namespace perturbd
