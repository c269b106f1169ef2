// The last step of the top-k selections (TopKOracle's hinted pass, NoiseSelector): the k best
// of a few candidates whose exact keys are known, ties to the lower index as the k-buffer
// (top_k_buffer.h) gives them; and the AVX-512 helpers both use.
#ifndef PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BEST_H_
#define PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BEST_H_

#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

namespace perturbd {

// The most candidates the ranking kernel of TopKOfCandidates ranks (its work grows as their
// square); past it, the k-buffer.
inline constexpr size_t kRankedMax = 64;

// The k best of the n candidates cand (ascending) with exact keys key (key[j] is cand[j]'s),
// into best (ascending), and their keys into bk (k entries, in no particular order: the
// k-buffer's keys, or the ranking kernel's); at least k of the keys are ≥ threshold, and only
// those can be among the k best. avx512: the ranking kernel when at most kRankedMax keys are
// ≥ threshold (the CPU must have AVX-512F). Returns the k-th best key (the least of bk).
double TopKOfCandidates(const int32_t* cand, const double* key, size_t n, size_t k,
                        double threshold, bool avx512, double* bk, int32_t* best);

// The first min(left, 8) lanes of an eight-lane mask, for the tail of an array.
inline uint8_t FirstLanes8(size_t left) {
  return static_cast<uint8_t>(left >= 8 ? 0xFFu : (1u << left) - 1);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
// The integer of each lane's order: its magnitude bits, negated for x < 0. Signed integer
// order is the order of doubles, −0 and +0 are both 0, and neither is INT64_MIN (NaN aside).
__attribute__((target("avx512f"))) inline __m512i OrderedBits8(__m512d x) {
  const __m512i b = _mm512_castpd_si512(x);
  const __m512i s = _mm512_srai_epi64(b, 63);
  const __m512i magnitude =
      _mm512_and_si512(b, _mm512_set1_epi64(std::numeric_limits<int64_t>::max()));
  return _mm512_sub_epi64(_mm512_xor_si512(magnitude, s), s);
}
#endif

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BEST_H_
