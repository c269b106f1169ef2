// A binary min-heap over the integers 0..n−1 with decrease-key, for Dijkstra.
//
// Keys live outside the heap (the caller's distance array) and are passed to every call that
// reorders, so one heap serves any key array of length n. The order is total: (key[v], v), so
// ties pop the lowest id first and Dijkstra is deterministic. All memory is allocated at
// construction; `Reset`, `Update` and `PopMin` never allocate.
//
//   IndexedMinHeap heap(n);              // once per workspace
//   heap.Reset();                        // once per solve, O(n)
//   dist[s] = 0; heap.Update(s, dist);
//   while (!heap.empty()) { int32_t u = heap.PopMin(dist); ... }
#ifndef PERTURBD_SOLVERS_ORACLES_INTERNAL_INDEXED_MIN_HEAP_H_
#define PERTURBD_SOLVERS_ORACLES_INTERNAL_INDEXED_MIN_HEAP_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace perturbd::oracle_internal {

class IndexedMinHeap {
 public:
  explicit IndexedMinHeap(int32_t capacity)
      : heap_(static_cast<size_t>(capacity)), state_(static_cast<size_t>(capacity), kUnseen) {}

  // Forgets every element: all ids become unseen.
  void Reset() {
    std::fill(state_.begin(), state_.end(), kUnseen);
    size_ = 0;
  }
  bool empty() const { return size_ == 0; }
  // True once v was inserted (in the heap or popped).
  bool seen(int32_t v) const { return state_[v] != kUnseen; }
  // True once v was popped.
  bool popped(int32_t v) const { return state_[v] == kPopped; }

  // Inserts v (unseen), or restores the order after key[v] decreased (v in the heap).
  void Update(int32_t v, const std::vector<double>& key) {
    int32_t i = state_[v];
    if (i == kUnseen) {
      i = size_++;
      heap_[i] = v;
    }
    SiftUp(i, v, key);
  }

  // Removes and returns the element with the smallest (key, id). Requires !empty().
  int32_t PopMin(const std::vector<double>& key) {
    const int32_t top = heap_[0];
    state_[top] = kPopped;
    if (--size_ > 0) SiftDown(0, heap_[size_], key);
    return top;
  }

 private:
  static constexpr int32_t kUnseen = -1;
  static constexpr int32_t kPopped = -2;

  static bool Less(int32_t a, int32_t b, const std::vector<double>& key) {
    return key[a] < key[b] || (key[a] == key[b] && a < b);
  }
  // Moves v up from the hole at position i.
  void SiftUp(int32_t i, int32_t v, const std::vector<double>& key) {
    while (i > 0) {
      const int32_t parent = (i - 1) / 2;
      if (!Less(v, heap_[parent], key)) break;
      Place(i, heap_[parent]);
      i = parent;
    }
    Place(i, v);
  }
  // Moves v down from the hole at position i.
  void SiftDown(int32_t i, int32_t v, const std::vector<double>& key) {
    while (true) {
      int32_t child = 2 * i + 1;
      if (child >= size_) break;
      if (child + 1 < size_ && Less(heap_[child + 1], heap_[child], key)) ++child;
      if (!Less(heap_[child], v, key)) break;
      Place(i, heap_[child]);
      i = child;
    }
    Place(i, v);
  }
  void Place(int32_t i, int32_t v) {
    heap_[i] = v;
    state_[v] = i;
  }

  std::vector<int32_t> heap_;   // heap_[0..size_) are the ids in heap order
  std::vector<int32_t> state_;  // position in heap_, or kUnseen / kPopped
  int32_t size_ = 0;
};

}  // namespace perturbd::oracle_internal

#endif  // PERTURBD_SOLVERS_ORACLES_INTERNAL_INDEXED_MIN_HEAP_H_
