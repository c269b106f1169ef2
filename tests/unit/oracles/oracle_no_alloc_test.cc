// Solve must not allocate: every oracle's scratch memory comes from its workspace and y's
// storage is reserved once. (linear_program is the documented exception: COIN-OR allocates.) This
// binary replaces the global operator new to count calls. GCC flags free() in the replaced operator
// delete as mismatched with new; it is not, since the replaced operator new calls malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "tests/unit/oracles/oracle_test_util.h"

namespace {
std::atomic<int64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace perturbd {
namespace {

TEST(OracleSolve, AllocatesNothing) {
  const GraphShortestPathSpec dag = {.num_nodes = 5,
                                     .edge_sources = {0, 0, 1, 2, 3, 1},
                                     .edge_targets = {1, 2, 3, 3, 4, 4},
                                     .source = 0,
                                     .target = 4};
  GraphShortestPathSpec cyclic = dag;
  cyclic.edge_sources.push_back(4);
  cyclic.edge_targets.push_back(0);
  // Two components: a 5-node graph with parallel edges and a separate edge.
  const SpanningTreeSpec tree = {.num_nodes = 9,
                                 .edge_sources = {0, 1, 2, 3, 0, 1, 1, 7},
                                 .edge_targets = {1, 2, 3, 4, 4, 2, 3, 8}};
  struct Case {
    OracleSpec spec;
    int64_t dimension;
    std::optional<Sense> sense;
  };
  const std::vector<Case> cases = {
      {ArgmaxSpec{}, 50, Sense::kMaximize},
      {ArgmaxSpec{}, 50, Sense::kMinimize},
      {TopKSpec{.k = 7}, 50, Sense::kMaximize},
      {TopKSpec{.k = 50}, 50, Sense::kMinimize},
      {ThresholdSpec{}, 50, std::nullopt},
      {RankingSpec{}, 50, Sense::kMinimize},
      {GridShortestPathSpec{.rows = 7, .cols = 8, .connectivity = Connectivity::kFour}, 56,
       std::nullopt},
      {GridShortestPathSpec{.rows = 8, .cols = 7}, 56, std::nullopt},
      {dag, 6, Sense::kMaximize},
      {dag, 6, Sense::kMinimize},
      {cyclic, 7, std::nullopt},
      {AssignmentSpec{.rows = 6, .cols = 6}, 36, Sense::kMaximize},
      {AssignmentSpec{.rows = 4, .cols = 9}, 36, Sense::kMinimize},
      {AssignmentSpec{.rows = 9, .cols = 4}, 36, std::nullopt},
      {tree, 8, Sense::kMinimize},
      {tree, 8, Sense::kMaximize},
      {KnapsackSpec{.weights = {3, 0, 5, 7, 2, 9, 4}, .capacity = 13}, 7, Sense::kMaximize},
      {KnapsackSpec{.weights = {3, 0, 5, 7, 2, 9, 4}, .capacity = 13}, 7, Sense::kMinimize},
      {KnapsackSpec{.weights = {1, 2, 3}, .capacity = 100}, 3, std::nullopt},  // all fit
  };
  std::mt19937_64 rng(71);
  for (const Case& c : cases) {
    auto oracle = oracle_test::MakeOk(c.spec, c.dimension, c.sense);
    SCOPED_TRACE(std::string(oracle->name()));
    auto ws = oracle->NewWorkspace();
    SparseVector y(oracle->dimension());
    std::vector<std::vector<double>> thetas;
    for (int i = 0; i < 50; ++i) {
      thetas.push_back(oracle_test::UniformVector(rng, c.dimension, -1.0, 3.0));
    }
    const int64_t before = allocations.load();
    for (auto& theta : thetas) oracle->Solve(absl::MakeSpan(theta), *ws, y);
    EXPECT_EQ(allocations.load() - before, 0);
  }
}

}  // namespace
}  // namespace perturbd
