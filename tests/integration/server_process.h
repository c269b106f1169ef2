// Test support for the integration tests: the real `perturbd` binary as a child process on
// loopback, child commands with a time limit, a one-shot HTTP GET, Prometheus text parsing and
// a minimal JSON reader.
//
//   ASSERT_OK_AND_ASSIGN-style:
//   absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start({"--threads=2"});
//   auto client = perturbd::client::PerturbdClient::Connect((*server)->address());
//
// Every wait here is bounded in time; the child gets SIGKILL when the `ServerProcess` is
// destroyed (and when the test process dies: PR_SET_PDEATHSIG).
#ifndef PERTURBD_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define PERTURBD_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace perturbd::testing {

// Paths of the binaries under test (compile definitions from CMake; $PERTURBD_SERVER_BINARY
// overrides the server's).
std::string ServerBinary();
std::string CliBinary();

class ServerProcess {
 public:
  // Starts perturbd with --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 and `flags`
  // (later flags win), and waits up to 30 s for it to print its addresses.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& flags = {});
  ~ServerProcess();

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;  // "127.0.0.1:PORT"

  void Signal(int signal_number);
  // The exit status (or 128 + signal when killed by one), or nullopt if the process is still
  // running after `timeout`.
  std::optional<int> WaitForExit(absl::Duration timeout);
  // Everything the server printed on stdout so far.
  std::string Output();

 private:
  ServerProcess() = default;
  bool WaitForOutput(const std::string& needle, absl::Duration timeout);

  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  std::optional<int> exit_status_;
  std::thread reader_;
  absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

struct CommandResult {
  int exit_status = -1;  // 128 + signal when killed by one; -1 on timeout
  std::string out;
  std::string err;
};
// Runs argv (argv[0] is a path) with a time limit, capturing stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout);

// Starts argv (argv[0] is a path) without waiting, stdout and stderr to /dev/null, with
// `extra_env` ("NAME=value") added to the environment; the child gets SIGKILL if the test
// process dies. Returns its pid (-1 on failure); reap it with waitpid.
pid_t SpawnCommand(const std::vector<std::string>& argv,
                   const std::vector<std::string>& extra_env = {});

// GET http://HOST:PORT/PATH (HTTP/1.0, HOST an IPv4 address); the body of a 200 response.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path, absl::Duration timeout,
                                    const std::string& host = "127.0.0.1");

// The value of one series in Prometheus text format, e.g.
// `perturbd_requests_total{code="OK",method="Solve",oracle="argmax"}` (labels in the sorted
// order prometheus-cpp writes them); nullopt when absent.
std::optional<double> MetricValue(const std::string& text, const std::string& series);

// A parsed JSON value (numbers as double).
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, std::vector<Json>,
               std::map<std::string, Json>>
      value;
  const Json& operator[](const std::string& key) const;
  const std::vector<Json>& array() const { return std::get<std::vector<Json>>(value); }
  double number() const { return std::get<double>(value); }
  bool has(const std::string& key) const;
  // Every number of a (nested) array, in order; a number alone gives itself.
  std::vector<double> Flatten() const;
};
absl::StatusOr<Json> ParseJson(const std::string& text);

}  // namespace perturbd::testing

#endif  // PERTURBD_TESTS_INTEGRATION_SERVER_PROCESS_H_
