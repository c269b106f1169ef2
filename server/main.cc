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
//
// Security: --tls_cert/--tls_key serve TLS, --tls_client_ca also requires and verifies client
// certificates (mutual TLS); --auth_token_file requires `authorization: Bearer <token>` on
// perturbd.v1 calls (health stays open). The files are read once, at startup. No request field
// is a path: nothing a client sends makes the server open a file. docs/reliability.md lists
// the promises and the connection settings below.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/backend_router.h"
#include "server/bearer_token_auth.h"
#include "server/metrics.h"
#include "server/service.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/noise_select.h"

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
          "max requests being solved at once (unary calls and stream messages); more wait in "
          "the admission queue");
ABSL_FLAG(uint32_t, max_queue, 256,
          "max requests waiting (FIFO) for one of the max_inflight slots; more get "
          "RESOURCE_EXHAUSTED at once. 0: refuse every request beyond max_inflight");
ABSL_FLAG(double, min_deadline_seconds, 0.001,
          "a request arriving with less time than this before its deadline gets "
          "DEADLINE_EXCEEDED at once, without queueing or solving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key, the gRPC port serves TLS only");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mutual TLS); needs "
          "--tls_cert and --tls_key");
ABSL_FLAG(std::string, auth_token_file, "",
          "file of bearer tokens (one per line, 16-512 visible ASCII characters, '#' comments); "
          "when set, perturbd.v1 calls need the metadata 'authorization: Bearer <token>' "
          "(health and reflection stay open). Read once at startup");
ABSL_FLAG(uint32_t, max_concurrent_streams, 100,
          "max concurrent calls (HTTP/2 streams) per client connection");
ABSL_FLAG(double, max_connection_idle_seconds, 1800,
          "close (GOAWAY) a connection without calls for this long; clients reconnect on their "
          "next call. 0 = never");
ABSL_FLAG(double, max_connection_age_seconds, 0,
          "close (GOAWAY) every connection after this long, so that L4 load balancers "
          "rebalance; 0 = never (the default: SolveStream streams live for a training run)");
ABSL_FLAG(double, max_connection_age_grace_seconds, 60,
          "with --max_connection_age_seconds: time calls get to finish after the GOAWAY");
ABSL_FLAG(double, drain_seconds, 5.0,
          "after SIGTERM/SIGINT: seconds to keep serving with readiness NOT_SERVING, so load "
          "balancers stop sending, before new RPCs are refused");
ABSL_FLAG(double, shutdown_grace_seconds, 30.0,
          "after the drain: seconds in-flight requests get to finish before they are cancelled");
ABSL_FLAG(std::string, gpu, "auto",
          "GPU backend (docs/gpu.md): auto = use a CUDA device when one is usable, off = never, "
          "required = refuse to start without one");
ABSL_FLAG(int32_t, gpu_device, 0, "CUDA device ordinal of the GPU backend");
ABSL_FLAG(int32_t, gpu_streams, 4,
          "GPU requests in flight at once (one CUDA stream, device arena and thread each)");
ABSL_FLAG(uint64_t, gpu_min_work, uint64_t{1} << 16,
          "backend AUTO sends a request to the GPU from this much work B*M*d on (below it the "
          "CPU answers sooner)");

ABSL_FLAG(uint32_t, malloc_retain_mb, 256,
          "MiB of freed memory each glibc malloc arena keeps for the next request instead of "
          "returning it to the kernel (M_TRIM_THRESHOLD; buffers up to 32 MiB then come from "
          "the arenas, not mmap). Re-faulting a request's buffers page by page cost a third of "
          "a 64x1000 argmax request. 0 = glibc's defaults");

namespace perturbd {
namespace {

// glibc hands allocations over its mmap threshold (128 KiB at first) straight to mmap and
// returns freed arena tops to the kernel (madvise) once they pass the trim threshold, so every
// request of a few hundred KiB of θ, outputs and response bytes paid a page fault per 4 KiB
// touched. Keeping that memory in the arenas makes a repeated request reuse warm pages. The
// memory a request needs is unchanged; the process holds on to its high-water mark.
void TuneMalloc(uint32_t retain_mb) {
#if defined(__GLIBC__)
  if (retain_mb == 0) return;
  constexpr int kMmapThreshold = 32 << 20;  // glibc's maximum on 64-bit (HEAP_MAX_SIZE / 2)
  const int64_t retain = std::min<int64_t>(int64_t{retain_mb} << 20, INT_MAX);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(retain));
#else
  (void)retain_mb;
#endif
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (contents.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " is empty"));
  }
  return contents.str();
}

// Plaintext, TLS, or mutual TLS, from the --tls_* flags.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(std::string* mode) {
  const std::string cert_path = absl::GetFlag(FLAGS_tls_cert);
  const std::string key_path = absl::GetFlag(FLAGS_tls_key);
  const std::string ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert_path.empty() && key_path.empty() && ca_path.empty()) {
    *mode = "plaintext";
    return grpc::InsecureServerCredentials();
  }
  if (cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (and --tls_client_ca needs both)");
  }
  absl::StatusOr<std::string> cert = ReadFile("tls_cert", cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile("tls_key", key_path);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  *mode = "TLS";
  if (!ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("tls_client_ca", ca_path);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    *mode = "mutual TLS (client certificates required)";
  }
  return grpc::SslServerCredentials(options);
}

int Milliseconds(double seconds) {
  return static_cast<int>(std::clamp(seconds * 1e3, 0.0, static_cast<double>(INT_MAX)));
}

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
  TuneMalloc(absl::GetFlag(FLAGS_malloc_retain_mb));
#ifdef NDEBUG
  // Debian's Abseil is built with Mutex deadlock detection on: every lock and every destroyed
  // Mutex updates a process-wide lock graph under one global lock — 2–3 % of the server's CPU
  // under small-request load (perf: GraphCycles::GetId, RemoveNode). Release builds serve
  // without it; debug builds keep it (and TSan checks lock order in the sanitizer runs).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // The argmax / top-k forward pass's noise bounds, before the first request needs them.
  NoiseSelector::PrepareBounds();
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
  options.max_inflight = std::max<uint32_t>(1, absl::GetFlag(FLAGS_max_inflight));
  options.max_queue = absl::GetFlag(FLAGS_max_queue);
  options.min_deadline = absl::Seconds(std::max(0.0, absl::GetFlag(FLAGS_min_deadline_seconds)));
  options.version = PERTURBD_VERSION;
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    absl::StatusOr<BearerTokenAuth> auth = BearerTokenAuth::FromFile(path);
    if (!auth.ok()) {
      std::fprintf(stderr, "perturbd: %s\n", std::string(auth.status().message()).c_str());
      return 1;
    }
    options.auth = std::make_shared<const BearerTokenAuth>(*std::move(auth));
  }
  std::string transport;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(&transport);
  if (!credentials.ok()) {
    std::fprintf(stderr, "perturbd: %s\n", std::string(credentials.status().message()).c_str());
    return 1;
  }

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
  absl::StatusOr<GpuMode> gpu_mode = ParseGpuMode(absl::GetFlag(FLAGS_gpu));
  if (!gpu_mode.ok()) {
    std::fprintf(stderr, "perturbd: %s\n", std::string(gpu_mode.status().message()).c_str());
    return 1;
  }
  BackendOptions backend_options;
  backend_options.gpu = *gpu_mode;
  backend_options.gpu_device = absl::GetFlag(FLAGS_gpu_device);
  backend_options.gpu_streams = std::max(1, absl::GetFlag(FLAGS_gpu_streams));
  backend_options.gpu_min_work = absl::GetFlag(FLAGS_gpu_min_work);
  absl::StatusOr<std::unique_ptr<BackendRouter>> backends =
      BackendRouter::Create(*executor, backend_options);
  if (!backends.ok()) {
    std::fprintf(stderr, "perturbd: %s\n", std::string(backends.status().message()).c_str());
    return 1;
  }
  options.backends = std::move(backends).value();
  PerturbedOptimizerService service(*executor, metrics, options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, *credentials, &port);
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
  // Connection limits (docs/reliability.md): a bounded number of concurrent calls per
  // connection, so that one client cannot hold every in-flight and queue slot through a single
  // connection's flood of streams; idle connections closed after a while (clients reconnect
  // transparently); no maximum age unless asked, since a SolveStream lives for a training run.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(std::clamp<uint32_t>(
                                 absl::GetFlag(FLAGS_max_concurrent_streams), 1, INT_MAX)));
  if (const double idle = absl::GetFlag(FLAGS_max_connection_idle_seconds); idle > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Milliseconds(idle));
  }
  if (const double age = absl::GetFlag(FLAGS_max_connection_age_seconds); age > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Milliseconds(age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               Milliseconds(absl::GetFlag(FLAGS_max_connection_age_grace_seconds)));
  }
  // No SO_REUSEPORT: gRPC sets it by default on Linux, which lets a second server (a stale
  // instance, a mistaken deployment) bind the same port and silently take half of the
  // connections. Without it a clash fails loudly at startup ("cannot listen", status 1).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "perturbd: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(kServiceName, true);

  std::printf("perturbd %s: %d worker threads, max_inflight %u, max_queue %u, %s%s\n",
              PERTURBD_VERSION, executor->num_threads(), options.max_inflight, options.max_queue,
              transport.c_str(), options.auth != nullptr ? ", bearer token required" : "");
  if (exposer) {
    const std::vector<int> ports = exposer->GetListeningPorts();
    std::printf("perturbd metrics on %s:%d/metrics\n", HostOf(metrics_listen).c_str(),
                ports.empty() ? 0 : ports.front());
  }
  if (options.backends->has_gpu()) {
    std::printf("perturbd GPU backend: %s, %d streams, AUTO from B*M*d >= %llu\n",
                options.backends->devices().empty() ? "?"
                                                    : options.backends->devices().front().c_str(),
                backend_options.gpu_streams,
                static_cast<unsigned long long>(backend_options.gpu_min_work));
  } else {
    std::printf("perturbd GPU backend: none (%s)\n",
                *gpu_mode == GpuMode::kOff  ? "--gpu=off"
                : GpuBackend::BuiltWithCuda() ? "no usable CUDA device"
                                              : "built without CUDA");
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

  std::printf("perturbd: shutting down; %lld requests in flight, %lld queued, %gs grace\n",
              static_cast<long long>(service.inflight()), static_cast<long long>(service.queued()),
              grace);
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
