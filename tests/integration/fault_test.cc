// Fault tests against the real perturbd binary on loopback: a client that cancels mid-solve, a
// client process killed mid-call, a stream abandoned mid-solve and while queued, deadlines that
// expire while queued or are too short to start, a full admission queue, and SIGTERM with
// requests in flight and queued. Each prints the figure it measured ("fault: ...").
//
// Timing bounds are generous (CI runs on two shared cores, sometimes under sanitizers); the
// printed figures are the measurements.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cpp/perturbd_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "server/status_util.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_helpers.h"

namespace perturbd {
namespace {

using ::perturbd::client::PerturbdClient;
using ::perturbd::testing::BackgroundSolve;
using ::perturbd::testing::Metric;
using ::perturbd::testing::NewConnection;
using ::perturbd::testing::ProcessCpuSeconds;
using ::perturbd::testing::SamplesForSeconds;
using ::perturbd::testing::ServerProcess;
using ::perturbd::testing::SmallRequest;
using ::perturbd::testing::WaitForMetric;
using ::perturbd::testing::WideRequest;
using ::testing::HasSubstr;

constexpr char kInflight[] = "perturbd_inflight_requests";
constexpr char kQueued[] = "perturbd_queued_requests";

std::unique_ptr<ServerProcess> StartServer(const std::vector<std::string>& flags) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(flags);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// CPU the server burns over `window` (seconds).
double CpuOver(const ServerProcess& server, absl::Duration window) {
  const double before = ProcessCpuSeconds(server.pid());
  absl::SleepFor(window);
  return ProcessCpuSeconds(server.pid()) - before;
}

TEST(FaultTest, CancelledAndExpiredSolvesStopUsingTheCpu) {
  auto server = StartServer({"--drain_seconds=0", "--threads=1"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);

  // A client cancel, mid-solve.
  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(10)).has_value());
  const double busy = CpuOver(*server, absl::Milliseconds(300));
  const absl::Time cancelled_at = absl::Now();
  slow.Cancel();
  const std::optional<absl::Duration> freed =
      WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5), absl::Milliseconds(2));
  ASSERT_TRUE(freed.has_value());
  const absl::Duration cancel_latency = absl::Now() - cancelled_at;
  EXPECT_EQ(slow.Join().error_code(), grpc::StatusCode::CANCELLED);
  const double idle = CpuOver(*server, absl::Milliseconds(500));

  // A deadline, mid-solve.
  const absl::Time started = absl::Now();
  BackgroundSolve expiring(client->channel(), WideRequest(slow_samples), absl::Milliseconds(400));
  EXPECT_EQ(expiring.Join().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const std::optional<absl::Duration> expired =
      WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5), absl::Milliseconds(2));
  ASSERT_TRUE(expired.has_value());
  const absl::Duration expiry_latency = absl::Now() - (started + absl::Milliseconds(400));
  const double idle_after_expiry = CpuOver(*server, absl::Milliseconds(500));

  // The next request is served at once.
  const absl::Time next_at = absl::Now();
  ASSERT_TRUE(client->Solve(SmallRequest()).ok());
  const absl::Duration next = absl::Now() - next_at;

  std::printf(
      "fault: cancel mid-solve -> in-flight 0 after %.0f ms; deadline mid-solve -> in-flight 0 "
      "%.0f ms after the deadline; server CPU %.0f%% while solving, %.0f ms / 500 ms after the "
      "cancel, %.0f ms / 500 ms after the expiry; next request %.1f ms (argmax, d=512, "
      "M=%u)\n",
      Ms(cancel_latency), Ms(expiry_latency), 100.0 * busy / 0.3, 1e3 * idle,
      1e3 * idle_after_expiry, Ms(next), slow_samples);
  EXPECT_LT(cancel_latency, absl::Seconds(1));
  EXPECT_LT(expiry_latency, absl::Seconds(1));
  EXPECT_LT(idle, 0.1);
  EXPECT_LT(idle_after_expiry, 0.1);
  EXPECT_LT(next, absl::Seconds(2));
}

TEST(FaultTest, KilledClientProcessFreesItsRequestAndTheServerKeepsServing) {
  auto server = StartServer({"--drain_seconds=0", "--threads=1"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);
  std::vector<std::string> theta(512);
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = absl::StrCat(0.001 * (i % 97));
  const pid_t cli = testing::SpawnCommand(
      {testing::CliBinary(), "solve", absl::StrCat("--address=", server->address()),
       "--oracle=argmax", absl::StrCat("--theta=", absl::StrJoin(theta, ",")),
       absl::StrCat("--samples=", slow_samples), "--timeout=60"});
  ASSERT_GT(cli, 0);
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(20)).has_value());
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed_at = absl::Now();
  kill(cli, SIGKILL);
  int status = 0;
  waitpid(cli, &status, 0);
  const std::optional<absl::Duration> freed =
      WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5), absl::Milliseconds(2));
  ASSERT_TRUE(freed.has_value()) << "the killed client's request still holds its slot";
  const absl::Duration latency = absl::Now() - killed_at;
  EXPECT_TRUE(client->Solve(SmallRequest()).ok());
  std::printf("fault: client process SIGKILLed mid-solve -> in-flight 0 after %.0f ms\n",
              Ms(latency));
  EXPECT_LT(latency, absl::Seconds(2));
}

// Not a test of its own: the stream client that ClientProcessKilledMidStreamFreesItsSlot runs
// in a child process (this binary, re-executed) and kills. Skipped unless that test started it.
TEST(FaultTest, DISABLED_StreamClientProcess) {
  const char* address = std::getenv("PERTURBD_STREAM_CLIENT_ADDRESS");
  const char* samples = std::getenv("PERTURBD_STREAM_CLIENT_SAMPLES");
  if (address == nullptr || samples == nullptr) GTEST_SKIP() << "started by another test only";
  auto stub = v1::PerturbedOptimizer::NewStub(NewConnection(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto stream = stub->SolveStream(&context);
  v1::SolveResponse response;
  // One message answered, then a slow one, during which the parent kills this process.
  ASSERT_TRUE(stream->Write(SmallRequest()));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->Write(WideRequest(static_cast<uint32_t>(std::atol(samples)))));
  stream->Read(&response);
}

TEST(FaultTest, ClientProcessKilledMidStreamFreesItsSlot) {
  auto server = StartServer({"--drain_seconds=0", "--threads=1"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);
  const pid_t child = testing::SpawnCommand(
      {"/proc/self/exe", "--gtest_also_run_disabled_tests",
       "--gtest_filter=FaultTest.DISABLED_StreamClientProcess"},
      {absl::StrCat("PERTURBD_STREAM_CLIENT_ADDRESS=", server->address()),
       absl::StrCat("PERTURBD_STREAM_CLIENT_SAMPLES=", slow_samples)});
  ASSERT_GT(child, 0);
  // The stream's first message answered, then the second one in flight (in that order: in flight
  // alone could still be the first message, on a slow build).
  ASSERT_TRUE(WaitForMetric(*server,
                            R"(perturbd_requests_total{code="OK",method="SolveStream",oracle="argmax"})",
                            1.0, absl::Seconds(20))
                  .has_value());
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(20)).has_value());
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed_at = absl::Now();
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the stream client exited by itself: " << status;
  const std::optional<absl::Duration> freed =
      WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5), absl::Milliseconds(2));
  ASSERT_TRUE(freed.has_value()) << "the killed stream's message still holds its slot";
  const absl::Duration latency = absl::Now() - killed_at;
  const double idle = CpuOver(*server, absl::Milliseconds(500));
  EXPECT_TRUE(client->Solve(SmallRequest()).ok());
  std::printf(
      "fault: client process SIGKILLed mid-stream -> in-flight 0 after %.0f ms, server CPU "
      "%.0f ms / 500 ms afterwards\n",
      Ms(latency), 1e3 * idle);
  EXPECT_LT(latency, absl::Seconds(2));
  EXPECT_LT(idle, 0.1);
}

TEST(FaultTest, AbandonedStreamsFreeTheirSlotAndTheirQueuePlace) {
  auto server =
      StartServer({"--drain_seconds=0", "--threads=1", "--max_inflight=1", "--max_queue=4"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);

  // A stream whose message is being solved when the client goes away.
  absl::Duration solving_latency;
  {
    auto channel = NewConnection(server->address());
    auto stub = v1::PerturbedOptimizer::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto stream = stub->SolveStream(&context);
    ASSERT_TRUE(stream->Write(WideRequest(slow_samples)));
    ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(10)).has_value());
    const absl::Time gone_at = absl::Now();
    context.TryCancel();
    stream->Finish();
    ASSERT_TRUE(WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5), absl::Milliseconds(2))
                    .has_value());
    solving_latency = absl::Now() - gone_at;
  }

  // A stream whose message waits in the queue behind a unary call.
  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(10)).has_value());
  absl::Duration queued_latency;
  {
    auto channel = NewConnection(server->address());
    auto stub = v1::PerturbedOptimizer::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto stream = stub->SolveStream(&context);
    ASSERT_TRUE(stream->Write(SmallRequest()));
    ASSERT_TRUE(WaitForMetric(*server, kQueued, 1.0, absl::Seconds(10)).has_value());
    const absl::Time gone_at = absl::Now();
    context.TryCancel();
    stream->Finish();
    ASSERT_TRUE(
        WaitForMetric(*server, kQueued, 0.0, absl::Seconds(5), absl::Milliseconds(2)).has_value());
    queued_latency = absl::Now() - gone_at;
  }
  EXPECT_EQ(Metric(*server, kInflight), 1.0);  // the unary call still runs
  slow.Cancel();
  EXPECT_EQ(slow.Join().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5)).has_value());
  EXPECT_TRUE(client->Solve(SmallRequest()).ok());
  std::printf(
      "fault: stream abandoned mid-solve -> in-flight 0 after %.0f ms; abandoned while queued "
      "-> queue 0 after %.0f ms\n",
      Ms(solving_latency), Ms(queued_latency));
  EXPECT_LT(solving_latency, absl::Seconds(2));
  EXPECT_LT(queued_latency, absl::Seconds(2));
}

TEST(FaultTest, QueuedRequestsExpireOrAreCancelledWithoutRunningAndAFullQueueRefuses) {
  auto server =
      StartServer({"--drain_seconds=0", "--threads=1", "--max_inflight=1", "--max_queue=1"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t slow_samples = SamplesForSeconds(*client, 5.0);
  const double shapes_before = Metric(*server, "perturbd_request_samples_count");

  BackgroundSolve slow(client->channel(), WideRequest(slow_samples), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(10)).has_value());

  // Queued behind the slow request with a 500 ms deadline.
  const absl::Time queued_at = absl::Now();
  BackgroundSolve short_deadline(client->channel(), SmallRequest(), absl::Milliseconds(500));
  ASSERT_TRUE(WaitForMetric(*server, kQueued, 1.0, absl::Seconds(5)).has_value());

  // The queue (1) is full: one more is refused at once, naming the limit.
  absl::StatusOr<v1::SolveResponse> refused = client->Solve(SmallRequest());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("max_queue (1) requests already queued behind max_inflight (1)"));

  EXPECT_EQ(short_deadline.Join().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const std::optional<absl::Duration> dequeued =
      WaitForMetric(*server, kQueued, 0.0, absl::Seconds(3), absl::Milliseconds(2));
  ASSERT_TRUE(dequeued.has_value()) << "the expired request stayed queued";
  const absl::Duration expired_after = absl::Now() - queued_at;
  EXPECT_EQ(Metric(*server, kInflight), 1.0);

  // A queued request whose client cancels.
  BackgroundSolve cancelled(client->channel(), SmallRequest(), absl::Seconds(60));
  ASSERT_TRUE(WaitForMetric(*server, kQueued, 1.0, absl::Seconds(5)).has_value());
  cancelled.Cancel();
  EXPECT_EQ(cancelled.Join().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForMetric(*server, kQueued, 0.0, absl::Seconds(3)).has_value());

  slow.Cancel();
  EXPECT_EQ(slow.Join().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 0.0, absl::Seconds(5)).has_value());
  ASSERT_TRUE(client->Solve(SmallRequest()).ok());

  const std::string metrics = testing::Scrape(*server);
  auto value = [&metrics](const std::string& series) {
    return testing::MetricValue(metrics, series).value_or(0.0);
  };
  EXPECT_EQ(value(R"(perturbd_rejected_requests_total{reason="max_queue"})"), 1.0);
  // The expired request is DEADLINE_EXCEEDED when the server's deadline fired first, CANCELLED
  // when the client's own timer won the race (the server then sees a cancel); with the
  // cancelled queued request and the slow one, three in all.
  EXPECT_EQ(
      value(R"(perturbd_requests_total{code="DEADLINE_EXCEEDED",method="Solve",oracle="argmax"})") +
          value(R"(perturbd_requests_total{code="CANCELLED",method="Solve",oracle="argmax"})"),
      3.0);
  // Neither queued request was ever started: only the slow one and the last one were.
  EXPECT_EQ(value("perturbd_request_samples_count") - shapes_before, 2.0);
  std::printf(
      "fault: request with a 500 ms deadline queued behind a busy worker -> DEADLINE_EXCEEDED, "
      "out of the queue %.0f ms after it was sent, never started; full queue -> "
      "RESOURCE_EXHAUSTED naming max_queue\n",
      Ms(expired_after));
  EXPECT_LT(expired_after, absl::Milliseconds(500) + absl::Seconds(1));
}

TEST(FaultTest, DeadlineShorterThanTheFloorIsRefusedBeforeQueueing) {
  auto server = StartServer({"--drain_seconds=0", "--min_deadline_seconds=0.5"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::PerturbedOptimizer::NewStub(NewConnection(server->address()));
  // Warm the connection, so that the 200 ms below is not spent connecting.
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListSolversResponse list;
    ASSERT_TRUE(stub->ListSolvers(&context, v1::ListSolversRequest(), &list).ok());
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
  v1::SolveResponse response;
  const absl::Time sent_at = absl::Now();
  const grpc::Status status = stub->Solve(&context, SmallRequest(), &response);
  const absl::Duration answered = absl::Now() - sent_at;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("min_deadline"));
  EXPECT_LT(answered, absl::Milliseconds(150));  // refused, not timed out
  EXPECT_EQ(Metric(*server, R"(perturbd_rejected_requests_total{reason="deadline"})"), 1.0);
  EXPECT_EQ(Metric(*server, "perturbd_request_samples_count"), 0.0);
  // A deadline above the floor is served.
  grpc::ClientContext ok_context;
  ok_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  EXPECT_TRUE(stub->Solve(&ok_context, SmallRequest(), &response).ok());
  std::printf("fault: deadline under --min_deadline refused with DEADLINE_EXCEEDED in %.1f ms\n",
              Ms(answered));
}

TEST(FaultTest, SigtermWithRequestsInFlightAndQueuedLosesNone) {
  auto server = StartServer({"--threads=1", "--max_inflight=1", "--max_queue=16",
                             "--drain_seconds=1", "--shutdown_grace_seconds=30"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  const uint32_t samples = SamplesForSeconds(*client, 0.3);
  // One long call first, seen in flight before the others are sent: the five behind it then
  // stay queued (up to 2.4 s, within max_work) however slowly they arrive (under TSan six
  // 0.3 s calls on fresh connections could finish one another before the last was queued).
  const uint32_t long_samples = std::min<uint32_t>(samples * 8, 1'900'000);

  std::vector<std::unique_ptr<BackgroundSolve>> calls;
  calls.push_back(std::make_unique<BackgroundSolve>(NewConnection(server->address()),
                                                    WideRequest(long_samples), absl::Seconds(60)));
  ASSERT_TRUE(WaitForMetric(*server, kInflight, 1.0, absl::Seconds(10)).has_value());
  for (int k = 0; k < 5; ++k) {
    calls.push_back(std::make_unique<BackgroundSolve>(client->channel(), WideRequest(samples),
                                                      absl::Seconds(60)));
  }
  ASSERT_TRUE(WaitForMetric(*server, kQueued, 5.0, absl::Seconds(10)).has_value());
  const absl::Time signalled_at = absl::Now();
  server->Signal(SIGTERM);
  // During the drain new calls are still accepted (and queued).
  absl::SleepFor(absl::Milliseconds(200));
  for (int k = 0; k < 2; ++k) {
    calls.push_back(std::make_unique<BackgroundSolve>(client->channel(), WideRequest(samples),
                                                      absl::Seconds(60)));
  }
  // After the drain, a new call is refused with UNAVAILABLE (before any work).
  absl::SleepFor(absl::Milliseconds(1300) - (absl::Now() - signalled_at));
  grpc::Status late_status;
  {
    auto stub = v1::PerturbedOptimizer::NewStub(NewConnection(server->address()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    v1::SolveResponse response;
    late_status = stub->Solve(&context, SmallRequest(), &response);
  }

  std::map<std::string, int> codes;
  for (auto& call : calls) {
    codes[std::string(GrpcCodeName(call->Join().error_code()))]++;
  }
  const std::optional<int> exit_status = server->WaitForExit(absl::Seconds(30));
  EXPECT_EQ(exit_status, std::optional<int>(0)) << server->Output();
  // Each call either completed or was refused with UNAVAILABLE before work started.
  int lost = 0;
  for (const auto& [code, count] : codes) {
    if (code != "OK" && code != "UNAVAILABLE") lost += count;
  }
  EXPECT_EQ(lost, 0) << "codes: " << absl::StrJoin(codes, ", ", absl::PairFormatter("="));
  EXPECT_EQ(codes["OK"], 8);
  EXPECT_EQ(late_status.error_code(), grpc::StatusCode::UNAVAILABLE) << late_status.error_message();
  std::printf(
      "fault: SIGTERM with 1 in flight + 5 queued (+2 sent during the drain): %d completed, %d "
      "UNAVAILABLE, %d lost; call after the drain: %s; exit status %d after %.1f s\n",
      codes["OK"], codes["UNAVAILABLE"], lost,
      std::string(GrpcCodeName(late_status.error_code())).c_str(), exit_status.value_or(-1),
      absl::ToDoubleSeconds(absl::Now() - signalled_at));
}

// COIN-OR Clp asserts (abort) on objective coefficients of magnitude ≥ 1e25: a request whose θ
// (or θ + εZ) reaches that must be refused, not take the whole server down. Found by
// request_fuzzer (tests/fuzz/corpus/crash-linear-program-objective-7e29-clp-assert).
TEST(FaultTest, HugeLinearProgramObjectiveDoesNotCrashTheServer) {
  auto server = StartServer({"--drain_seconds=0"});
  ASSERT_NE(server, nullptr);
  auto client = PerturbdClient::Connect(server->address());
  for (const double magnitude : {7e29, 1e300, -1e300}) {
    SCOPED_TRACE(magnitude);
    v1::SolveRequest request;
    v1::LinearProgramProblem* lp = request.mutable_problem()->mutable_linear_program();
    lp->set_num_variables(3);
    for (uint32_t j = 0; j < 3; ++j) {
      lp->add_row_index(0);
      lp->add_column_index(j);
      lp->add_coefficient(1.0);
      lp->add_variable_upper(1.0);
    }
    lp->add_row_lower(0.0);
    lp->add_row_upper(2.0);
    *request.mutable_theta() = client::MakeTensor({1.0, magnitude, 0.5}, {3});
    *request.mutable_noise() = client::MakeNoise(0.5, 4, 1);
    absl::StatusOr<v1::SolveResponse> response = client->Solve(request);
    EXPECT_THAT(response.status().code(), ::testing::AnyOf(absl::StatusCode::kInvalidArgument,
                                                           absl::StatusCode::kFailedPrecondition))
        << response.status();
    ASSERT_FALSE(server->WaitForExit(absl::Milliseconds(200)).has_value())
        << "the server died: " << server->Output();
    EXPECT_TRUE(client->Solve(SmallRequest()).ok());
  }
}

}  // namespace
}  // namespace perturbd
