// Helpers shared by the fault, security and load tests: requests with a controllable cost,
// a Solve on its own thread, /metrics polling, and the server process's CPU time and resident
// memory from /proc.
//
// Every wait is bounded in time.
#ifndef PERTURBD_TESTS_INTEGRATION_TEST_HELPERS_H_
#define PERTURBD_TESTS_INTEGRATION_TEST_HELPERS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "client/cpp/perturbd_client.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "tests/integration/server_process.h"

namespace perturbd::testing {

// argmax, θ = [2, 3], ε = 1, M = 10: solved in microseconds.
v1::SolveRequest SmallRequest();
// argmax over d = 512 with M samples, one instance, MULTIPLICATIVE noise (every Z transformed,
// no selector): cost linear in M.
v1::SolveRequest WideRequest(uint32_t num_samples);
// M for a WideRequest that keeps one worker busy for about `seconds` (measured with a probe
// request on `client`), within [4000, 1.9e6].
uint32_t SamplesForSeconds(const client::PerturbdClient& client, double seconds);

// The server's /metrics text ("" when the scrape fails) and one series of it (0 when absent).
std::string Scrape(const ServerProcess& server);
double Metric(const ServerProcess& server, const std::string& series);
// Polls `series` every `every` until it equals `value`; the time it took, or nullopt after
// `timeout`.
std::optional<absl::Duration> WaitForMetric(const ServerProcess& server, const std::string& series,
                                            double value, absl::Duration timeout,
                                            absl::Duration every = absl::Milliseconds(5));

// User + system CPU seconds of a process (/proc/PID/stat; 10 ms resolution), or -1.
double ProcessCpuSeconds(pid_t pid);
// Resident memory of a process in bytes (/proc/PID/status VmRSS), or -1.
int64_t ResidentBytes(pid_t pid);

// A new channel with its own TCP connection (channels to one address otherwise share one).
std::shared_ptr<grpc::Channel> NewConnection(const std::string& address);

// A Solve running on its own thread, with its own deadline.
class BackgroundSolve {
 public:
  BackgroundSolve(std::shared_ptr<grpc::Channel> channel, v1::SolveRequest request,
                  absl::Duration timeout);
  ~BackgroundSolve();
  BackgroundSolve(const BackgroundSolve&) = delete;
  BackgroundSolve& operator=(const BackgroundSolve&) = delete;

  void Cancel() { context_.TryCancel(); }
  bool done() const { return done_.load(); }
  // Waits for the call to finish (bounded by its deadline) and returns its status.
  const grpc::Status& Join();
  absl::Time finished_at() const { return finished_at_; }

 private:
  grpc::ClientContext context_;
  grpc::Status status_;
  absl::Time finished_at_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace perturbd::testing

#endif  // PERTURBD_TESTS_INTEGRATION_TEST_HELPERS_H_
