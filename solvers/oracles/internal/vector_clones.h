// PERTURBD_ORACLE_VECTOR_CLONES: x86-64 builds compile the marked hot loops three times
// (AVX-512, AVX2, baseline) and pick one at load time. The oracles' results do not depend on
// the clone: comparisons and counts, and element-wise additions (grid_shortest_path's lanes),
// which IEEE rounds the same at any vector width; nothing that could round differently.
#ifndef PERTURBD_SOLVERS_ORACLES_INTERNAL_VECTOR_CLONES_H_
#define PERTURBD_SOLVERS_ORACLES_INTERNAL_VECTOR_CLONES_H_

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define PERTURBD_ORACLE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PERTURBD_ORACLE_VECTOR_CLONES
#endif

namespace perturbd {

// True on a CPU with AVX-512F, for the kernels written with its intrinsics (checked once).
inline bool CpuHasAvx512F() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
#else
  return false;
#endif
}

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_INTERNAL_VECTOR_CLONES_H_
