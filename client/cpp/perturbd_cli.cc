// perturbd-cli: a command-line client for perturbd.
//
//   perturbd-cli solve    --oracle=top_k --k=2 --theta="1,2,3;4,5,6" --epsilon=0.5 --samples=100
//   perturbd-cli backward --oracle=argmax --theta="1,2,3" --cotangent="1,0,0"
//   perturbd-cli solve    --problem_json='{"linearProgram": {"numVariables": 2,
//                           "variableUpper": [1, 1]}}' --theta="1,-1"
//   perturbd-cli list
//   perturbd-cli health   [--service=perturbd.v1.PerturbedOptimizer]
//
// solve/backward print JSON to stdout: every tensor as a nested array (a scalar as a number),
// numbers in the shortest form that reads back to the same float32/float64, plus "stats";
// --output=FILE.npy also writes the solution (backward: grad_theta) as .npy.
// θ text: rows separated by ';', values by ','; without ';' θ is one instance [d] and the
// outputs drop the batch axis. --theta_file reads .npy (any shape) or .csv ([rows, cols]).
//
// Exit status: 0 on success (health: SERVING), 1 for a failed call or NOT_SERVING, 2 for bad
// usage.
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cpp/npy.h"
#include "client/cpp/perturbd_client.h"

ABSL_FLAG(std::string, address, "localhost:50051", "server address host:port");
ABSL_FLAG(double, timeout, 60.0, "deadline of the call, in seconds");
ABSL_FLAG(std::string, request_id, "", "request id, echoed in the response");
// Problem.
ABSL_FLAG(std::string, oracle, "argmax",
          "argmax | top_k | threshold | ranking | grid_shortest_path | graph_shortest_path | "
          "assignment | spanning_tree | knapsack (linear_program: --problem_json)");
ABSL_FLAG(std::string, problem_json, "",
          "the whole problem as proto3 JSON of perturbd.v1.Problem, instead of --oracle and its "
          "flags (the way to send linear_program), e.g. '{\"linearProgram\": {\"numVariables\": "
          "2, \"rowIndex\": [0, 0], \"columnIndex\": [0, 1], \"coefficient\": [1, 1], "
          "\"rowLower\": [\"-Infinity\"], \"rowUpper\": [1], \"variableUpper\": [1, 1]}}'; "
          "--sense still applies");
ABSL_FLAG(std::string, sense, "", "max | min; empty = the oracle's natural sense");
ABSL_FLAG(uint32_t, k, 1, "top_k: number of selected coordinates");
ABSL_FLAG(uint32_t, rows, 0, "grid_shortest_path, assignment: rows");
ABSL_FLAG(uint32_t, cols, 0, "grid_shortest_path, assignment: columns");
ABSL_FLAG(std::string, connectivity, "eight", "grid_shortest_path: four | eight");
ABSL_FLAG(uint32_t, num_nodes, 0, "graph_shortest_path, spanning_tree: number of nodes");
ABSL_FLAG(std::string, edges, "",
          "graph_shortest_path, spanning_tree: edges as 'from-to' pairs, e.g. \"0-1,1-2,0-2\"; "
          "θ holds one cost per edge, in this order");
ABSL_FLAG(std::string, weights, "", "knapsack: item weights, comma-separated integers");
ABSL_FLAG(int64_t, capacity, 0, "knapsack: capacity");
ABSL_FLAG(uint32_t, source, 0, "graph_shortest_path: source node");
ABSL_FLAG(uint32_t, target, 0, "graph_shortest_path: target node");
// Tensors.
ABSL_FLAG(std::string, theta, "",
          "θ as text: rows separated by ';', values by ','; \"1,2,3\" is one instance [d]");
ABSL_FLAG(std::string, theta_file, "", "θ from a .npy or .csv file (instead of --theta)");
ABSL_FLAG(std::string, dtype, "float64", "wire dtype of θ (and of the outputs): float32 | float64");
ABSL_FLAG(std::string, targets, "", "solve: Fenchel–Young targets, θ's shape, same text syntax");
ABSL_FLAG(std::string, cotangent, "", "backward: cotangent g, θ's shape, same text syntax");
ABSL_FLAG(std::string, cotangent_file, "", "backward: cotangent from a .npy or .csv file");
// Noise.
ABSL_FLAG(double, epsilon, 1.0, "noise scale ε > 0");
ABSL_FLAG(uint32_t, samples, 100, "number of perturbed samples M");
ABSL_FLAG(uint64_t, seed, 0, "noise seed (same seed, same noise)");
ABSL_FLAG(std::string, instance_seeds, "",
          "optional per-instance seeds, comma-separated (B of them)");
ABSL_FLAG(std::string, distribution, "normal", "normal | gumbel");
ABSL_FLAG(std::string, perturbation, "additive", "additive | multiplicative");
ABSL_FLAG(std::string, variance_reduction, "",
          "none | leave_one_out | unperturbed; empty = server default");
ABSL_FLAG(bool, antithetic, false, "antithetic sample pairs (needs an even --samples)");
// Outputs.
ABSL_FLAG(bool, jacobian, false, "solve: also return the Jacobian");
ABSL_FLAG(bool, stderr, false, "solve: also return the standard error of the solution");
ABSL_FLAG(bool, return_samples, false, "solve: also return the per-sample solutions");
ABSL_FLAG(std::string, backend, "auto", "auto | cpu | gpu");
ABSL_FLAG(std::string, output, "", "also write the solution (backward: grad_theta) to this .npy");
// Health.
ABSL_FLAG(std::string, service, "",
          "health: service name; \"\" = liveness, perturbd.v1.PerturbedOptimizer = readiness");

namespace perturbd::client {
namespace {

[[noreturn]] void Fail(const std::string& message, int code = 1) {
  std::cerr << "perturbd-cli: " << message << "\n";
  std::exit(code);
}

[[noreturn]] void Fail(const absl::Status& status) {
  Fail(absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()), 1);
}

v1::DType ParseDType() {
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype == "float64") return v1::FLOAT64;
  if (dtype == "float32") return v1::FLOAT32;
  Fail(absl::StrCat("--dtype: unknown '", dtype, "'"), 2);
}

// "1,2,3;4,5,6" → [2, 3]; "1,2,3" → [3].
Array ParseArrayText(const std::string& flag, const std::string& text) {
  Array array;
  int64_t rows = 0;
  int64_t cols = -1;
  const bool matrix = absl::StrContains(text, ';');
  for (absl::string_view row : absl::StrSplit(text, ';', absl::SkipWhitespace())) {
    int64_t n = 0;
    for (absl::string_view cell : absl::StrSplit(row, ',', absl::SkipWhitespace())) {
      double v = 0;
      if (!absl::SimpleAtod(absl::StripAsciiWhitespace(cell), &v)) {
        Fail(absl::StrCat("--", flag, ": '", cell, "' is not a number"), 2);
      }
      array.values.push_back(v);
      ++n;
    }
    if (cols >= 0 && n != cols) {
      Fail(absl::StrCat("--", flag, ": row ", rows, " has ", n, " values, expected ", cols), 2);
    }
    cols = n;
    ++rows;
  }
  if (rows == 0) Fail(absl::StrCat("--", flag, ": empty"), 2);
  array.shape = matrix ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
  return array;
}

Array ReadArrayFile(const std::string& path) {
  absl::StatusOr<Array> array =
      absl::EndsWith(absl::AsciiStrToLower(path), ".npy") ? ReadNpy(path) : ReadCsv(path);
  if (!array.ok()) Fail(array.status());
  return *std::move(array);
}

// An array from --NAME text or --NAME_file, in --dtype; empty when neither is given.
Array ArrayFromFlags(const std::string& name, const std::string& text, const std::string& file) {
  if (!text.empty() && !file.empty()) {
    Fail(absl::StrCat("give --", name, " or --", name, "_file, not both"), 2);
  }
  Array array;
  if (!text.empty()) array = ParseArrayText(name, text);
  if (!file.empty()) array = ReadArrayFile(file);
  array.dtype = ParseDType();
  return array;
}

std::vector<std::pair<uint32_t, uint32_t>> EdgesFromFlags() {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (absl::string_view edge :
       absl::StrSplit(absl::GetFlag(FLAGS_edges), ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(edge, '-');
    uint32_t from = 0, to = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ends.first), &from) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(ends.second), &to)) {
      Fail(absl::StrCat("--edges: '", edge, "' is not FROM-TO"), 2);
    }
    edges.emplace_back(from, to);
  }
  return edges;
}

v1::Problem ProblemFromFlags() {
  const std::string oracle = absl::GetFlag(FLAGS_oracle);
  const std::string json = absl::GetFlag(FLAGS_problem_json);
  v1::Problem problem;
  if (!json.empty()) {
    const auto parsed = google::protobuf::util::JsonStringToMessage(json, &problem);
    if (!parsed.ok()) {
      Fail(absl::StrCat("--problem_json: not a perturbd.v1.Problem: ", parsed.ToString()), 2);
    }
  } else if (oracle == "linear_program") {
    Fail("--oracle=linear_program: give the program with --problem_json", 2);
  } else if (oracle == "argmax") {
    problem = ArgmaxProblem();
  } else if (oracle == "top_k") {
    problem = TopKProblem(absl::GetFlag(FLAGS_k));
  } else if (oracle == "threshold") {
    problem = ThresholdProblem();
  } else if (oracle == "ranking") {
    problem = RankingProblem();
  } else if (oracle == "grid_shortest_path") {
    const std::string c = absl::GetFlag(FLAGS_connectivity);
    if (c != "four" && c != "eight") Fail("--connectivity: four or eight", 2);
    problem = GridShortestPathProblem(absl::GetFlag(FLAGS_rows), absl::GetFlag(FLAGS_cols),
                                      c == "four" ? v1::FOUR : v1::EIGHT);
  } else if (oracle == "graph_shortest_path") {
    problem = GraphShortestPathProblem(absl::GetFlag(FLAGS_num_nodes), EdgesFromFlags(),
                                       absl::GetFlag(FLAGS_source), absl::GetFlag(FLAGS_target));
  } else if (oracle == "assignment") {
    problem = AssignmentProblem(absl::GetFlag(FLAGS_rows), absl::GetFlag(FLAGS_cols));
  } else if (oracle == "spanning_tree") {
    problem = SpanningTreeProblem(absl::GetFlag(FLAGS_num_nodes), EdgesFromFlags());
  } else if (oracle == "knapsack") {
    std::vector<int64_t> weights;
    for (absl::string_view w :
         absl::StrSplit(absl::GetFlag(FLAGS_weights), ',', absl::SkipWhitespace())) {
      int64_t weight = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(w), &weight)) {
        Fail(absl::StrCat("--weights: '", w, "' is not an integer"), 2);
      }
      weights.push_back(weight);
    }
    problem = KnapsackProblem(weights, absl::GetFlag(FLAGS_capacity));
  } else {
    Fail(absl::StrCat("--oracle: unknown '", oracle, "'"), 2);
  }
  const std::string sense = absl::GetFlag(FLAGS_sense);
  if (sense == "max") {
    problem.set_sense(v1::MAXIMIZE);
  } else if (sense == "min") {
    problem.set_sense(v1::MINIMIZE);
  } else if (!sense.empty()) {
    Fail("--sense: max or min", 2);
  }
  return problem;
}

v1::Noise NoiseFromFlags() {
  v1::Noise noise = MakeNoise(absl::GetFlag(FLAGS_epsilon), absl::GetFlag(FLAGS_samples),
                              absl::GetFlag(FLAGS_seed));
  for (absl::string_view s :
       absl::StrSplit(absl::GetFlag(FLAGS_instance_seeds), ',', absl::SkipWhitespace())) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(s, &seed)) Fail(absl::StrCat("--instance_seeds: '", s, "'"), 2);
    noise.add_instance_seeds(seed);
  }
  const std::string distribution = absl::GetFlag(FLAGS_distribution);
  if (distribution == "gumbel") {
    noise.set_distribution(v1::GUMBEL);
  } else if (distribution == "normal") {
    noise.set_distribution(v1::NORMAL);
  } else {
    Fail("--distribution: normal or gumbel", 2);
  }
  const std::string perturbation = absl::GetFlag(FLAGS_perturbation);
  if (perturbation == "multiplicative") {
    noise.set_perturbation(v1::MULTIPLICATIVE);
  } else if (perturbation == "additive") {
    noise.set_perturbation(v1::ADDITIVE);
  } else {
    Fail("--perturbation: additive or multiplicative", 2);
  }
  const std::string vr = absl::GetFlag(FLAGS_variance_reduction);
  if (vr == "none") {
    noise.set_variance_reduction(v1::NONE);
  } else if (vr == "leave_one_out") {
    noise.set_variance_reduction(v1::LEAVE_ONE_OUT);
  } else if (vr == "unperturbed") {
    noise.set_variance_reduction(v1::UNPERTURBED);
  } else if (!vr.empty()) {
    Fail("--variance_reduction: none, leave_one_out or unperturbed", 2);
  }
  noise.set_antithetic(absl::GetFlag(FLAGS_antithetic));
  return noise;
}

v1::Backend BackendFromFlags() {
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (backend == "auto") return v1::AUTO;
  if (backend == "cpu") return v1::CPU;
  if (backend == "gpu") return v1::GPU;
  Fail("--backend: auto, cpu or gpu", 2);
}

// Shortest text that reads back to the same float32 / float64.
std::string Number(double v, v1::DType dtype) {
  char buffer[64];
  const std::to_chars_result r =
      dtype == v1::FLOAT32 ? std::to_chars(buffer, buffer + sizeof(buffer), static_cast<float>(v))
                           : std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, r.ptr);
}

void AppendNested(const Array& a, size_t axis, size_t& offset, std::string& out) {
  if (axis == a.shape.size()) {
    out += Number(a.values[offset++], a.dtype);
    return;
  }
  out += '[';
  for (int64_t i = 0; i < a.shape[axis]; ++i) {
    if (i > 0) out += ", ";
    AppendNested(a, axis + 1, offset, out);
  }
  out += ']';
}

std::string ArrayJson(const Array& a) {
  std::string out;
  size_t offset = 0;
  AppendNested(a, 0, offset, out);
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string StatsJson(const v1::SolveStats& stats) {
  return absl::StrCat(
      "{\"solves\": ", stats.solves(), ", \"seconds\": ", Number(stats.seconds(), v1::FLOAT64),
      ", \"backend\": ", JsonString(stats.backend()), ", \"threads\": ", stats.threads(),
      ", \"clamped_costs\": ", stats.clamped_costs(), "}");
}

void MaybeWriteOutput(const Array& array) {
  const std::string path = absl::GetFlag(FLAGS_output);
  if (path.empty()) return;
  if (absl::Status status = WriteNpy(path, array); !status.ok()) Fail(status);
}

Array ThetaFromFlags() {
  Array theta =
      ArrayFromFlags("theta", absl::GetFlag(FLAGS_theta), absl::GetFlag(FLAGS_theta_file));
  if (theta.empty()) Fail("give --theta or --theta_file", 2);
  return theta;
}

int RunSolve(const PerturbdClient& client) {
  v1::SolveRequest request;
  request.set_request_id(absl::GetFlag(FLAGS_request_id));
  *request.mutable_problem() = ProblemFromFlags();
  *request.mutable_theta() = MakeTensor(ThetaFromFlags());
  *request.mutable_noise() = NoiseFromFlags();
  Array targets = ArrayFromFlags("targets", absl::GetFlag(FLAGS_targets), "");
  if (!targets.empty()) *request.mutable_targets() = MakeTensor(targets);
  request.mutable_outputs()->set_jacobian(absl::GetFlag(FLAGS_jacobian));
  request.mutable_outputs()->set_samples(absl::GetFlag(FLAGS_return_samples));
  request.mutable_outputs()->set_stderr(absl::GetFlag(FLAGS_stderr));
  request.set_backend(BackendFromFlags());

  absl::StatusOr<v1::SolveResponse> response = client.Solve(request);
  if (!response.ok()) Fail(response.status());
  absl::StatusOr<SolveResult> result = ReadSolveResponse(*response);
  if (!result.ok()) Fail(result.status());

  std::string json = absl::StrCat("{\"request_id\": ", JsonString(result->request_id));
  const std::pair<const char*, const Array*> fields[] = {
      {"solution", &result->solution},   {"value", &result->value},
      {"jacobian", &result->jacobian},   {"loss", &result->loss},
      {"loss_grad", &result->loss_grad}, {"solution_stderr", &result->solution_stderr},
      {"samples", &result->samples}};
  for (const auto& [name, array] : fields) {
    if (!array->empty()) absl::StrAppend(&json, ", \"", name, "\": ", ArrayJson(*array));
  }
  absl::StrAppend(&json, ", \"stats\": ", StatsJson(result->stats), "}");
  std::cout << json << std::endl;
  MaybeWriteOutput(result->solution);
  return 0;
}

int RunBackward(const PerturbdClient& client) {
  v1::BackwardRequest request;
  request.set_request_id(absl::GetFlag(FLAGS_request_id));
  *request.mutable_problem() = ProblemFromFlags();
  *request.mutable_theta() = MakeTensor(ThetaFromFlags());
  *request.mutable_noise() = NoiseFromFlags();
  Array cotangent = ArrayFromFlags("cotangent", absl::GetFlag(FLAGS_cotangent),
                                   absl::GetFlag(FLAGS_cotangent_file));
  if (cotangent.empty()) Fail("give --cotangent or --cotangent_file", 2);
  *request.mutable_cotangent() = MakeTensor(cotangent);
  request.set_backend(BackendFromFlags());

  absl::StatusOr<v1::BackwardResponse> response = client.Backward(request);
  if (!response.ok()) Fail(response.status());
  absl::StatusOr<Array> grad = ReadTensor(response->grad_theta());
  if (!grad.ok()) Fail(grad.status());
  std::cout << "{\"request_id\": " << JsonString(response->request_id())
            << ", \"grad_theta\": " << ArrayJson(*grad)
            << ", \"stats\": " << StatsJson(response->stats()) << "}" << std::endl;
  MaybeWriteOutput(*grad);
  return 0;
}

int RunList(const PerturbdClient& client) {
  absl::StatusOr<v1::ListSolversResponse> response = client.ListSolvers();
  if (!response.ok()) Fail(response.status());
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(*response, &json, options).ok()) {
    Fail("cannot print the response as JSON");
  }
  std::cout << json;
  return 0;
}

int RunHealth(const PerturbdClient& client) {
  const std::string service = absl::GetFlag(FLAGS_service);
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client.Health(service);
  if (!status.ok()) Fail(status.status());
  std::cout << "{\"service\": " << JsonString(service) << ", \"status\": \""
            << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status) << "\"}"
            << std::endl;
  return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace
}  // namespace perturbd::client

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "perturbd_cli.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "a command-line client for perturbd.\n"
      "Usage: perturbd-cli solve|backward|list|health [--address=HOST:PORT] [flags]\n"
      "  solve     smoothed solution (and Jacobian, FY loss, ...) as JSON\n"
      "  backward  vector-Jacobian product for --cotangent as JSON\n"
      "  list      the server's oracles and limits as JSON\n"
      "  health    exit 0 when --service is SERVING (container health check)");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "perturbd-cli: give one command: solve, backward, list or health (--help)\n";
    return 2;
  }
  const std::string command = args[1];
  perturbd::client::ClientOptions options;
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout));
  auto client = perturbd::client::PerturbdClient::Connect(absl::GetFlag(FLAGS_address), options);
  if (command == "solve") return perturbd::client::RunSolve(*client);
  if (command == "backward") return perturbd::client::RunBackward(*client);
  if (command == "list") return perturbd::client::RunList(*client);
  if (command == "health") return perturbd::client::RunHealth(*client);
  std::cerr << "perturbd-cli: unknown command '" << command
            << "' (solve, backward, list, health)\n";
  return 2;
}
