// perturbd: the gRPC server (DESIGN §5–§6).
//
// Lifecycle:
//   start    bind --listen (port 0 picks a free port) and print
//            "perturbd listening on HOST:PORT"; metrics on --metrics_listen
//            ("perturbd metrics on HOST:PORT/metrics"). Health: "" (liveness) and
//            "perturbd.v1.PerturbedOptimizer" (readiness) SERVING. Reflection v1alpha.
//   SIGTERM  readiness NOT_SERVING at once, liveness stays SERVING; keep serving for
//   /SIGINT  --drain_seconds; then new RPCs get UNAVAILABLE and in-flight work has
//            --shutdown_grace_seconds to finish (then it is cancelled); exit 0.
//            A second signal exits at once (status 1).
// Signals are taken by a sigwait thread (they are blocked in every other thread), so no
// work happens in a signal handler.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/metrics.h"
#include "server/service.h"
#include "solvers/perturbed/executor.h"

#ifndef PERTURBD_VERSION
#define PERTURBD_VERSION "unknown"
#endif

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "gRPC listen address host:port (port 0 picks a free port; the bound address is "
          "printed as \"perturbd listening on HOST:PORT\")");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9464",
          "Prometheus /metrics listen address host:port (port 0 picks a free port); empty "
          "disables the metrics endpoint");
ABSL_FLAG(int32_t, threads, 0, "worker threads for the solves; 0 = one per hardware thread");
ABSL_FLAG(uint64_t, max_message_bytes, uint64_t{256} << 20,
          "max gRPC message size in bytes, both directions (capped at 2^31-1)");
ABSL_FLAG(uint64_t, max_work, 1'000'000'000,
          "max work B*M*d per request; larger requests get RESOURCE_EXHAUSTED");
ABSL_FLAG(uint64_t, max_response_values, uint64_t{1} << 25,
          "max values in one response (B*d*d for a Jacobian, B*M*d for samples, plus the "
          "rest); larger requests get RESOURCE_EXHAUSTED");
ABSL_FLAG(uint32_t, max_inflight, 256,
          "max requests being solved at once (unary calls and stream messages); more get "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(double, drain_seconds, 5.0,
          "after SIGTERM/SIGINT: seconds to keep serving with readiness NOT_SERVING, so load "
          "balancers stop sending, before new RPCs are refused");
ABSL_FLAG(double, shutdown_grace_seconds, 30.0,
          "after the drain: seconds in-flight requests get to finish before they are cancelled");

namespace perturbd {
namespace {

// "0.0.0.0:50051" → "0.0.0.0", "[::]:0" → "[::]".
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// Shared with the detached signal thread, which outlives Run().
sigset_t g_signals;
absl::Notification g_first_signal;
std::atomic<int> g_signal_number{0};

int Run() {
  // Block the shutdown signals before any thread exists, so that every thread inherits the
  // mask and only the sigwait thread below receives them.
  sigemptyset(&g_signals);
  sigaddset(&g_signals, SIGTERM);
  sigaddset(&g_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &g_signals, nullptr);
  std::thread([] {
    int sig = 0;
    sigwait(&g_signals, &sig);
    g_signal_number.store(sig);
    g_first_signal.Notify();
    sigwait(&g_signals, &sig);
    std::fprintf(stderr, "perturbd: second signal (%d), exiting now\n", sig);
    std::fflush(stderr);
    std::_Exit(1);
  }).detach();

  const uint64_t max_message_bytes =
      std::min<uint64_t>(absl::GetFlag(FLAGS_max_message_bytes), INT_MAX);
  ServiceOptions options;
  options.limits.max_work = absl::GetFlag(FLAGS_max_work);
  options.limits.max_response_values = absl::GetFlag(FLAGS_max_response_values);
  options.limits.max_message_bytes = max_message_bytes;
  options.max_inflight = absl::GetFlag(FLAGS_max_inflight);
  options.version = PERTURBD_VERSION;

  ServerMetrics metrics(PERTURBD_VERSION);
  std::unique_ptr<prometheus::Exposer> exposer;
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen, /*num_threads=*/2);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "perturbd: cannot serve metrics on %s: %s\n", metrics_listen.c_str(),
                   e.what());
      return 1;
    }
    exposer->RegisterCollectable(metrics.registry());
  }

  auto executor = std::make_unique<Executor>(absl::GetFlag(FLAGS_threads));
  PerturbedOptimizerService service(*executor, metrics, options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  // Keep-alive, set deliberately (training jobs hold one channel for hours): clients may ping
  // every ≥ 10 s, also between calls (the Python client's default is 30 s), without being
  // sent GOAWAY "too_many_pings"; the server pings an idle connection every 2 minutes and
  // drops it when 20 s pass without an answer, so dead peers do not pin streams.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 120000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "perturbd: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(kServiceName, true);

  std::printf("perturbd %s: %d worker threads\n", PERTURBD_VERSION, executor->num_threads());
  if (exposer) {
    const std::vector<int> ports = exposer->GetListeningPorts();
    std::printf("perturbd metrics on %s:%d/metrics\n", HostOf(metrics_listen).c_str(),
                ports.empty() ? 0 : ports.front());
  }
  std::printf("perturbd listening on %s:%d\n", HostOf(listen).c_str(), port);
  std::fflush(stdout);

  g_first_signal.WaitForNotification();
  const double drain = absl::GetFlag(FLAGS_drain_seconds);
  const double grace = absl::GetFlag(FLAGS_shutdown_grace_seconds);
  health->SetServingStatus(kServiceName, false);
  std::printf("perturbd: signal %d, readiness NOT_SERVING; draining for %gs\n",
              g_signal_number.load(), drain);
  std::fflush(stdout);
  absl::SleepFor(absl::Seconds(drain));

  std::printf("perturbd: shutting down; %lld requests in flight, %gs grace\n",
              static_cast<long long>(service.inflight()), grace);
  std::fflush(stdout);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::microseconds(static_cast<int64_t>(grace * 1e6)));
  server->Wait();
  executor.reset();  // joins the workers; every job has finished
  std::printf("perturbd: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace perturbd

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/main.cc");
  };
  usage.version_string = [] { return std::string("perturbd " PERTURBD_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "differentiable perturbed optimizers (Berthet et al. 2020) over gRPC.\n"
      "Serves perturbd.v1.PerturbedOptimizer, grpc.health.v1.Health and server reflection.\n"
      "Usage: perturbd [--listen=HOST:PORT] [--metrics_listen=HOST:PORT] [--threads=N] ...");
  absl::ParseCommandLine(argc, argv);
  return perturbd::Run();
}
