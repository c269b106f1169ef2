// Request decoding and response encoding: the server's own work around the solves, per call.
//   BM_ParseSolveRequest   the wire bytes → v1::SolveRequest (protobuf's parse; a copy of θ)
//   BM_TranslateSolve      v1::SolveRequest → engine request: θ decoded to float64, checked
//                          finite, the oracle built, the request validated
//   BM_FillSolveResponse   engine result → v1::SolveResponse (θ's dtype), then its bytes
// Shapes: argmax B = 64, d = 1000 (the e2e benchmark's) and B = 1, d = 10 (the small-request
// load); f32 = θ float32 (else float64).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "perturbd/v1/perturbd.pb.h"
#include "server/request_translator.h"
#include "server/tensor_codec.h"

namespace perturbd {
namespace {

v1::SolveRequest MakeRequest(int64_t batch, int64_t d, bool f32) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  std::vector<double> theta(static_cast<size_t>(batch * d));
  for (double& v : theta) v = normal(rng);
  v1::SolveRequest request;
  request.mutable_problem()->mutable_argmax();
  EncodeTensor(theta, {batch, d}, f32 ? DType::kFloat32 : DType::kFloat64, request.mutable_theta());
  request.mutable_noise()->set_epsilon(1.0);
  request.mutable_noise()->set_num_samples(100);
  request.mutable_noise()->set_seed(7);
  return request;
}

void Label(benchmark::State& state, int64_t batch, int64_t d, bool f32) {
  state.SetLabel("B=" + std::to_string(batch) + " d=" + std::to_string(d) +
                 (f32 ? " f32" : " f64"));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * batch * d * (f32 ? 4 : 8));
}

void BM_ParseSolveRequest(benchmark::State& state) {
  const int64_t batch = state.range(0), d = state.range(1);
  const bool f32 = state.range(2) != 0;
  const std::string bytes = MakeRequest(batch, d, f32).SerializeAsString();
  for (auto _ : state) {
    v1::SolveRequest request;
    benchmark::DoNotOptimize(request.ParseFromString(bytes));
    benchmark::DoNotOptimize(request.theta().data().data());
  }
  Label(state, batch, d, f32);
}

void BM_TranslateSolve(benchmark::State& state) {
  const int64_t batch = state.range(0), d = state.range(1);
  const bool f32 = state.range(2) != 0;
  const v1::SolveRequest request = MakeRequest(batch, d, f32);
  for (auto _ : state) {
    auto translated = TranslateSolveRequest(request, ServerLimits{});
    if (!translated.ok()) {
      state.SkipWithError(std::string(translated.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize((*translated)->request.theta.data());
  }
  Label(state, batch, d, f32);
}

void BM_FillSolveResponse(benchmark::State& state) {
  const int64_t batch = state.range(0), d = state.range(1);
  const bool f32 = state.range(2) != 0;
  auto translated = TranslateSolveRequest(MakeRequest(batch, d, f32), ServerLimits{});
  if (!translated.ok()) {
    state.SkipWithError(std::string(translated.status().message()).c_str());
    return;
  }
  PerturbedResult result;
  result.batch = batch;
  result.dimension = d;
  result.solution.assign(static_cast<size_t>(batch * d), 0.01);
  result.value.assign(static_cast<size_t>(batch), 1.5);
  std::string bytes;
  for (auto _ : state) {
    v1::SolveResponse response;
    FillSolveResponse(**translated, result, &response);
    response.SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  Label(state, batch, d, f32);
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "d", "f32"});
  for (int f32 : {1, 0}) {
    b->Args({64, 1000, f32});
    b->Args({1, 10, f32});
  }
}

BENCHMARK(BM_ParseSolveRequest)->Apply(Shapes);
BENCHMARK(BM_TranslateSolve)->Apply(Shapes);
BENCHMARK(BM_FillSolveResponse)->Apply(Shapes);

}  // namespace
}  // namespace perturbd
