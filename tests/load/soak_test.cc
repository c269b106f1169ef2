// A bounded load and soak test of the real perturbd binary on loopback.
//
// 12 client threads, each on its own TCP connection, send a weighted mix for
// PERTURBD_SOAK_SECONDS (default 60) seconds, and at most kMaxCallsPerClient calls each: unary
// Solve and Backward over every oracle and several sizes, SolveStream sessions, requests that
// must be refused (NaN θ → INVALID_ARGUMENT, M = 2^31 → RESOURCE_EXHAUSTED), requests with a
// deadline too short to finish and requests the client cancels mid-call. The server runs with
// 2 workers, max_inflight 8 and max_queue 64, so the admission queue is in use throughout.
//
// It prints the calls served, the count of every status code, the codes that were not among the
// ones each kind of request may get (must be none), latency percentiles of the successful unary
// calls, and the server's resident memory (VmRSS) after a warm-up, at its peak and at the end;
// growth from warm-up to end must stay under kMaxRssGrowthBytes.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cpp/perturbd_client.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "server/status_util.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_helpers.h"

namespace perturbd {
namespace {

using ::perturbd::testing::NewConnection;
using ::perturbd::testing::ResidentBytes;
using ::perturbd::testing::ServerProcess;
using C = grpc::StatusCode;

constexpr int kClients = 12;
constexpr int64_t kMaxCallsPerClient = 200000;
constexpr int64_t kMaxRssGrowthBytes = int64_t{16} << 20;
constexpr absl::Duration kWarmUp = absl::Seconds(5);

enum class Rpc { kSolve, kBackward, kStream };

struct Kind {
  std::string name;
  double weight;
  Rpc rpc;
  std::set<C> expected;
  absl::Duration deadline = absl::Seconds(60);
  absl::Duration cancel_after = absl::ZeroDuration();  // > 0: the client cancels mid-call
  v1::SolveRequest solve;                              // Solve and each stream message
  v1::BackwardRequest backward;
};

std::vector<double> Values(int64_t n, uint64_t seed, bool positive) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::sin(0.37 * static_cast<double>(i) + static_cast<double>(seed % 17));
    v[static_cast<size_t>(i)] = positive ? 2.0 + s : s;
  }
  return v;
}

v1::SolveRequest Solve(const v1::Problem& problem, int64_t batch, int64_t d, uint32_t m,
                       bool positive = false, v1::DType dtype = v1::FLOAT64) {
  v1::SolveRequest r;
  *r.mutable_problem() = problem;
  *r.mutable_theta() = client::MakeTensor(Values(batch * d, d, positive), {batch, d}, dtype);
  *r.mutable_noise() = client::MakeNoise(positive ? 0.3 : 0.7, m, 1);
  if (positive) r.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
  return r;
}

std::vector<Kind> Mix() {
  std::vector<Kind> kinds;
  const std::set<C> ok = {C::OK};
  // Appends a kind whose requests the caller fills in.
  auto add = [&kinds](std::string name, double weight, Rpc rpc, std::set<C> expected) {
    Kind kind;
    kind.name = std::move(name);
    kind.weight = weight;
    kind.rpc = rpc;
    kind.expected = std::move(expected);
    kinds.push_back(std::move(kind));
  };
  add("argmax_b8_f32", 30, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::ArgmaxProblem(), 8, 32, 64, false, v1::FLOAT32);
  add("top_k_jacobian", 10, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::TopKProblem(3), 4, 64, 32);
  kinds.back().solve.mutable_outputs()->set_jacobian(true);
  add("ranking_backward", 10, Rpc::kBackward, ok);
  {
    v1::BackwardRequest b;
    *b.mutable_problem() = client::RankingProblem();
    *b.mutable_theta() = client::MakeTensor(Values(64, 3, false), {4, 16});
    *b.mutable_noise() = client::MakeNoise(0.5, 32, 2);
    *b.mutable_cotangent() = client::MakeTensor(Values(64, 5, false), {4, 16});
    kinds.back().backward = b;
  }
  add("grid_12x12", 8, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::GridShortestPathProblem(12, 12), 2, 144, 16, true);
  add("graph_dag", 5, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::GraphShortestPathProblem(
                                 5, {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {1, 2}, {3, 4}, {2, 4}}, 0, 4),
                             4, 7, 32, true);
  add("assignment_6x6", 5, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::AssignmentProblem(6, 6), 2, 36, 16);
  add("spanning_tree", 5, Rpc::kSolve, ok);
  kinds.back().solve = Solve(
      client::SpanningTreeProblem(5, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 0}, {0, 2}, {1, 3}}), 4,
      7, 32);
  add("knapsack_20", 5, Rpc::kSolve, ok);
  {
    std::vector<int64_t> weights;
    for (int i = 0; i < 20; ++i) weights.push_back(1 + (7 * i) % 11);
    kinds.back().solve = Solve(client::KnapsackProblem(weights, 50), 2, 20, 16);
  }
  add("linear_program", 3, Rpc::kSolve, ok);
  {
    v1::Problem lp;
    v1::LinearProgramProblem* p = lp.mutable_linear_program();
    p->set_num_variables(4);
    for (uint32_t j = 0; j < 4; ++j) {
      p->add_row_index(0);
      p->add_column_index(j);
      p->add_coefficient(1.0 + j);
      p->add_variable_upper(1.0);
    }
    p->add_row_lower(-std::numeric_limits<double>::infinity());
    p->add_row_upper(3.0);
    kinds.back().solve = Solve(lp, 2, 4, 8);
  }
  add("stream_10_messages", 6, Rpc::kStream, ok);
  kinds.back().solve = Solve(client::ArgmaxProblem(), 4, 16, 32);
  add("large_16x512_m1000", 1, Rpc::kSolve, ok);
  kinds.back().solve = Solve(client::ArgmaxProblem(), 16, 512, 1000);
  add("invalid_nan", 4, Rpc::kSolve, {C::INVALID_ARGUMENT});
  kinds.back().solve = Solve(client::ArgmaxProblem(), 2, 8, 8);
  {
    std::vector<double> theta = Values(16, 1, false);
    theta[5] = std::nan("");
    *kinds.back().solve.mutable_theta() = client::MakeTensor(theta, {2, 8});
  }
  add("over_max_work", 2, Rpc::kSolve, {C::RESOURCE_EXHAUSTED});
  kinds.back().solve = Solve(client::ArgmaxProblem(), 2, 8, 1u << 31);
  add("deadline_5ms", 3, Rpc::kSolve, {C::OK, C::DEADLINE_EXCEEDED});
  kinds.back().solve = Solve(client::ArgmaxProblem(), 64, 512, 64);
  kinds.back().deadline = absl::Milliseconds(5);
  add("cancelled_after_2ms", 3, Rpc::kSolve, {C::OK, C::CANCELLED});
  kinds.back().solve = Solve(client::ArgmaxProblem(), 64, 512, 64);
  kinds.back().cancel_after = absl::Milliseconds(2);
  return kinds;
}

// Everything the clients saw, merged under a lock at the end of each call.
struct Tally {
  absl::Mutex mu;
  std::map<std::string, int64_t> codes ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> unexpected ABSL_GUARDED_BY(mu);  // "kind:CODE message"
  std::vector<double> latencies_ms ABSL_GUARDED_BY(mu);           // OK unary calls
  int64_t calls ABSL_GUARDED_BY(mu) = 0;

  void Record(const Kind& kind, const grpc::Status& status, absl::Duration latency) {
    const std::string code(GrpcCodeName(status.error_code()));
    absl::MutexLock lock(&mu);
    ++calls;
    ++codes[code];
    if (!kind.expected.count(status.error_code())) {
      ++unexpected[absl::StrCat(kind.name, ":", code, " ", status.error_message().substr(0, 120))];
    }
    if (status.ok() && kind.rpc != Rpc::kStream) {
      latencies_ms.push_back(absl::ToDoubleMilliseconds(latency));
    }
  }
};

template <typename Response, typename Request>
grpc::Status UnaryCall(v1::PerturbedOptimizer::Stub& stub, const Kind& kind, const Request& request,
                       void (v1::PerturbedOptimizer::Stub::async::*method)(
                           grpc::ClientContext*, const Request*, Response*,
                           std::function<void(grpc::Status)>)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kind.deadline));
  Response response;
  grpc::Status status;
  absl::Notification done;
  (stub.async()->*method)(&context, &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  if (kind.cancel_after > absl::ZeroDuration() &&
      !done.WaitForNotificationWithTimeout(kind.cancel_after)) {
    context.TryCancel();
  }
  if (!done.WaitForNotificationWithTimeout(kind.deadline + absl::Seconds(30))) {
    context.TryCancel();
    done.WaitForNotification();
  }
  return status;
}

grpc::Status StreamSession(v1::PerturbedOptimizer::Stub& stub, const Kind& kind, int messages) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kind.deadline));
  auto stream = stub.SolveStream(&context);
  v1::SolveResponse response;
  for (int k = 0; k < messages; ++k) {
    v1::SolveRequest request = kind.solve;
    request.set_request_id(absl::StrCat(k));
    if (!stream->Write(request) || !stream->Read(&response)) break;
    if (response.request_id() != request.request_id()) {
      context.TryCancel();
      stream->Finish();
      return grpc::Status(grpc::StatusCode::INTERNAL, "stream answered out of order");
    }
  }
  stream->WritesDone();
  return stream->Finish();
}

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t k = std::min(sorted.size() - 1, static_cast<size_t>(p * (sorted.size() - 1) + 0.5));
  return sorted[k];
}

double Mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

TEST(SoakTest, MixedLoadOverManyConnectionsServesEverythingAndHoldsMemory) {
  double seconds = 60;
  if (const char* env = std::getenv("PERTURBD_SOAK_SECONDS"); env != nullptr) {
    ASSERT_TRUE(absl::SimpleAtod(env, &seconds)) << env;
  }
  absl::StatusOr<std::unique_ptr<ServerProcess>> started = ServerProcess::Start(
      {"--threads=2", "--max_inflight=8", "--max_queue=64", "--drain_seconds=0"});
  ASSERT_TRUE(started.ok()) << started.status();
  ServerProcess& server = **started;
  const std::vector<Kind> kinds = Mix();
  std::vector<double> weights;
  for (const Kind& k : kinds) weights.push_back(k.weight);

  Tally tally;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  const int64_t rss_start = ResidentBytes(server.pid());
  std::atomic<int64_t> rss_warm{-1};
  std::atomic<int64_t> rss_peak{rss_start};
  std::atomic<bool> stop{false};
  std::thread monitor([&] {
    while (!stop.load()) {
      const int64_t rss = ResidentBytes(server.pid());
      rss_peak.store(std::max(rss_peak.load(), rss));
      if (rss_warm.load() < 0 && absl::Now() - start >= kWarmUp) rss_warm.store(rss);
      absl::SleepFor(absl::Milliseconds(250));
    }
  });

  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::PerturbedOptimizer::NewStub(NewConnection(server.address()));
      std::mt19937_64 rng(1234 + c);
      std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
      for (int64_t n = 0; n < kMaxCallsPerClient && absl::Now() < end; ++n) {
        const Kind& kind = kinds[pick(rng)];
        const absl::Time t0 = absl::Now();
        grpc::Status status;
        switch (kind.rpc) {
          case Rpc::kSolve: {
            v1::SolveRequest request = kind.solve;
            request.mutable_noise()->set_seed(rng());
            status = UnaryCall<v1::SolveResponse>(*stub, kind, request,
                                                  &v1::PerturbedOptimizer::Stub::async::Solve);
            break;
          }
          case Rpc::kBackward: {
            v1::BackwardRequest request = kind.backward;
            request.mutable_noise()->set_seed(rng());
            status = UnaryCall<v1::BackwardResponse>(
                *stub, kind, request, &v1::PerturbedOptimizer::Stub::async::Backward);
            break;
          }
          case Rpc::kStream:
            status = StreamSession(*stub, kind, 10);
            break;
        }
        tally.Record(kind, status, absl::Now() - t0);
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  // Let cancelled work drain, then read the end state.
  const bool drained =
      testing::WaitForMetric(server, "perturbd_inflight_requests", 0.0, absl::Seconds(30))
          .has_value() &&
      testing::WaitForMetric(server, "perturbd_queued_requests", 0.0, absl::Seconds(30))
          .has_value();
  absl::SleepFor(absl::Seconds(1));
  const int64_t rss_end = ResidentBytes(server.pid());
  stop.store(true);
  monitor.join();
  const int64_t warm = rss_warm.load() > 0 ? rss_warm.load() : rss_start;

  absl::MutexLock lock(&tally.mu);
  std::vector<double> sorted = tally.latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  int64_t unexpected = 0;
  for (const auto& [what, count] : tally.unexpected) unexpected += count;
  std::printf(
      "soak: %.1f s, %d connections, %lld calls (%.0f/s; stream sessions of 10 messages count "
      "once)\n"
      "soak: codes: %s\n"
      "soak: unexpected codes: %lld%s%s\n"
      "soak: latency of OK unary calls (ms): p50 %.2f, p90 %.2f, p99 %.2f, max %.1f (n=%zu)\n"
      "soak: server VmRSS MiB: start %.1f, after %.0f s warm-up %.1f, peak %.1f, end %.1f; "
      "growth warm-up->end %.1f MiB (bound %.0f MiB)\n",
      elapsed, kClients, static_cast<long long>(tally.calls), tally.calls / elapsed,
      absl::StrJoin(tally.codes, ", ", absl::PairFormatter("=")).c_str(),
      static_cast<long long>(unexpected), unexpected > 0 ? ": " : "",
      absl::StrJoin(tally.unexpected, "; ", absl::PairFormatter(" x")).c_str(),
      Percentile(sorted, 0.5), Percentile(sorted, 0.9), Percentile(sorted, 0.99),
      sorted.empty() ? 0.0 : sorted.back(), sorted.size(), Mib(rss_start),
      absl::ToDoubleSeconds(kWarmUp), Mib(warm), Mib(rss_peak.load()), Mib(rss_end),
      Mib(rss_end - warm), Mib(kMaxRssGrowthBytes));
  std::fflush(stdout);

  EXPECT_TRUE(drained) << "requests still in flight or queued after the load";
  EXPECT_EQ(unexpected, 0);
  EXPECT_GT(tally.codes["OK"], 100);
  EXPECT_LT(rss_end - warm, kMaxRssGrowthBytes);
  EXPECT_GT(rss_end, 0);
}

}  // namespace
}  // namespace perturbd
