// Noise generation: nanoseconds per variate (Z and ∇ν(Z)), one thread and all threads.
// This is the floor for additive perturbations: a request cannot be faster than drawing its
// B·M·d variates.
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "solvers/perturbed/noise.h"

namespace perturbd {
namespace {

void BM_FillNoise(benchmark::State& state) {
  const auto dist = static_cast<NoiseDistribution>(state.range(0));
  const size_t d = static_cast<size_t>(state.range(1));
  std::vector<double> z(d), g(d);
  NoiseRow row{
      .key = 7, .instance = static_cast<uint32_t>(state.thread_index()), .distribution = dist};
  for (auto _ : state) {
    FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
    benchmark::DoNotOptimize(z.data());
    ++row.sample;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * d));
  state.SetLabel(dist == NoiseDistribution::kNormal ? "normal" : "gumbel");
}
BENCHMARK(BM_FillNoise)
    ->ArgNames({"dist", "d"})
    ->ArgsProduct({{0, 1}, {16, 100, 1000}})
    ->ThreadRange(1, 2)
    ->UseRealTime();

}  // namespace
}  // namespace perturbd
