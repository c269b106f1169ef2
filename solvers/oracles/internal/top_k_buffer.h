// The k-buffer of the top-k scans (TopKOracle, NoiseSelector): the k best (key, index) pairs
// offered so far, keys descending. Offered in increasing index order, a later index enters
// only with a strictly larger key, so ties go to the lower index: over any subsequence that
// contains the top k of a vector, in index order, it ends holding exactly them.
#ifndef PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BUFFER_H_
#define PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BUFFER_H_

#include <cstddef>
#include <cstdint>

namespace perturbd {

// Offers (key, index) to the buffer bk / bi of capacity k ≥ 1 holding `size` entries.
inline void OfferTopK(double key, int32_t index, size_t k, size_t& size, double* bk,
                      int32_t* bi) {
  if (size == k && !(key > bk[k - 1])) return;
  size_t pos = size == k ? k - 1 : size++;
  while (pos > 0 && key > bk[pos - 1]) {
    bk[pos] = bk[pos - 1];
    bi[pos] = bi[pos - 1];
    --pos;
  }
  bk[pos] = key;
  bi[pos] = index;
}

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_INTERNAL_TOP_K_BUFFER_H_
