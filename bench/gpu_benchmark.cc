// GPU vs CPU throughput of the perturbed estimators on large workloads, measured side by side in
// one run (DESIGN §7: report ratios). Built with PERTURBD_ENABLE_CUDA; needs a CUDA device.
//
//   build/bench/gpu_benchmark [--reps=3]
//
// For each workload: the best of `reps` wall times of RunPerturbed on a 2-thread executor, on an
// all-hardware-thread executor, and of GpuBackend::Run (after one warm-up run that sizes the
// device arena), as solves per second and GPU/CPU ratios. The GPU's per-sample solutions equal
// the CPU's, so the smoothed solutions must agree exactly; the largest difference is printed
// as a check.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/cuda/gpu_backend.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

struct Workload {
  std::string name;
  OracleSpec spec;
  int64_t d;
  int64_t batch;
  uint32_t samples;
  bool vjp;
};

double BestSeconds(int reps, const std::function<PerturbedResult()>& run, PerturbedResult* last) {
  double best = 1e300;
  for (int k = 0; k < reps; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    PerturbedResult r = run();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (last != nullptr) *last = std::move(r);
  }
  return best;
}

PerturbedResult OrDie(absl::StatusOr<PerturbedResult> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s failed: %s\n", what, std::string(r.status().message()).c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

int Main(int argc, char** argv) {
  int reps = 3;
  for (int k = 1; k < argc; ++k) {
    if (std::strncmp(argv[k], "--reps=", 7) == 0) reps = std::max(1, std::atoi(argv[k] + 7));
  }
  if (!GpuBackend::Available()) {
    std::printf("gpu_benchmark: no usable CUDA device (built with CUDA: %d); nothing to measure\n",
                GpuBackend::BuiltWithCuda());
    return 0;
  }
  for (const std::string& device : GpuBackend::Devices())
    std::printf("device %s\n", device.c_str());
  absl::StatusOr<std::unique_ptr<GpuBackend>> gpu = GpuBackend::Create();
  if (!gpu.ok()) {
    std::fprintf(stderr, "GpuBackend::Create: %s\n", std::string(gpu.status().message()).c_str());
    return 1;
  }
  Executor two(2);
  Executor all(0);
  std::printf("CPU threads: 2 and %d; best of %d runs each\n\n", all.num_threads(), reps);

  const std::vector<Workload> workloads = {
      {"argmax d=1000", ArgmaxSpec{}, 1000, 256, 1000, false},
      {"argmax d=1000 +vjp", ArgmaxSpec{}, 1000, 256, 1000, true},
      {"top_k k=10 d=1000", TopKSpec{.k = 10}, 1000, 256, 1000, false},
      {"ranking d=100", RankingSpec{}, 100, 256, 1000, false},
      {"grid 12x12 (8-conn)", GridShortestPathSpec{.rows = 12, .cols = 12}, 144, 256, 100, false},
  };
  std::printf("%-22s %10s %10s %10s %10s %12s %9s %9s %10s\n", "workload", "solves", "cpu2 s",
              "cpuN s", "gpu s", "gpu solve/s", "gpu/cpu2", "gpu/cpuN", "max|dy|");
  for (const Workload& w : workloads) {
    absl::StatusOr<std::unique_ptr<Oracle>> oracle = MakeOracle(w.spec, w.d, std::nullopt);
    if (!oracle.ok()) return 1;
    const bool grid = (*oracle)->name() == "grid_shortest_path";
    std::mt19937_64 rng(1);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> positive(0.5, 2.0);
    std::vector<double> theta(static_cast<size_t>(w.batch * w.d));
    std::vector<double> cotangent(theta.size());
    for (double& t : theta) t = grid ? positive(rng) : normal(rng);
    for (double& g : cotangent) g = normal(rng);
    PerturbedRequest request;
    request.oracle = oracle->get();
    request.batch = w.batch;
    request.theta = theta;
    request.noise.num_samples = w.samples;
    request.noise.epsilon = 0.5;
    request.noise.seed = 42;
    if (grid) request.noise.perturbation = Perturbation::kMultiplicative;
    if (w.vjp) request.cotangent = cotangent;

    PerturbedResult cpu_result, gpu_result;
    const double cpu2 = BestSeconds(
        reps, [&] { return OrDie(RunPerturbed(two, request), "cpu2"); }, &cpu_result);
    const double cpun = BestSeconds(
        reps, [&] { return OrDie(RunPerturbed(all, request), "cpuN"); }, nullptr);
    OrDie((*gpu)->Run(request), "gpu warm-up");
    const double gpus = BestSeconds(
        reps, [&] { return OrDie((*gpu)->Run(request), "gpu"); }, &gpu_result);
    double max_dy = 0.0;
    for (size_t k = 0; k < cpu_result.solution.size(); ++k) {
      max_dy = std::max(max_dy, std::fabs(cpu_result.solution[k] - gpu_result.solution[k]));
    }
    const double solves = static_cast<double>(w.batch) * w.samples;
    std::printf("%-22s %10.0f %10.4f %10.4f %10.4f %12.3g %9.1f %9.1f %10.3g\n", w.name.c_str(),
                solves, cpu2, cpun, gpus, solves / gpus, cpu2 / gpus, cpun / gpus, max_dy);
    std::fflush(stdout);
  }

  // Where the GPU starts to pay (the server's --gpu_min_work for backend AUTO): argmax d=100,
  // M=100, growing B, one request at a time, GPU vs the CPU executors, wall time per request.
  std::printf("\ncrossover (argmax d=100 M=100, one request at a time; best of %d)\n", reps);
  std::printf("%12s %6s %12s %12s %12s %9s %9s\n", "B*M*d", "B", "cpu2 ms", "cpuN ms", "gpu ms",
              "gpu/cpu2", "gpu/cpuN");
  absl::StatusOr<std::unique_ptr<Oracle>> argmax = MakeOracle(ArgmaxSpec{}, 100, std::nullopt);
  if (!argmax.ok()) return 1;
  for (int64_t batch : {1, 4, 16, 64, 256, 1024}) {
    std::mt19937_64 rng(2);
    std::normal_distribution<double> normal;
    std::vector<double> theta(static_cast<size_t>(batch * 100));
    for (double& t : theta) t = normal(rng);
    PerturbedRequest request;
    request.oracle = argmax->get();
    request.batch = batch;
    request.theta = theta;
    request.noise.num_samples = 100;
    request.noise.epsilon = 0.5;
    request.noise.seed = 9;
    const int r = std::max(reps, 5);
    const double cpu2 =
        BestSeconds(r, [&] { return OrDie(RunPerturbed(two, request), "cpu2"); }, nullptr);
    const double cpun =
        BestSeconds(r, [&] { return OrDie(RunPerturbed(all, request), "cpuN"); }, nullptr);
    OrDie((*gpu)->Run(request), "gpu warm-up");
    const double gpus = BestSeconds(r, [&] { return OrDie((*gpu)->Run(request), "gpu"); }, nullptr);
    std::printf("%12lld %6lld %12.3f %12.3f %12.3f %9.2f %9.2f\n",
                static_cast<long long>(batch * 100 * 100), static_cast<long long>(batch),
                cpu2 * 1e3, cpun * 1e3, gpus * 1e3, cpu2 / gpus, cpun / gpus);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace perturbd

int main(int argc, char** argv) { return perturbd::Main(argc, argv); }
