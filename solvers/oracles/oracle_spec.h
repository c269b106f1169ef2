// Oracle structure specifications: plain C++ mirrors of the wire `Problem` messages
// (proto/perturbd/v1/perturbd.proto), so that `solvers/` needs no protobuf. The server
// translates a `Problem` into an `OracleSpec`; tests and benchmarks build specs directly.
//
// Every field has the same name as its wire counterpart, and validation errors name the wire
// path (`problem.grid_shortest_path.rows`), so a client sees the field it sent.
#ifndef PERTURBD_SOLVERS_ORACLES_ORACLE_SPEC_H_
#define PERTURBD_SOLVERS_ORACLES_ORACLE_SPEC_H_

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "solvers/oracles/oracle.h"

namespace perturbd {

enum class Connectivity { kFour, kEight };

struct ArgmaxSpec {};
struct TopKSpec {
  uint32_t k = 0;
};
struct ThresholdSpec {};
struct RankingSpec {};
struct GridShortestPathSpec {
  uint32_t rows = 0;
  uint32_t cols = 0;
  Connectivity connectivity = Connectivity::kEight;
};
struct GraphShortestPathSpec {
  uint32_t num_nodes = 0;
  std::vector<uint32_t> edge_sources;
  std::vector<uint32_t> edge_targets;
  uint32_t source = 0;
  uint32_t target = 0;
};
// A rows × cols score matrix, θ row-major (d = rows · cols).
struct AssignmentSpec {
  uint32_t rows = 0;
  uint32_t cols = 0;
};
// An undirected graph; edge e joins edge_sources[e] and edge_targets[e] (d = number of edges).
struct SpanningTreeSpec {
  uint32_t num_nodes = 0;
  std::vector<uint32_t> edge_sources{};
  std::vector<uint32_t> edge_targets{};
};
// 0/1 knapsack: item i weighs weights[i] (d = number of items); Σ chosen weights ≤ capacity.
struct KnapsackSpec {
  std::vector<int64_t> weights{};
  int64_t capacity = 0;
};
// max/min ⟨θ, y⟩ s.t. row_lower ≤ A y ≤ row_upper, variable_lower ≤ y ≤ variable_upper,
// y_j integer where integer[j]. A is given as (row_index[k], column_index[k], coefficient[k])
// triplets, duplicates summed; the number of rows is len(row_lower) = len(row_upper). Empty
// variable_lower means 0 for every variable, empty variable_upper +∞, empty integer all
// continuous. Bounds may be ±infinity (d = num_variables).
// (The `{}` initializers let designated initializers leave fields out without -Wextra noise.)
struct LinearProgramSpec {
  uint32_t num_variables = 0;
  std::vector<uint32_t> row_index{};
  std::vector<uint32_t> column_index{};
  std::vector<double> coefficient{};
  std::vector<double> row_lower{};
  std::vector<double> row_upper{};
  std::vector<double> variable_lower{};
  std::vector<double> variable_upper{};
  std::vector<bool> integer{};
};

using OracleSpec = std::variant<ArgmaxSpec, TopKSpec, ThresholdSpec, RankingSpec,
                                GridShortestPathSpec, GraphShortestPathSpec, AssignmentSpec,
                                SpanningTreeSpec, KnapsackSpec, LinearProgramSpec>;

// The wire name of a spec's oracle (`argmax`, `top_k`, ...).
absl::string_view OracleName(const OracleSpec& spec);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ORACLE_SPEC_H_
