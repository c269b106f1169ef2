// The engine on the peer workload table (../shared/peers/README.md), in process: one request =
// B instances × M samples, with the time to merely draw the same B·M·d variates (the floor for
// additive perturbations) alongside. Threads = executor size (1 and 2); f32 = θ's dtype
// (FLOAT32 requests draw single-precision noise, as the e2e workloads' float32 θ do).
//
//   build/bench/estimator_benchmark --benchmark_min_time=0.5
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <random>
#include <vector>

#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/noise.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

// The server's malloc settings (server/main.cc, TuneMalloc with its default): allocations of a
// request's outputs stay in the arenas instead of going to mmap and back every request, whose
// page faults (and, with two threads, TLB shootdowns) would otherwise be measured as engine time.
[[maybe_unused]] const bool kMallocTuned = [] {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  return true;
}();

struct Workload {
  const char* name;
  OracleSpec spec;
  int64_t d, batch;
  uint32_t samples;
  NoiseDistribution dist;
  double eps;
  bool gaussian_theta = false;  // θ ~ N(0, 1), as the end-to-end benchmark's (else sin 0.37i)
};

const std::vector<Workload>& Workloads() {
  static const auto* w = new std::vector<Workload>{
      {"argmax", ArgmaxSpec{}, 1000, 64, 100, NoiseDistribution::kGumbel, 0.5},
      {"top_k", TopKSpec{.k = 10}, 1000, 64, 100, NoiseDistribution::kNormal, 0.5},
      {"ranking", RankingSpec{}, 100, 64, 100, NoiseDistribution::kNormal, 0.1},
      {"grid12", GridShortestPathSpec{.rows = 12, .cols = 12}, 144, 16, 50,
       NoiseDistribution::kNormal, 0.1},
      {"grid30", GridShortestPathSpec{.rows = 30, .cols = 30}, 900, 4, 20,
       NoiseDistribution::kNormal, 0.1},
      // 5, 6: argmax and top-k on the end-to-end benchmark's θ (torch.randn): fewer
      // coordinates near the top than sin(0.37i), which crowds at ±1.
      {"argmax N(0,1)", ArgmaxSpec{}, 1000, 64, 100, NoiseDistribution::kGumbel, 0.5, true},
      {"top_k N(0,1)", TopKSpec{.k = 10}, 1000, 64, 100, NoiseDistribution::kNormal, 0.5, true},
  };
  return *w;
}

std::vector<double> Theta(const Workload& w) {
  // Warcraft-like costs for the grids, N(0, 1) where asked, else smooth scores.
  static const double kTerrain[] = {0.8, 1.2, 5.3, 7.7, 9.2};
  std::vector<double> theta(static_cast<size_t>(w.batch * w.d));
  if (w.gaussian_theta) {
    std::mt19937_64 rng(0);
    std::normal_distribution<double> normal;
    for (double& t : theta) t = normal(rng);
    return theta;
  }
  const bool grid = std::holds_alternative<GridShortestPathSpec>(w.spec);
  for (size_t i = 0; i < theta.size(); ++i) {
    theta[i] = grid ? kTerrain[(i * 7 + i / 13) % 5] : std::sin(0.37 * static_cast<double>(i));
  }
  return theta;
}

enum Mode { kForward = 0, kForwardBackward = 1, kFenchelYoung = 2 };

void BM_Request(benchmark::State& state) {
  const Workload& w = Workloads()[static_cast<size_t>(state.range(0))];
  const auto mode = static_cast<Mode>(state.range(1));
  Executor executor(static_cast<int>(state.range(2)));
  const bool f32 = state.range(3) != 0;
  auto oracle = MakeOracle(w.spec, w.d, std::nullopt);
  if (!oracle.ok()) {
    state.SkipWithError(oracle.status().ToString().c_str());
    return;
  }
  const std::vector<double> theta = Theta(w);
  std::vector<double> extra(theta.size(), 0.0);
  for (size_t i = 0; i < extra.size(); i += static_cast<size_t>(w.d)) extra[i] = 1.0;
  PerturbedRequest request;
  request.oracle = oracle->get();
  request.batch = w.batch;
  request.theta = theta;
  request.noise.distribution = w.dist;
  request.noise.epsilon = w.eps;
  request.noise.num_samples = w.samples;
  request.dtype = f32 ? DType::kFloat32 : DType::kFloat64;
  if (mode == kForwardBackward) request.cotangent = extra;
  if (mode == kFenchelYoung) request.targets = extra;
  for (auto _ : state) {
    request.noise.seed++;
    auto result = RunPerturbed(executor, request);
    if (!result.ok()) state.SkipWithError(result.status().ToString().c_str());
    benchmark::DoNotOptimize(result);
  }
  state.counters["solves_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * w.batch * w.samples), benchmark::Counter::kIsRate);
  static const char* kModes[] = {"fwd", "fwd+vjp", "fy"};
  state.SetLabel(std::string(w.name) + " " + kModes[mode] + (f32 ? " f32" : " f64"));
}
BENCHMARK(BM_Request)
    ->ArgNames({"workload", "mode", "threads", "f32"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {0, 1, 2}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The floor: draw the same B·M·d variates on `threads` threads (static split of the rows).
// Every workload is listed, 5 and 6 too (the floor does not depend on θ: they repeat 0 and 1),
// so that one filter (`workload:6/`) selects a request and its floor.
void BM_NoiseFloor(benchmark::State& state) {
  const Workload& w = Workloads()[static_cast<size_t>(state.range(0))];
  const int threads = static_cast<int>(state.range(1));
  const bool single = state.range(2) != 0;
  Executor executor(threads);
  const int64_t rows = w.batch * w.samples;
  std::vector<std::vector<double>> z(static_cast<size_t>(threads), std::vector<double>(w.d)), g = z;
  for (auto _ : state) {
    absl::Notification done;
    Executor::Job job;
    job.num_items = threads;
    job.run = [&](int64_t item, int worker) {
      for (int64_t r = item; r < rows; r += threads) {
        NoiseRow row{.key = 1,
                     .instance = static_cast<uint32_t>(r / w.samples),
                     .sample = static_cast<uint32_t>(r % w.samples),
                     .distribution = w.dist,
                     .single = single};
        FillNoise(row, absl::MakeSpan(z[static_cast<size_t>(worker)]),
                  absl::MakeSpan(g[static_cast<size_t>(worker)]));
      }
      return absl::OkStatus();
    };
    job.finish = [&](absl::Status) { done.Notify(); };
    executor.Submit(std::move(job));
    done.WaitForNotification();
  }
  state.SetLabel(std::string(w.name) + " noise floor" + (single ? " f32" : " f64"));
}
BENCHMARK(BM_NoiseFloor)
    ->ArgNames({"workload", "threads", "f32"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace perturbd
