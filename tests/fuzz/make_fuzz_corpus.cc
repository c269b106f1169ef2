// Writes the seed corpus of request_fuzzer into a directory: for every oracle a valid Solve
// (with every output and Fenchel–Young targets) and a valid Backward, both marked "run the
// engine", plus a few malformed requests. Each file is one mode byte (request_fuzzer.cc) and a
// serialized request.
//
//   build/tests/fuzz/make_fuzz_corpus tests/fuzz/corpus
//
// The files are committed; regression inputs that libFuzzer found sit next to them (named
// crash-*, kept forever).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "client/cpp/perturbd_client.h"
#include "perturbd/v1/perturbd.pb.h"

namespace perturbd {
namespace {

constexpr uint8_t kSolve = 0, kBackward = 1, kRun = 2;

struct Seed {
  std::string name;
  v1::Problem problem;
  int64_t d;
};

std::vector<Seed> Seeds() {
  std::vector<Seed> seeds;
  seeds.push_back({"argmax", client::ArgmaxProblem(), 4});
  seeds.push_back({"top_k", client::TopKProblem(2), 5});
  seeds.push_back({"threshold", client::ThresholdProblem(), 3});
  seeds.push_back({"ranking", client::RankingProblem(), 4});
  seeds.push_back({"grid_shortest_path", client::GridShortestPathProblem(2, 3, v1::FOUR), 6});
  seeds.push_back(
      {"graph_shortest_path",
       client::GraphShortestPathProblem(4, {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {1, 2}}, 0, 3), 5});
  seeds.push_back({"assignment", client::AssignmentProblem(2, 3), 6});
  seeds.push_back(
      {"spanning_tree", client::SpanningTreeProblem(4, {{0, 1}, {1, 2}, {2, 3}, {3, 0}}), 4});
  seeds.push_back({"knapsack", client::KnapsackProblem({2, 3, 4}, 5), 3});
  v1::Problem lp;
  v1::LinearProgramProblem* program = lp.mutable_linear_program();
  program->set_num_variables(3);
  for (uint32_t j = 0; j < 3; ++j) {
    program->add_row_index(0);
    program->add_column_index(j);
    program->add_coefficient(1.0);
    program->add_variable_upper(1.0);
    program->add_integer(j == 0);
  }
  program->add_row_lower(-std::numeric_limits<double>::infinity());
  program->add_row_upper(2.0);
  seeds.push_back({"linear_program", lp, 3});
  return seeds;
}

std::vector<double> Values(int64_t n, double phase, bool positive) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::sin(0.9 * static_cast<double>(i) + phase);
    v[static_cast<size_t>(i)] = positive ? 2.0 + s : s;
  }
  return v;
}

bool Write(const std::string& dir, const std::string& name, uint8_t mode,
           const google::protobuf::Message& request) {
  std::string bytes(1, static_cast<char>(mode));
  if (!request.AppendToString(&bytes)) return false;
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace
}  // namespace perturbd

int main(int argc, char** argv) {
  using namespace perturbd;  // NOLINT
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int written = 0;
  bool ok = true;
  for (const Seed& seed : Seeds()) {
    const bool positive = seed.name.find("shortest_path") != std::string::npos;
    const v1::DType dtype = (written / 2) % 2 == 0 ? v1::FLOAT64 : v1::FLOAT32;
    v1::SolveRequest solve;
    solve.set_request_id(seed.name);
    *solve.mutable_problem() = seed.problem;
    *solve.mutable_theta() =
        client::MakeTensor(Values(2 * seed.d, 0.3, positive), {2, seed.d}, dtype);
    *solve.mutable_noise() = client::MakeNoise(positive ? 0.3 : 0.8, 6, 11);
    if (positive) solve.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
    solve.mutable_noise()->set_antithetic(seed.name == "argmax");
    solve.mutable_outputs()->set_jacobian(true);
    solve.mutable_outputs()->set_samples(true);
    solve.mutable_outputs()->set_stderr(true);
    *solve.mutable_targets() = client::MakeTensor(Values(2 * seed.d, 1.7, false), {2, seed.d});
    ok &= Write(dir, "solve_" + seed.name, kSolve | kRun, solve);
    ++written;

    v1::BackwardRequest backward;
    *backward.mutable_problem() = seed.problem;
    *backward.mutable_theta() = client::MakeTensor(Values(seed.d, 0.1, positive), {seed.d});
    *backward.mutable_noise() = client::MakeNoise(0.5, 4, 3);
    backward.mutable_noise()->set_distribution(v1::GUMBEL);
    backward.mutable_noise()->set_variance_reduction(v1::UNPERTURBED);
    *backward.mutable_cotangent() = client::MakeTensor(Values(seed.d, 2.5, false), {seed.d});
    ok &= Write(dir, "backward_" + seed.name, kBackward | kRun, backward);
    ++written;
  }
  // Malformed: NaN θ, a shape whose product overflows, and no noise.
  v1::SolveRequest bad;
  *bad.mutable_problem() = client::ArgmaxProblem();
  *bad.mutable_theta() =
      client::MakeTensor({1.0, std::numeric_limits<double>::quiet_NaN(), 0.0}, {3});
  *bad.mutable_noise() = client::MakeNoise(1.0, 4, 1);
  ok &= Write(dir, "invalid_nan", kSolve | kRun, bad);
  bad.mutable_theta()->clear_shape();
  bad.mutable_theta()->add_shape(int64_t{1} << 40);
  bad.mutable_theta()->add_shape(int64_t{1} << 40);
  ok &= Write(dir, "invalid_shape_overflow", kSolve | kRun, bad);
  bad.clear_noise();
  ok &= Write(dir, "invalid_no_noise", kSolve, bad);
  written += 3;
  if (!ok) {
    std::fprintf(stderr, "make_fuzz_corpus: cannot write into %s\n", dir.c_str());
    return 1;
  }
  std::printf("make_fuzz_corpus: %d requests in %s\n", written, dir.c_str());
  return 0;
}
