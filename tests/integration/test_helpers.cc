#include "tests/integration/test_helpers.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace perturbd::testing {

v1::SolveRequest SmallRequest() {
  v1::SolveRequest request;
  *request.mutable_problem() = client::ArgmaxProblem();
  *request.mutable_theta() = client::MakeTensor({0.5, 1.0, -0.2, 0.1, 0.3, 0.2}, {2, 3});
  *request.mutable_noise() = client::MakeNoise(1.0, 10, 7);
  return request;
}

v1::SolveRequest WideRequest(uint32_t num_samples) {
  v1::SolveRequest request;
  *request.mutable_problem() = client::ArgmaxProblem();
  std::vector<double> theta(512);
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = 0.001 * static_cast<double>(i % 97);
  *request.mutable_theta() = client::MakeTensor(theta, {1, 512});
  *request.mutable_noise() = client::MakeNoise(1.0, num_samples, 3);
  // MULTIPLICATIVE: every Z transformed (additive argmax forward passes transform a few per
  // sample and would not fill `seconds` within the server's max_work).
  request.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
  return request;
}

uint32_t SamplesForSeconds(const client::PerturbdClient& client, double seconds) {
  constexpr uint32_t kProbe = 4000;
  // The second of two probes: the first may pay for one-time work (allocations, tables).
  static_cast<void>(client.Solve(WideRequest(kProbe)));
  absl::StatusOr<v1::SolveResponse> probe = client.Solve(WideRequest(kProbe));
  const double probe_seconds = probe.ok() ? std::max(probe->stats().seconds(), 1e-4) : 1.0;
  const double m = kProbe * seconds / probe_seconds;
  return static_cast<uint32_t>(std::clamp(m, 4000.0, 1.9e6));
}

std::string Scrape(const ServerProcess& server) {
  absl::StatusOr<std::string> text = HttpGet(server.metrics_port(), "/metrics", absl::Seconds(5));
  return text.ok() ? *text : std::string();
}

double Metric(const ServerProcess& server, const std::string& series) {
  return MetricValue(Scrape(server), series).value_or(0.0);
}

std::optional<absl::Duration> WaitForMetric(const ServerProcess& server, const std::string& series,
                                            double value, absl::Duration timeout,
                                            absl::Duration every) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  while (absl::Now() < deadline) {
    if (Metric(server, series) == value) return absl::Now() - start;
    absl::SleepFor(every);
  }
  return std::nullopt;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(paren + 2), ' ');
  if (fields.size() < 13) return -1;
  int64_t utime = 0;
  int64_t stime = 0;
  if (!absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib * 1024;
  }
  return -1;
}

std::shared_ptr<grpc::Channel> NewConnection(const std::string& address) {
  static std::atomic<int> counter{0};
  grpc::ChannelArguments args;
  // A distinct argument keeps the channel from sharing another's subchannel (connection).
  args.SetInt("perturbd.test.connection", counter.fetch_add(1));
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

BackgroundSolve::BackgroundSolve(std::shared_ptr<grpc::Channel> channel, v1::SolveRequest request,
                                 absl::Duration timeout) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  thread_ = std::thread([this, channel = std::move(channel), request = std::move(request)] {
    auto stub = v1::PerturbedOptimizer::NewStub(channel);
    v1::SolveResponse response;
    status_ = stub->Solve(&context_, request, &response);
    finished_at_ = absl::Now();
    done_.store(true);
  });
}

BackgroundSolve::~BackgroundSolve() { Join(); }

const grpc::Status& BackgroundSolve::Join() {
  if (thread_.joinable()) thread_.join();
  return status_;
}

}  // namespace perturbd::testing
