// A closed-loop load generator for many small concurrent requests: `--concurrency` client
// threads, each with its own channel (or sharing `--connections` channels), send Solve
// requests back to back for `--duration_s` (at most 300 s) or `--max_requests`, whichever
// comes first, and report latency percentiles, requests per second and errors by code as one
// JSON line. Only loopback targets are accepted.
//
//   build/bench/load_generator --address=127.0.0.1:50051 --concurrency=8 --duration_s=10
//   (default request: argmax, d=10, M=10, B=1 — the issue-5 small-request workload)
//
// `--rpc=health` sends grpc.health.v1.Health/Check instead, answered by gRPC's own health
// service in the same server: the floor that gRPC and the machine set for a unary call, to
// read the Solve figures against.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "perturbd/v1/perturbd.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "server address (loopback only)");
ABSL_FLAG(int, concurrency, 8, "client threads, each with one request in flight");
ABSL_FLAG(int, connections, 0, "channels shared by the threads (0 = one per thread)");
ABSL_FLAG(double, duration_s, 10.0, "how long to send (capped at 300 s)");
ABSL_FLAG(int64_t, max_requests, 10'000'000, "stop after this many requests in total");
ABSL_FLAG(int, d, 10, "argmax dimension");
ABSL_FLAG(int, samples, 10, "M");
ABSL_FLAG(int, batch, 1, "B");
ABSL_FLAG(std::string, rpc, "solve",
          "solve (the workload above) or health (grpc.health.v1.Health/Check: gRPC's floor)");

namespace {

namespace v1 = perturbd::v1;

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

v1::SolveRequest MakeRequest() {
  const int d = absl::GetFlag(FLAGS_d), b = absl::GetFlag(FLAGS_batch);
  v1::SolveRequest request;
  request.mutable_problem()->mutable_argmax();
  v1::Tensor* theta = request.mutable_theta();
  theta->set_dtype(v1::FLOAT32);
  theta->add_shape(b);
  theta->add_shape(d);
  std::vector<float> values(static_cast<size_t>(b * d));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.7f * static_cast<float>(i));
  theta->set_data(values.data(), values.size() * sizeof(float));
  v1::Noise* noise = request.mutable_noise();
  noise->set_distribution(v1::GUMBEL);
  noise->set_epsilon(0.5);
  noise->set_num_samples(static_cast<uint32_t>(absl::GetFlag(FLAGS_samples)));
  return request;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_address);
  if (!IsLoopback(address)) {
    std::fprintf(stderr, "load_generator: only loopback addresses are allowed, got %s\n",
                 address.c_str());
    return 2;
  }
  const int threads = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int connections =
      absl::GetFlag(FLAGS_connections) > 0 ? absl::GetFlag(FLAGS_connections) : threads;
  const double duration = std::clamp(absl::GetFlag(FLAGS_duration_s), 0.1, 300.0);
  const int64_t max_requests = absl::GetFlag(FLAGS_max_requests);
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  const bool health = rpc == "health";
  if (!health && rpc != "solve") {
    std::fprintf(stderr, "load_generator: --rpc must be solve or health, got %s\n", rpc.c_str());
    return 2;
  }

  std::vector<std::unique_ptr<v1::PerturbedOptimizer::Stub>> stubs;
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health_stubs;
  for (int c = 0; c < connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", c);  // distinct channels, not one shared subchannel
    const auto channel =
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    stubs.push_back(v1::PerturbedOptimizer::NewStub(channel));
    health_stubs.push_back(grpc::health::v1::Health::NewStub(channel));
  }
  const v1::SolveRequest base = MakeRequest();
  std::atomic<int64_t> issued{0};
  std::mutex mu;
  std::vector<double> latencies_us;
  std::map<std::string, int64_t> errors;
  const auto start = std::chrono::steady_clock::now();
  const auto stop_at = start + std::chrono::duration<double>(duration);

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      v1::PerturbedOptimizer::Stub& stub = *stubs[static_cast<size_t>(t % connections)];
      grpc::health::v1::Health::Stub& health_stub =
          *health_stubs[static_cast<size_t>(t % connections)];
      v1::SolveRequest request = base;
      const grpc::health::v1::HealthCheckRequest health_request;
      std::vector<double> mine;
      std::map<std::string, int64_t> my_errors;
      while (std::chrono::steady_clock::now() < stop_at && issued.fetch_add(1) < max_requests) {
        request.mutable_noise()->set_seed(static_cast<uint64_t>(issued.load()));
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::SolveResponse response;
        grpc::health::v1::HealthCheckResponse health_response;
        const auto t0 = std::chrono::steady_clock::now();
        const grpc::Status status =
            health ? health_stub.Check(&context, health_request, &health_response)
                   : stub.Solve(&context, request, &response);
        const auto t1 = std::chrono::steady_clock::now();
        if (status.ok()) {
          mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        } else {
          ++my_errors[std::to_string(static_cast<int>(status.error_code()))];
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
      for (const auto& [code, n] : my_errors) errors[code] += n;
    });
  }
  for (std::thread& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    return latencies_us[std::min(
        latencies_us.size() - 1,
        static_cast<size_t>(p * static_cast<double>(latencies_us.size())))];
  };
  std::string error_json;
  for (const auto& [code, n] : errors) {
    error_json += (error_json.empty() ? "" : ", ") + ("\"" + code + "\": " + std::to_string(n));
  }
  std::printf(
      "{\"rpc\": \"%s\", \"workload\": \"argmax d=%d M=%d B=%d\", \"concurrency\": %d, "
      "\"connections\": %d, "
      "\"seconds\": %.2f, \"ok\": %zu, \"requests_per_s\": %.0f, \"p50_us\": %.0f, "
      "\"p90_us\": %.0f, \"p99_us\": %.0f, \"errors\": {%s}}\n",
      health ? "grpc.health.v1.Health/Check" : "Solve", absl::GetFlag(FLAGS_d),
      absl::GetFlag(FLAGS_samples), absl::GetFlag(FLAGS_batch), threads, connections, elapsed,
      latencies_us.size(), static_cast<double>(latencies_us.size()) / elapsed, pct(0.50), pct(0.90),
      pct(0.99), error_json.c_str());
  return errors.empty() ? 0 : 1;
}
