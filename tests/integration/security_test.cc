// Transport security and authentication of the real perturbd binary on loopback: TLS, mutual
// TLS with a right, wrong or missing client certificate, and bearer tokens (missing, wrong,
// right; health open without one). Certificates and keys are made at test time with openssl
// into a fresh temporary directory (no private key is committed) and removed afterwards.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cpp/perturbd_client.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "perturbd/v1/perturbd.grpc.pb.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_helpers.h"

namespace perturbd {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::perturbd::testing::CommandResult;
using ::perturbd::testing::RunCommand;
using ::perturbd::testing::ServerProcess;
using ::perturbd::testing::SmallRequest;
using ::testing::HasSubstr;

constexpr char kToken[] = "test-token-8f1d2c3b4a5e6f70";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path);
  out << contents;
}

// A CA, a server certificate for localhost / 127.0.0.1 signed by it, a client certificate
// signed by it, and a client certificate signed by another ("rogue") CA. EC P-256, valid for a
// day.
class Pki {
 public:
  static std::unique_ptr<Pki> Make() {
    char dir_template[] = "/tmp/perturbd-pki-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return nullptr;
    auto pki = std::unique_ptr<Pki>(new Pki(dir_template));
    const std::string script = absl::StrCat(
        "set -e; cd '", pki->dir_, "'\n",
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; }\n",
        "ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.crt -days 1 "
        "-subj \"/CN=$1\"; }\n",
        "leaf() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj \"/CN=$1\"; "
        "printf '%s\\n' \"$3\" > $1.ext; openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key "
        "-CAcreateserial -out $1.crt -days 1 -extfile $1.ext; }\n",
        "ca ca; ca rogue-ca\n", "leaf server ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n",
        "leaf client ca 'extendedKeyUsage=clientAuth'\n",
        "leaf rogue-client rogue-ca 'extendedKeyUsage=clientAuth'\n",
        "printf '# test token\\n%s\\n' '", kToken, "' > token\n");
    const CommandResult result = RunCommand({"/bin/bash", "-c", script}, absl::Seconds(60));
    if (result.exit_status != 0) {
      ADD_FAILURE() << "openssl failed: " << result.err;
      return nullptr;
    }
    return pki;
  }
  ~Pki() { RunCommand({"/bin/rm", "-rf", dir_}, absl::Seconds(10)); }

  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }
  std::string Pem(const std::string& name) const { return ReadFile(Path(name)); }

 private:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

std::unique_ptr<ServerProcess> StartServer(const std::vector<std::string>& flags) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(flags);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

// A TLS channel trusting `ca_pem`, optionally presenting a client certificate.
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& ca_pem,
                                          const std::string& key_pem = "",
                                          const std::string& cert_pem = "") {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem;
  options.pem_private_key = key_pem;
  options.pem_cert_chain = cert_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  static int counter = 0;
  args.SetInt("perturbd.test.connection", ++counter);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), args);
}

grpc::Status CallSolve(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& authorization = "") {
  auto stub = v1::PerturbedOptimizer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  v1::SolveResponse response;
  return stub->Solve(&context, SmallRequest(), &response);
}

grpc::Status CallHealth(const std::shared_ptr<grpc::Channel>& channel,
                        HealthCheckResponse::ServingStatus* serving = nullptr) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HealthCheckRequest request;
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (serving != nullptr) *serving = response.status();
  return status;
}

TEST(SecurityTest, TlsServesTrustingClientsOnly) {
  std::unique_ptr<Pki> pki = Pki::Make();
  ASSERT_NE(pki, nullptr);
  auto server =
      StartServer({"--drain_seconds=0", absl::StrCat("--tls_cert=", pki->Path("server.crt")),
                   absl::StrCat("--tls_key=", pki->Path("server.key"))});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Output(), HasSubstr("TLS"));
  EXPECT_TRUE(CallSolve(TlsChannel(server->address(), pki->Pem("ca.crt"))).ok());
  // A client that trusts another CA refuses the server; a plaintext client gets nowhere.
  EXPECT_EQ(CallSolve(TlsChannel(server->address(), pki->Pem("rogue-ca.crt"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CallSolve(testing::NewConnection(server->address())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST(SecurityTest, MutualTlsRequiresAClientCertificateFromTheConfiguredCa) {
  std::unique_ptr<Pki> pki = Pki::Make();
  ASSERT_NE(pki, nullptr);
  auto server =
      StartServer({"--drain_seconds=0", absl::StrCat("--tls_cert=", pki->Path("server.crt")),
                   absl::StrCat("--tls_key=", pki->Path("server.key")),
                   absl::StrCat("--tls_client_ca=", pki->Path("ca.crt"))});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Output(), HasSubstr("mutual TLS"));
  const std::string ca = pki->Pem("ca.crt");
  EXPECT_TRUE(
      CallSolve(TlsChannel(server->address(), ca, pki->Pem("client.key"), pki->Pem("client.crt")))
          .ok());
  // No client certificate, or one from another CA: the handshake fails.
  EXPECT_EQ(CallSolve(TlsChannel(server->address(), ca)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CallSolve(TlsChannel(server->address(), ca, pki->Pem("rogue-client.key"),
                                 pki->Pem("rogue-client.crt")))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A client certificate without its key cannot be used either.
  EXPECT_EQ(CallSolve(TlsChannel(server->address(), ca, pki->Pem("rogue-client.key"),
                                 pki->Pem("client.crt")))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // None of the refused connections reached the service: only the first call was served.
  const std::string metrics = testing::Scrape(*server);
  EXPECT_EQ(testing::MetricValue(
                metrics, R"(perturbd_requests_total{code="OK",method="Solve",oracle="argmax"})"),
            std::optional<double>(1.0));
  size_t solve_series = 0;
  for (size_t at = metrics.find("perturbd_requests_total{"); at != std::string::npos;
       at = metrics.find("perturbd_requests_total{", at + 1)) {
    const std::string line = metrics.substr(at, metrics.find('\n', at) - at);
    if (absl::StrContains(line, "method=\"Solve\"") && !absl::EndsWith(line, " 0")) {
      ++solve_series;
    }
  }
  EXPECT_EQ(solve_series, 1u) << metrics;
}

TEST(SecurityTest, BearerTokenGuardsTheServiceButNotHealth) {
  std::unique_ptr<Pki> pki = Pki::Make();
  ASSERT_NE(pki, nullptr);
  auto server =
      StartServer({"--drain_seconds=0", absl::StrCat("--auth_token_file=", pki->Path("token"))});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Output(), HasSubstr("bearer token required"));
  auto channel = testing::NewConnection(server->address());

  const grpc::Status missing = CallSolve(channel);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization"));
  EXPECT_EQ(CallSolve(channel, "Bearer wrong-token-0000000000").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallSolve(channel, absl::StrCat("Basic ", kToken)).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallSolve(channel, absl::StrCat("Bearer ", kToken, "x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallSolve(channel, absl::StrCat("Bearer ", kToken)).ok());

  // Health is open for probes.
  HealthCheckResponse::ServingStatus serving = HealthCheckResponse::UNKNOWN;
  EXPECT_TRUE(CallHealth(channel, &serving).ok());
  EXPECT_EQ(serving, HealthCheckResponse::SERVING);

  // Every perturbd.v1 method checks it: ListSolvers, Backward, SolveStream.
  auto stub = v1::PerturbedOptimizer::NewStub(channel);
  {
    grpc::ClientContext context;
    v1::ListSolversResponse list;
    EXPECT_EQ(stub->ListSolvers(&context, v1::ListSolversRequest(), &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    v1::ListSolversResponse list;
    EXPECT_TRUE(stub->ListSolvers(&context, v1::ListSolversRequest(), &list).ok());
  }
  {
    grpc::ClientContext context;
    v1::BackwardRequest request;
    v1::BackwardResponse response;
    EXPECT_EQ(stub->Backward(&context, request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  for (const bool with_token : {false, true}) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (with_token) context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    auto stream = stub->SolveStream(&context);
    stream->Write(SmallRequest());
    stream->WritesDone();
    v1::SolveResponse response;
    const bool answered = stream->Read(&response);
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(answered, with_token);
    EXPECT_EQ(status.error_code(),
              with_token ? grpc::StatusCode::OK : grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(testing::Metric(
                *server,
                R"(perturbd_requests_total{code="UNAUTHENTICATED",method="Solve",oracle="none"})"),
            4.0);
}

TEST(SecurityTest, TokenOverMutualTls) {
  std::unique_ptr<Pki> pki = Pki::Make();
  ASSERT_NE(pki, nullptr);
  auto server =
      StartServer({"--drain_seconds=0", absl::StrCat("--tls_cert=", pki->Path("server.crt")),
                   absl::StrCat("--tls_key=", pki->Path("server.key")),
                   absl::StrCat("--tls_client_ca=", pki->Path("ca.crt")),
                   absl::StrCat("--auth_token_file=", pki->Path("token"))});
  ASSERT_NE(server, nullptr);
  auto channel = TlsChannel(server->address(), pki->Pem("ca.crt"), pki->Pem("client.key"),
                            pki->Pem("client.crt"));
  EXPECT_EQ(CallSolve(channel).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallSolve(channel, absl::StrCat("Bearer ", kToken)).ok());
  EXPECT_TRUE(CallHealth(channel).ok());
}

// Metrics on an address of their own (here 127.0.0.2, another loopback address): served there
// and not on the gRPC address. A second server on a port already taken fails at startup with
// status 1 instead of sharing it (gRPC's default SO_REUSEPORT is turned off), for the gRPC port
// and for the metrics port alike.
TEST(SecurityTest, MetricsBindToTheirOwnAddressAndAPortClashFailsLoudly) {
  auto server = StartServer({"--drain_seconds=0", "--metrics_listen=127.0.0.2:0"});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Output(), HasSubstr("perturbd metrics on 127.0.0.2:"));
  ASSERT_GT(server->metrics_port(), 0);
  absl::StatusOr<std::string> scraped =
      testing::HttpGet(server->metrics_port(), "/metrics", absl::Seconds(5), "127.0.0.2");
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_THAT(*scraped, HasSubstr("perturbd_build_info"));
  EXPECT_FALSE(
      testing::HttpGet(server->metrics_port(), "/metrics", absl::Seconds(2), "127.0.0.1").ok());
  // The gRPC port serves gRPC, not the metrics.
  EXPECT_FALSE(testing::HttpGet(server->port(), "/metrics", absl::Seconds(2)).ok());

  const std::vector<std::vector<std::string>> clashes = {
      {absl::StrCat("--listen=", server->address()), "--metrics_listen="},
      {"--listen=127.0.0.1:0", absl::StrCat("--metrics_listen=127.0.0.2:", server->metrics_port())},
  };
  for (const std::vector<std::string>& flags : clashes) {
    std::vector<std::string> argv = {testing::ServerBinary()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const CommandResult result = RunCommand(argv, absl::Seconds(20));
    EXPECT_EQ(result.exit_status, 1) << flags[0] << " " << flags[1] << "\n" << result.err;
    EXPECT_THAT(result.err, ::testing::AnyOf(HasSubstr("cannot listen"),
                                             HasSubstr("cannot serve metrics")))
        << result.err;
    EXPECT_THAT(result.out, ::testing::Not(HasSubstr("perturbd listening on")));
  }
  // The first server still serves.
  EXPECT_TRUE(CallSolve(testing::NewConnection(server->address())).ok());
}

TEST(SecurityTest, BadSecurityConfigurationStopsTheServerAtStartup) {
  std::unique_ptr<Pki> pki = Pki::Make();
  ASSERT_NE(pki, nullptr);
  WriteFile(pki->Path("weak-token"), "short\n");
  const std::vector<std::vector<std::string>> bad = {
      {absl::StrCat("--tls_cert=", pki->Path("server.crt"))},  // no key
      {absl::StrCat("--tls_client_ca=", pki->Path("ca.crt"))},
      {absl::StrCat("--tls_cert=", pki->Path("server.crt")), "--tls_key=/nonexistent/key.pem"},
      {"--auth_token_file=/nonexistent/token"},
      {absl::StrCat("--auth_token_file=", pki->Path("weak-token"))},
  };
  for (const std::vector<std::string>& flags : bad) {
    std::vector<std::string> argv = {testing::ServerBinary(), "--listen=127.0.0.1:0",
                                     "--metrics_listen="};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const CommandResult result = RunCommand(argv, absl::Seconds(20));
    EXPECT_EQ(result.exit_status, 1) << flags[0] << "\n" << result.err;
    EXPECT_THAT(result.err, HasSubstr("perturbd: ")) << flags[0];
    EXPECT_THAT(result.err, ::testing::Not(HasSubstr("short"))) << "echoed a token";
  }
}

}  // namespace
}  // namespace perturbd
