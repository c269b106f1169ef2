// Prints the smoothed argmax of a score vector and compares it with the Gumbel closed form
// softmax(θ/ε): the smallest possible use of the perturbd engine as a library.
//
//   smoothed_argmax_example [epsilon] [num_samples]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/perturbed_optimizer.h"

int main(int argc, char** argv) {
  using namespace perturbd;
  const double eps = argc > 1 ? std::atof(argv[1]) : 0.5;
  const uint32_t samples = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 10000;
  const std::vector<double> theta = {0.5, -0.2, 1.0, 0.1};
  auto oracle = MakeOracle(ArgmaxSpec{}, static_cast<int64_t>(theta.size()), std::nullopt);
  if (!oracle.ok()) {
    std::fprintf(stderr, "%s\n", oracle.status().ToString().c_str());
    return 1;
  }
  Executor executor(0);
  PerturbedRequest request;
  request.oracle = oracle->get();
  request.theta = theta;
  request.noise.distribution = NoiseDistribution::kGumbel;
  request.noise.epsilon = eps;
  request.noise.num_samples = samples;
  request.solution_stderr = true;
  auto result = RunPerturbed(executor, request);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
    return 1;
  }
  double z = 0;
  for (double t : theta) z += std::exp(t / eps);
  std::printf("smoothed argmax, GUMBEL eps=%g M=%u (%u threads, %.3f ms)\n", eps, samples,
              result->threads, 1e3 * result->seconds);
  std::printf("%4s %8s %10s %10s %12s\n", "i", "theta", "y_eps", "stderr", "softmax");
  for (size_t i = 0; i < theta.size(); ++i) {
    std::printf("%4zu %8.3f %10.5f %10.5f %12.5f\n", i, theta[i], result->solution[i],
                result->solution_stderr[i], std::exp(theta[i] / eps) / z);
  }
  return 0;
}
