#include "solvers/oracles/oracle_spec.h"

#include <variant>

namespace perturbd {
namespace {

struct NameOf {
  absl::string_view operator()(const ArgmaxSpec&) const { return "argmax"; }
  absl::string_view operator()(const TopKSpec&) const { return "top_k"; }
  absl::string_view operator()(const ThresholdSpec&) const { return "threshold"; }
  absl::string_view operator()(const RankingSpec&) const { return "ranking"; }
  absl::string_view operator()(const GridShortestPathSpec&) const { return "grid_shortest_path"; }
  absl::string_view operator()(const GraphShortestPathSpec&) const { return "graph_shortest_path"; }
  absl::string_view operator()(const AssignmentSpec&) const { return "assignment"; }
  absl::string_view operator()(const SpanningTreeSpec&) const { return "spanning_tree"; }
  absl::string_view operator()(const KnapsackSpec&) const { return "knapsack"; }
  absl::string_view operator()(const LinearProgramSpec&) const { return "linear_program"; }
};

}  // namespace

absl::string_view OracleName(const OracleSpec& spec) { return std::visit(NameOf{}, spec); }

}  // namespace perturbd
