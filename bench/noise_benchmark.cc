// Noise generation: nanoseconds per variate (Z and ∇ν(Z)), one thread and all threads.
// single = 1: the single-precision transforms of FLOAT32 requests (NoiseRow::single).
// This is the floor for additive perturbations: a request cannot be faster than drawing its
// B·M·d variates.
#include <string>
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
  const bool single = state.range(2) != 0;
  NoiseRow row{.key = 7,
               .instance = static_cast<uint32_t>(state.thread_index()),
               .distribution = dist,
               .single = single};
  for (auto _ : state) {
    FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
    benchmark::DoNotOptimize(z.data());
    ++row.sample;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * d));
  state.SetLabel(std::string(dist == NoiseDistribution::kNormal ? "normal" : "gumbel") +
                 (single ? " float32" : " float64"));
}
BENCHMARK(BM_FillNoise)
    ->ArgNames({"dist", "d", "single"})
    ->ArgsProduct({{0, 1}, {16, 100, 1000}, {0, 1}})
    ->ThreadRange(1, 2)
    ->UseRealTime();

}  // namespace
}  // namespace perturbd
