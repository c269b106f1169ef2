// Host–device steps of the GPU estimator pipeline (gpu_pipeline.h runs them in this order for
// each chunk of samples). Each step is a function of one thread index (or one sample and a
// `Warp`, device_oracles.h), so that cuda_kernels.cu launches it on the GPU and HostLauncher
// (host_launcher.h) runs the identical code in a loop on the CPU, which is how the CPU tests
// check the whole pipeline against RunPerturbed without a GPU.
//
// A chunk holds the samples m0 ≤ m < m0 + mc of every instance; its row r = b·mc + (m − m0).
//   Perturb          η[r, i] = θ_b,i + εZ (ADDITIVE) or θ_b,i · exp(εZ − ε²/2) (MULTIPLICATIVE),
//                    rounded to θ's dtype, Z from NoiseQuad (noise.h): bit-identical to FillNoise
//                    and estimator.cc's FormEta (ADDITIVE; exp() may differ in the last ulp)
//   Solve            y_r = y*(η_r) (device_oracles.h); grid clamps η_r in place
//   SampleScalars    ⟨y_r, η_r⟩, FY loss term, s_r = ⟨y_r, g⟩ (g: the cotangent)
//   Accumulate       per (b, j): Σ_m y_m,j, Σ (unit mean)², Σ w y, Σ ∇ν_j, Σ s_m ∇ν_j,
//                    Jacobian columns Σ_m y_m ∇ν_m,j and the antithetic pair sums, with ∇ν
//                    recomputed from the counter-based noise (NoiseAt) instead of stored
//   InstanceScalars  per b: Σ_m of the sample scalars and clamped counts
//   FinalizeJacobian J = (S_yg − a ⊗ G + P) / (c ε) (/ θ_j when multiplicative), estimator.h
// Every sum runs over m in increasing order in one thread: deterministic, and equal to the
// CPU's sums up to the grouping of float64 additions (the CPU adds per-block partial sums).
#ifndef PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ESTIMATOR_H_
#define PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ESTIMATOR_H_

#include <cmath>
#include <cstdint>

#include "solvers/perturbed/cuda/device_oracles.h"
#include "solvers/perturbed/noise.h"
#include "solvers/perturbed/philox.h"

namespace perturbd::gpu_internal {

// Z[row, i] and ∇ν(Z[row, i]) for one coordinate: NoiseLane (noise.h), the lane of
// NoiseQuad's quad computed alone in the row's precision, so the bits equal FillNoise's.
PERTURBD_HOST_DEVICE void NoiseAt(const NoiseRow& row, uint32_t i, double& z, double& grad_nu) {
  NoiseLane(row, i, z, grad_nu);
}

// w = exp(εZ − ε²/2), the multiplicative weight (∂η/∂θ), as estimator.cc's FormEta writes it.
PERTURBD_HOST_DEVICE double MultiplicativeWeight(double z, double epsilon) {
  const double shift = 0.5 * epsilon * epsilon;
  return std::exp(epsilon * z - shift);
}

// One coordinate of η in θ's dtype (computed in double, rounded once).
PERTURBD_HOST_DEVICE double PerturbedCoordinate(double theta, double z, double epsilon,
                                                bool multiplicative, bool f32) {
  const double v = multiplicative ? theta * MultiplicativeWeight(z, epsilon) : theta + epsilon * z;
  return f32 ? static_cast<double>(static_cast<float>(v)) : v;
}

// Which stream the noise of (instance b, sample m) comes from (perturbed_optimizer.cc RowBase).
struct NoiseSource {
  const uint64_t* keys = nullptr;  // [B]: the request seed, or instance_seeds[b]
  bool instance_seeds = false;     // instance counter 0 instead of b
  bool antithetic = false;
  NoiseDistribution distribution = NoiseDistribution::kNormal;
  bool single = false;  // single-precision noise (NoiseRow::single; every request sets it)

  PERTURBD_HOST_DEVICE NoiseRow Row(int64_t b, int64_t m) const {
    NoiseRow row;
    row.key = keys[b];
    row.instance = instance_seeds ? 0u : static_cast<uint32_t>(b);
    row.sample = static_cast<uint32_t>(m);
    row.antithetic = antithetic;
    row.distribution = distribution;
    row.single = single;
    return row;
  }
};

// Per-sample buffers of one chunk (R = B·mc rows).
struct SampleBuffers {
  double* eta = nullptr;        // [R, d]
  float* dense = nullptr;       // [R, d] y
  int32_t* index = nullptr;     // [R, K] sparse y, K = max_nonzeros
  float* value = nullptr;       // [R, K]
  int32_t* nnz = nullptr;       // [R]
  uint32_t* clamped = nullptr;  // [R]
  double* y_dot_eta = nullptr;  // [R] ⟨y, η⟩
  double* loss = nullptr;       // [R] ⟨η, y − t⟩ (MAXIMIZE) or ⟨η, t − y⟩
  double* y_dot_g = nullptr;    // [R] ⟨y, cotangent⟩
  // grid_shortest_path scratch: element v of row r at [v · scratch_stride + r].
  double* dist = nullptr;
  int32_t* pred = nullptr;
  int32_t* heap = nullptr;
  int32_t* state = nullptr;
  int64_t scratch_stride = 0;

  PERTURBD_HOST_DEVICE RowOutput Output(int64_t r, int32_t d, int32_t k) const {
    return RowOutput{index + r * k, value + r * k, dense + r * d, nnz + r};
  }
};

enum class DeviceOracleKind : int32_t { kArgmax, kTopK, kThreshold, kRanking, kGridShortestPath };

// An oracle as the kernels see it (gpu_pipeline.cc DescribeOracle).
struct DeviceOracle {
  DeviceOracleKind kind = DeviceOracleKind::kArgmax;
  int32_t dimension = 0;
  int32_t max_nonzeros = 1;  // K ≥ 1
  int32_t k = 0;             // top_k
  int32_t rows = 0;          // grid
  int32_t cols = 0;
  bool eight = true;
  bool maximize = true;

  // One thread per sample (grid) rather than one warp.
  PERTURBD_HOST_DEVICE bool per_thread() const {
    return kind == DeviceOracleKind::kGridShortestPath;
  }
};

// ---------------------------------------------------------------------------------------------
// Perturb: one thread per (row, quad).
struct PerturbParams {
  NoiseSource noise;
  const double* theta = nullptr;  // [B, d]
  int64_t batch = 0;
  int32_t d = 0;
  int64_t m0 = 0;
  int64_t mc = 0;
  double epsilon = 1.0;
  bool multiplicative = false;
  bool f32 = false;
  double* eta = nullptr;  // [B·mc, d]

  PERTURBD_HOST_DEVICE int64_t quads() const { return (static_cast<int64_t>(d) + 31) / 32 * 8; }
  PERTURBD_HOST_DEVICE int64_t threads() const { return batch * mc * quads(); }
};

PERTURBD_HOST_DEVICE void PerturbThread(const PerturbParams& p, int64_t t) {
  const int64_t nq = p.quads();
  const int64_t r = t / nq;
  const uint32_t q = static_cast<uint32_t>(t % nq);
  const int64_t b = r / p.mc;
  const NoiseRow row = p.noise.Row(b, p.m0 + r % p.mc);
  double z[4], g[4];
  NoiseQuad(row, q, z, g);
  const double* theta = p.theta + b * p.d;
  double* eta = p.eta + r * p.d;
  for (uint32_t lane = 0; lane < 4; ++lane) {
    const uint32_t i = NoiseCoordinate(q, lane);
    if (i < static_cast<uint32_t>(p.d)) {
      eta[i] = PerturbedCoordinate(theta[i], z[lane], p.epsilon, p.multiplicative, p.f32);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Solve: one warp per row (argmax, top_k, threshold, ranking) or one thread (grid).
struct SolveParams {
  DeviceOracle oracle;
  int64_t rows = 0;
  SampleBuffers buf;
};

template <class Warp>
PERTURBD_HOST_DEVICE void SolveRow(const Warp& w, const SolveParams& p, int64_t r) {
  const DeviceOracle& o = p.oracle;
  const int32_t d = o.dimension;
  const double* eta = p.buf.eta + r * d;
  const RowOutput out = p.buf.Output(r, d, o.max_nonzeros);
  switch (o.kind) {
    case DeviceOracleKind::kArgmax:
      SolveArgmax(w, eta, d, o.maximize, out);
      break;
    case DeviceOracleKind::kTopK:
      SolveTopK(w, eta, d, o.k, o.maximize, out);
      break;
    case DeviceOracleKind::kThreshold:
      SolveThreshold(w, eta, d, o.maximize, out);
      break;
    case DeviceOracleKind::kRanking:
      SolveRanking(w, eta, d, o.maximize, out);
      break;
    case DeviceOracleKind::kGridShortestPath:
      break;  // SolveGridRow
  }
  if (w.lane() == 0) p.buf.clamped[r] = 0;
}

PERTURBD_HOST_DEVICE void SolveGridRow(const SolveParams& p, int64_t r) {
  const DeviceOracle& o = p.oracle;
  const SampleBuffers& b = p.buf;
  const GridScratch s{b.dist + r, b.pred + r, b.heap + r, b.state + r, b.scratch_stride};
  b.clamped[r] = SolveGridShortestPath(b.eta + r * o.dimension, o.rows, o.cols, o.eight, s,
                                       b.Output(r, o.dimension, o.max_nonzeros));
}

// ---------------------------------------------------------------------------------------------
// SampleScalars: one warp per row. With one lane the sums run in the CPU's order.
struct ScalarParams {
  int64_t rows = 0;
  int64_t mc = 0;
  int32_t d = 0;
  int32_t max_nonzeros = 1;
  bool maximize = true;
  const double* targets = nullptr;    // [B, d] or null
  const double* cotangent = nullptr;  // [B, d] or null
  SampleBuffers buf;
};

template <class Warp>
PERTURBD_HOST_DEVICE void SampleScalarsRow(const Warp& w, const ScalarParams& p, int64_t r) {
  const int64_t b = r / p.mc;
  const int32_t d = p.d;
  const double* eta = p.buf.eta + r * d;
  const int32_t* index = p.buf.index + r * p.max_nonzeros;
  const float* value = p.buf.value + r * p.max_nonzeros;
  const int32_t nnz = p.buf.nnz[r];
  const double* cot = p.cotangent != nullptr ? p.cotangent + b * d : nullptr;
  double y_eta = 0.0, y_g = 0.0, t_eta = 0.0;
  for (int32_t k = w.lane(); k < nnz; k += w.width()) {
    const double v = value[k];
    y_eta += v * eta[index[k]];
    if (cot != nullptr) y_g += v * cot[index[k]];
  }
  if (p.targets != nullptr) {
    const double* t = p.targets + b * d;
    for (int32_t i = w.lane(); i < d; i += w.width()) t_eta += t[i] * eta[i];
  }
  y_eta = w.Sum(y_eta);
  y_g = w.Sum(y_g);
  t_eta = w.Sum(t_eta);
  if (w.lane() == 0) {
    p.buf.y_dot_eta[r] = y_eta;
    p.buf.y_dot_g[r] = y_g;
    p.buf.loss[r] = p.maximize ? y_eta - t_eta : t_eta - y_eta;
  }
}

// ---------------------------------------------------------------------------------------------
// Sums of one request on the device, [B, d] / [B, d, d] / [B]; null when not needed.
struct DeviceSums {
  double* sum_y = nullptr;
  double* sum_unit2 = nullptr;
  double* sum_wy = nullptr;
  double* sum_grad = nullptr;
  double* ssg = nullptr;
  double* pair_ssg = nullptr;
  double* syg = nullptr;                  // [B, d, d], becomes J after FinalizeJacobian
  double* pair_syg = nullptr;             // [B, d, d]
  double* value = nullptr;                // [B]
  double* loss = nullptr;                 // [B]
  double* sum_s = nullptr;                // [B]
  unsigned long long* clamped = nullptr;  // [B]
};

// Accumulate: one thread per (b, j), over the chunk's samples in order.
struct AccumulateParams {
  NoiseSource noise;
  int64_t batch = 0;
  int32_t d = 0;
  int32_t max_nonzeros = 1;
  int64_t m0 = 0;
  int64_t mc = 0;
  int32_t samples_per_unit = 1;
  double epsilon = 1.0;
  bool stderr_sums = false;      // sum_unit2
  bool fy_weights = false;       // sum_wy (FY with MULTIPLICATIVE)
  bool grad_sum = false;         // sum_grad
  bool vjp = false;              // ssg
  bool jacobian = false;         // syg
  bool pair_derivative = false;  // pair_ssg / pair_syg (antithetic LEAVE_ONE_OUT)
  SampleBuffers buf;
  DeviceSums sums;

  PERTURBD_HOST_DEVICE bool needs_noise() const {
    return fy_weights || grad_sum || vjp || jacobian;
  }
  PERTURBD_HOST_DEVICE int64_t threads() const { return batch * d; }
};

PERTURBD_HOST_DEVICE void AccumulateThread(const AccumulateParams& p, int64_t t) {
  const int32_t d = p.d;
  const int64_t b = t / d;
  const int32_t j = static_cast<int32_t>(t % d);
  const int64_t col = b * d + j;
  const DeviceSums& s = p.sums;
  const SampleBuffers& buf = p.buf;
  const int32_t K = p.max_nonzeros;
  const bool pairs = p.samples_per_unit == 2;
  double sum_y = s.sum_y[col];
  double unit2 = p.stderr_sums ? s.sum_unit2[col] : 0.0;
  double wy = p.fy_weights ? s.sum_wy[col] : 0.0;
  double grad = p.grad_sum ? s.sum_grad[col] : 0.0;
  double ssg = p.vjp ? s.ssg[col] : 0.0;
  double pair_ssg = p.vjp && p.pair_derivative ? s.pair_ssg[col] : 0.0;
  const int64_t units = p.mc / p.samples_per_unit;
  for (int64_t u = 0; u < units; ++u) {
    int64_t rows[2] = {0, 0};
    double y[2] = {0.0, 0.0}, g[2] = {0.0, 0.0}, sv[2] = {0.0, 0.0};
    for (int32_t q = 0; q < p.samples_per_unit; ++q) {
      const int64_t mm = u * p.samples_per_unit + q;
      const int64_t r = b * p.mc + mm;
      rows[q] = r;
      y[q] = buf.dense[r * d + j];
      // The CPU adds the non-zeros of y only.
      if (y[q] != 0.0) {
        sum_y += y[q];
        if (p.stderr_sums && !pairs) unit2 += y[q] * y[q];
      }
      if (!p.needs_noise()) continue;
      double z;
      NoiseAt(p.noise.Row(b, p.m0 + mm), static_cast<uint32_t>(j), z, g[q]);
      if (p.fy_weights && y[q] != 0.0) wy += MultiplicativeWeight(z, p.epsilon) * y[q];
      if (p.grad_sum) grad += g[q];
      if (p.vjp) {
        sv[q] = buf.y_dot_g[r];
        ssg += sv[q] * g[q];
      }
      if (p.jacobian) {
        const int32_t nnz = buf.nnz[r];
        for (int32_t k = 0; k < nnz; ++k) {
          const int64_t i = buf.index[r * K + k];
          s.syg[(b * d + i) * d + j] += static_cast<double>(buf.value[r * K + k]) * g[q];
        }
      }
    }
    if (!pairs) continue;
    // Pair sums over the union of both supports: v_i = y_2k,i + y_2k+1,i.
    if (p.stderr_sums) {
      const double v = y[0] + y[1];
      if (v != 0.0) unit2 += 0.25 * v * v;
    }
    if (!p.pair_derivative) continue;
    const double pg = g[0] + g[1];
    if (p.vjp) pair_ssg += (sv[0] + sv[1]) * pg;
    if (p.jacobian) {
      const int64_t r0 = rows[0], r1 = rows[1];
      for (int32_t k = 0; k < buf.nnz[r0]; ++k) {
        const int64_t i = buf.index[r0 * K + k];
        const double v =
            static_cast<double>(buf.dense[r0 * d + i]) + static_cast<double>(buf.dense[r1 * d + i]);
        if (v != 0.0) s.pair_syg[(b * d + i) * d + j] += v * pg;
      }
      for (int32_t k = 0; k < buf.nnz[r1]; ++k) {
        const int64_t i = buf.index[r1 * K + k];
        if (buf.dense[r0 * d + i] != 0.0f) continue;  // visited with sample 2k
        const double v = buf.dense[r1 * d + i];
        if (v != 0.0) s.pair_syg[(b * d + i) * d + j] += v * pg;
      }
    }
  }
  s.sum_y[col] = sum_y;
  if (p.stderr_sums) s.sum_unit2[col] = unit2;
  if (p.fy_weights) s.sum_wy[col] = wy;
  if (p.grad_sum) s.sum_grad[col] = grad;
  if (p.vjp) s.ssg[col] = ssg;
  if (p.vjp && p.pair_derivative) s.pair_ssg[col] = pair_ssg;
}

// InstanceScalars: one thread per instance b.
struct InstanceScalarParams {
  int64_t batch = 0;
  int64_t mc = 0;
  bool loss = false;
  bool vjp = false;
  SampleBuffers buf;
  DeviceSums sums;
};

PERTURBD_HOST_DEVICE void InstanceScalarsThread(const InstanceScalarParams& p, int64_t b) {
  double value = p.sums.value[b];
  double loss = p.sums.loss[b];
  double sum_s = p.sums.sum_s[b];
  unsigned long long clamped = p.sums.clamped[b];
  for (int64_t mm = 0; mm < p.mc; ++mm) {
    const int64_t r = b * p.mc + mm;
    value += p.buf.y_dot_eta[r];
    if (p.loss) loss += p.buf.loss[r];
    if (p.vjp) sum_s += p.buf.y_dot_g[r];
    clamped += p.buf.clamped[r];
  }
  p.sums.value[b] = value;
  p.sums.loss[b] = loss;
  p.sums.sum_s[b] = sum_s;
  p.sums.clamped[b] = clamped;
}

// ---------------------------------------------------------------------------------------------
// FinalizeJacobian: one thread per entry (b, i, j), in place over S_yg; FinalizeInstance's
// formula, operation for operation.
enum class JacobianBaseline : int32_t {
  kNone,         // a = 0
  kUnperturbed,  // a = y*(θ_b)
  kLeaveOneOut,  // a = ȳ (antithetic: ȳ · M/(M−2))
};

struct JacobianParams {
  int64_t batch = 0;
  int32_t d = 0;
  double* jacobian = nullptr;          // [B, d, d]: S_yg in, J out
  const double* pair_syg = nullptr;    // [B, d, d] or null
  const double* sum_grad = nullptr;    // [B, d] G
  const double* sum_y = nullptr;       // [B, d]
  const float* unperturbed = nullptr;  // [B, d] y*(θ_b)
  const double* theta = nullptr;       // [B, d]
  JacobianBaseline baseline = JacobianBaseline::kNone;
  bool antithetic = false;
  double samples = 1.0;     // M
  double scale = 1.0;       // 1 / (c ε)
  double pair_scale = 0.0;  // 1 / (M − 2) for antithetic LEAVE_ONE_OUT, else 0
  bool multiplicative = false;

  PERTURBD_HOST_DEVICE int64_t threads() const {
    return batch * static_cast<int64_t>(d) * static_cast<int64_t>(d);
  }
};

PERTURBD_HOST_DEVICE void FinalizeJacobianThread(const JacobianParams& p, int64_t e) {
  const int64_t d = p.d;
  const int64_t b = e / (d * d);
  const int64_t i = (e / d) % d;
  const int64_t j = e % d;
  double v = p.jacobian[e];
  if (p.baseline != JacobianBaseline::kNone) {
    double a;
    if (p.baseline == JacobianBaseline::kUnperturbed) {
      a = p.unperturbed[b * d + i];
    } else {
      a = p.sum_y[b * d + i] / p.samples;
      if (p.antithetic) a *= p.samples / (p.samples - 2.0);
    }
    v -= a * p.sum_grad[b * d + j];
  }
  if (p.pair_scale != 0.0) v += p.pair_scale * p.pair_syg[e];
  v *= p.scale;
  if (p.multiplicative) v /= p.theta[b * d + j];
  p.jacobian[e] = v;
}

}  // namespace perturbd::gpu_internal

#endif  // PERTURBD_SOLVERS_PERTURBED_CUDA_DEVICE_ESTIMATOR_H_
