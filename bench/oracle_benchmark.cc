// Throughput of one oracle solve (ns per Solve, single thread), for every oracle at several
// sizes, on θs drawn the way the estimator draws them: one base θ per benchmark and a pool of
// 64 perturbed copies η = θ + 0.3·Z (positive costs: θ ⊙ exp(0.3·Z − 0.045)), solved in turn
// with one workspace. So warm-starting oracles (linear_program) see a realistic sequence; the
// `/cold` variants call OracleWorkspace::Reset before every solve to show what warm starts save.
//
// Counters: `d`, and `cost_units/s` = cost_per_solve() / time per solve — the ratio of the
// oracle's declared cost (used for work limits and scheduling) to its measured speed, so
// `1e9 / cost_units/s` is ns per declared cost unit (ideally similar across oracles).
//
//   build/bench/oracle_benchmark --benchmark_min_time=0.2
//   build/bench/oracle_benchmark --benchmark_filter='assignment|linear_program'
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Case {
  std::string name;
  OracleSpec spec;
  int64_t d = 0;
  std::optional<Sense> sense;
  bool positive_costs = false;  // Dijkstra oracles: θ > 0, multiplicative noise
  bool cold = false;            // Reset the workspace before every solve
  // Grids: the peer's Warcraft terrain costs {0.8, 1.2, 5.3, 7.7, 9.2} with additive noise
  // 0.1·Z, the e2e workload (cheap valleys between expensive cells).
  bool terrain = false;
};

// A 4-neighbour grid of rows × cols nodes with edges pointing right and down: a DAG from node
// 0 to the last node (E = 2·rows·cols − rows − cols).
GraphShortestPathSpec GridDag(uint32_t rows, uint32_t cols) {
  GraphShortestPathSpec g;
  g.num_nodes = rows * cols;
  for (uint32_t r = 0; r < rows; ++r) {
    for (uint32_t c = 0; c < cols; ++c) {
      const uint32_t v = r * cols + c;
      if (c + 1 < cols) {
        g.edge_sources.push_back(v);
        g.edge_targets.push_back(v + 1);
      }
      if (r + 1 < rows) {
        g.edge_sources.push_back(v);
        g.edge_targets.push_back(v + cols);
      }
    }
  }
  g.source = 0;
  g.target = rows * cols - 1;
  return g;
}

// A random graph with a Hamiltonian cycle (so it is strongly connected), then random edges.
GraphShortestPathSpec RandomCyclicGraph(uint32_t nodes, uint32_t edges, uint64_t seed) {
  std::mt19937_64 rng(seed);
  GraphShortestPathSpec g;
  g.num_nodes = nodes;
  for (uint32_t v = 0; v < nodes; ++v) {
    g.edge_sources.push_back(v);
    g.edge_targets.push_back((v + 1) % nodes);
  }
  std::uniform_int_distribution<uint32_t> node(0, nodes - 1);
  while (g.edge_sources.size() < edges) {
    const uint32_t a = node(rng), b = node(rng);
    if (a == b) continue;
    g.edge_sources.push_back(a);
    g.edge_targets.push_back(b);
  }
  g.source = 0;
  g.target = nodes / 2;
  return g;
}

// A random connected undirected graph: a random tree plus random edges.
SpanningTreeSpec RandomConnectedGraph(uint32_t nodes, uint32_t edges, uint64_t seed) {
  std::mt19937_64 rng(seed);
  SpanningTreeSpec g;
  g.num_nodes = nodes;
  for (uint32_t v = 1; v < nodes; ++v) {
    g.edge_sources.push_back(v);
    g.edge_targets.push_back(std::uniform_int_distribution<uint32_t>(0, v - 1)(rng));
  }
  std::uniform_int_distribution<uint32_t> node(0, nodes - 1);
  while (g.edge_sources.size() < edges) {
    const uint32_t a = node(rng), b = node(rng);
    if (a == b) continue;
    g.edge_sources.push_back(a);
    g.edge_targets.push_back(b);
  }
  return g;
}

KnapsackSpec RandomKnapsack(int items, int64_t capacity, uint64_t seed) {
  std::mt19937_64 rng(seed);
  KnapsackSpec k;
  for (int i = 0; i < items; ++i) {
    k.weights.push_back(std::uniform_int_distribution<int64_t>(1, 100)(rng));
  }
  k.capacity = capacity;
  return k;
}

// The assignment polytope as an LP (rows = cols = n): row and column sums 1, y ∈ [0, 1].
LinearProgramSpec AssignmentLp(uint32_t n, bool integer) {
  LinearProgramSpec lp;
  lp.num_variables = n * n;
  for (uint32_t r = 0; r < n; ++r) {
    for (uint32_t c = 0; c < n; ++c) {
      lp.row_index.insert(lp.row_index.end(), {r, n + c});
      lp.column_index.insert(lp.column_index.end(), {r * n + c, r * n + c});
      lp.coefficient.insert(lp.coefficient.end(), {1.0, 1.0});
    }
  }
  lp.row_lower.assign(2 * n, 1.0);
  lp.row_upper.assign(2 * n, 1.0);
  lp.variable_upper.assign(n * n, 1.0);
  if (integer) lp.integer.assign(n * n, true);
  return lp;
}

// Unit flow from the first to the last node of a grid DAG, y ≥ 0 (default bounds).
LinearProgramSpec FlowLp(const GraphShortestPathSpec& g) {
  LinearProgramSpec lp;
  const uint32_t m = static_cast<uint32_t>(g.edge_sources.size());
  lp.num_variables = m;
  lp.row_lower.assign(g.num_nodes, 0.0);
  lp.row_lower[g.source] = 1.0;
  lp.row_lower[g.target] = -1.0;
  lp.row_upper = lp.row_lower;
  for (uint32_t e = 0; e < m; ++e) {
    lp.row_index.insert(lp.row_index.end(), {g.edge_sources[e], g.edge_targets[e]});
    lp.column_index.insert(lp.column_index.end(), {e, e});
    lp.coefficient.insert(lp.coefficient.end(), {1.0, -1.0});
  }
  return lp;
}

// A dense random packing LP: A ≥ 0, A y ≤ 1·n/4, y ∈ [0, 1] (bounded, feasible at 0).
LinearProgramSpec RandomPackingLp(uint32_t vars, uint32_t rows, bool integer, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coef(0.0, 1.0);
  LinearProgramSpec lp;
  lp.num_variables = vars;
  for (uint32_t i = 0; i < rows; ++i) {
    for (uint32_t j = 0; j < vars; ++j) {
      lp.row_index.push_back(i);
      lp.column_index.push_back(j);
      lp.coefficient.push_back(coef(rng));
    }
    lp.row_lower.push_back(-kInf);
    lp.row_upper.push_back(vars / 8.0);
  }
  lp.variable_upper.assign(vars, 1.0);
  if (integer) lp.integer.assign(vars, true);
  return lp;
}

LinearProgramSpec KnapsackMilp(const KnapsackSpec& k) {
  LinearProgramSpec lp;
  lp.num_variables = static_cast<uint32_t>(k.weights.size());
  for (uint32_t j = 0; j < lp.num_variables; ++j) {
    lp.row_index.push_back(0);
    lp.column_index.push_back(j);
    lp.coefficient.push_back(static_cast<double>(k.weights[j]));
  }
  lp.row_lower = {-kInf};
  lp.row_upper = {static_cast<double>(k.capacity)};
  lp.variable_upper.assign(lp.num_variables, 1.0);
  lp.integer.assign(lp.num_variables, true);
  return lp;
}

int64_t Dim(const OracleSpec& spec, int64_t any) { return StructuralDimension(spec).value_or(any); }

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto add = [&](std::string name, OracleSpec spec, int64_t any_d = 0,
                 std::optional<Sense> sense = std::nullopt, bool positive = false) {
    const int64_t d = Dim(spec, any_d);
    cases.push_back({std::move(name), std::move(spec), d, sense, positive});
  };
  for (int64_t d : {100, 1000, 10000}) add(absl::StrCat("argmax/d=", d), ArgmaxSpec{}, d);
  for (int64_t d : {100, 1000, 10000}) {
    add(absl::StrCat("top_k/k=10/d=", d), TopKSpec{.k = 10}, d);
  }
  add("threshold/d=1000", ThresholdSpec{}, 1000);
  for (int64_t d : {100, 1000}) add(absl::StrCat("ranking/d=", d), RankingSpec{}, d);
  for (uint32_t n : {12u, 30u}) {
    add(absl::StrCat("grid_shortest_path/", n, "x", n), GridShortestPathSpec{.rows = n, .cols = n},
        0, std::nullopt, true);
    add(absl::StrCat("grid_shortest_path/", n, "x", n, "/terrain"),
        GridShortestPathSpec{.rows = n, .cols = n}, 0, std::nullopt, true);
    cases.back().terrain = true;
  }
  for (uint32_t n : {10u, 30u}) {
    add(absl::StrCat("graph_shortest_path/dag_grid/", n, "x", n), GridDag(n, n), 0,
        Sense::kMinimize);
  }
  add("graph_shortest_path/cyclic/V=1000/E=5000", RandomCyclicGraph(1000, 5000, 1), 0, std::nullopt,
      true);
  for (uint32_t n : {5u, 10u, 50u, 100u, 200u}) {
    add(absl::StrCat("assignment/", n, "x", n), AssignmentSpec{.rows = n, .cols = n});
  }
  add("assignment/50x200", AssignmentSpec{.rows = 50, .cols = 200});
  add("spanning_tree/V=30/E=100", RandomConnectedGraph(30, 100, 12));
  add("spanning_tree/V=60/E=250", RandomConnectedGraph(60, 250, 13));
  add("spanning_tree/V=100/E=500", RandomConnectedGraph(100, 500, 2));
  add("spanning_tree/V=1000/E=5000", RandomConnectedGraph(1000, 5000, 3));
  add("spanning_tree/V=10000/E=50000", RandomConnectedGraph(10000, 50000, 4));
  add("knapsack/n=50/C=1000", RandomKnapsack(50, 1000, 5));
  add("knapsack/n=100/C=2500", RandomKnapsack(100, 2500, 6));
  add("knapsack/n=1000/C=25000", RandomKnapsack(1000, 25000, 7));
  const std::vector<std::pair<std::string, LinearProgramSpec>> programs = {
      {"lp/assignment/5x5", AssignmentLp(5, false)},
      {"lp/assignment/20x20", AssignmentLp(20, false)},
      {"lp/flow_dag_grid/10x10", FlowLp(GridDag(10, 10))},
      {"lp/packing/50x20", RandomPackingLp(50, 20, false, 8)},
      {"lp/packing/200x50", RandomPackingLp(200, 50, false, 9)},
      {"milp/assignment/5x5", AssignmentLp(5, true)},
      {"milp/knapsack/n=30", KnapsackMilp(RandomKnapsack(30, 600, 10))},
      {"milp/packing/20x5", RandomPackingLp(20, 5, true, 11)},
  };
  for (const auto& [name, lp] : programs) {
    for (bool cold : {false, true}) {
      cases.push_back({absl::StrCat("linear_program/", name, cold ? "/cold" : ""), lp,
                       static_cast<int64_t>(lp.num_variables), std::nullopt, false, cold});
    }
  }
  return cases;
}

// 64 perturbed cost vectors of case c (the Dijkstra oracles need costs ≥ 0).
std::vector<std::vector<double>> CostPool(const Case& c) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(c.positive_costs ? 1.0 : -1.0, 2.0);
  std::vector<double> base(static_cast<size_t>(c.d));
  for (double& v : base) v = uniform(rng);
  if (c.terrain) {
    constexpr double kTerrain[] = {0.8, 1.2, 5.3, 7.7, 9.2};
    std::uniform_int_distribution<int> pick(0, 4);
    for (double& v : base) v = kTerrain[pick(rng)];
  }
  constexpr int kPool = 64;
  const double kEps = c.terrain ? 0.1 : 0.3;
  std::vector<std::vector<double>> pool(kPool, base);
  for (auto& eta : pool) {
    for (size_t i = 0; i < eta.size(); ++i) {
      const double z = normal(rng);
      eta[i] = c.positive_costs && !c.terrain ? base[i] * std::exp(kEps * z - 0.5 * kEps * kEps)
                                              : base[i] + kEps * z;
    }
  }
  return pool;
}

// One Solve per iteration, or with `batched` (oracles with a batched path) one SolveBatch on
// batch_width() cost vectors; `per_solve` is then the time per solve, to compare with the
// unbatched time.
void BM_Solve(benchmark::State& state, const Case& c, bool batched) {
  auto made = MakeOracle(c.spec, c.d, c.sense);
  if (!made.ok()) {
    state.SkipWithError(made.status().ToString().c_str());
    return;
  }
  const Oracle& oracle = **made;
  const std::vector<std::vector<double>> pool = CostPool(c);
  const size_t width = batched ? static_cast<size_t>(oracle.batch_width()) : 1;
  // Dijkstra oracles clamp in place: each solve gets a fresh copy.
  std::vector<std::vector<double>> scratch(width, pool[0]);
  std::vector<absl::Span<double>> thetas;
  std::vector<SparseVector> ys(width, SparseVector(oracle.dimension()));
  std::vector<SparseVector*> y_ptrs;
  for (size_t j = 0; j < width; ++j) {
    thetas.push_back(absl::MakeSpan(scratch[j]));
    y_ptrs.push_back(&ys[j]);
  }
  auto workspace = oracle.NewWorkspace();
  size_t k = 0;
  int64_t failures = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < width; ++j) {
      std::copy(pool[k].begin(), pool[k].end(), scratch[j].begin());
      k = (k + 1) % pool.size();
    }
    if (c.cold) workspace->Reset();
    if (batched) {
      oracle.SolveBatch(thetas, *workspace, y_ptrs);
    } else {
      const absl::StatusOr<int64_t> solved = oracle.SolveChecked(thetas[0], *workspace, ys[0]);
      if (!solved.ok()) ++failures;
    }
    benchmark::DoNotOptimize(ys[0].size());
  }
  if (failures > 0) state.SkipWithError("a solve failed");
  state.counters["d"] = static_cast<double>(c.d);
  if (batched) {
    state.counters["per_solve"] = benchmark::Counter(
        static_cast<double>(width),
        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  } else {
    state.counters["cost_units/s"] =
        benchmark::Counter(oracle.cost_per_solve(), benchmark::Counter::kIsIterationInvariantRate);
  }
}

const bool kRegistered = [] {
  static const auto* cases = new std::vector<Case>(Cases());
  for (const Case& c : *cases) {
    benchmark::RegisterBenchmark(c.name.c_str(), BM_Solve, c, false)->Unit(benchmark::kNanosecond);
    auto made = MakeOracle(c.spec, c.d, c.sense);
    if (made.ok() && (*made)->batch_width() > 1) {
      benchmark::RegisterBenchmark((c.name + "/batch").c_str(), BM_Solve, c, true)
          ->Unit(benchmark::kNanosecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace perturbd
