#include "solvers/oracles/oracle_factory.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>

#include "solvers/oracles/argmax_oracle.h"
#include "solvers/oracles/assignment_oracle.h"
#include "solvers/oracles/graph_shortest_path_oracle.h"
#include "solvers/oracles/grid_shortest_path_oracle.h"
#include "solvers/oracles/knapsack_oracle.h"
#include "solvers/oracles/linear_program_oracle.h"
#include "solvers/oracles/ranking_oracle.h"
#include "solvers/oracles/spanning_tree_oracle.h"
#include "solvers/oracles/threshold_oracle.h"
#include "solvers/oracles/top_k_oracle.h"

namespace perturbd {
namespace {

struct NaturalSenseOf {
  Sense operator()(const GridShortestPathSpec&) const { return Sense::kMinimize; }
  Sense operator()(const GraphShortestPathSpec&) const { return Sense::kMinimize; }
  Sense operator()(const SpanningTreeSpec&) const { return Sense::kMinimize; }
  template <typename Spec>
  Sense operator()(const Spec&) const {
    return Sense::kMaximize;
  }
};

struct StructuralDimensionOf {
  std::optional<int64_t> operator()(const GridShortestPathSpec& spec) const {
    return static_cast<int64_t>(spec.rows) * static_cast<int64_t>(spec.cols);
  }
  std::optional<int64_t> operator()(const GraphShortestPathSpec& spec) const {
    return static_cast<int64_t>(spec.edge_sources.size());
  }
  std::optional<int64_t> operator()(const AssignmentSpec& spec) const {
    // (2^32 − 1)² overflows int64: saturate (MakeOracle rejects it anyway).
    const uint64_t cells = static_cast<uint64_t>(spec.rows) * static_cast<uint64_t>(spec.cols);
    return cells > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(cells);
  }
  std::optional<int64_t> operator()(const SpanningTreeSpec& spec) const {
    return static_cast<int64_t>(spec.edge_sources.size());
  }
  std::optional<int64_t> operator()(const KnapsackSpec& spec) const {
    return static_cast<int64_t>(spec.weights.size());
  }
  std::optional<int64_t> operator()(const LinearProgramSpec& spec) const {
    return static_cast<int64_t>(spec.num_variables);
  }
  template <typename Spec>
  std::optional<int64_t> operator()(const Spec&) const {
    return std::nullopt;
  }
};

// absl::StatusOr<unique_ptr<Derived>> converts to absl::StatusOr<unique_ptr<Oracle>>.
struct Maker {
  int64_t dimension;
  Sense sense;

  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const ArgmaxSpec&) const {
    return ArgmaxOracle::Create(dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const TopKSpec& spec) const {
    return TopKOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const ThresholdSpec&) const {
    return ThresholdOracle::Create(dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const RankingSpec&) const {
    return RankingOracle::Create(dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const GridShortestPathSpec& spec) const {
    return GridShortestPathOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const GraphShortestPathSpec& spec) const {
    return GraphShortestPathOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const AssignmentSpec& spec) const {
    return AssignmentOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const SpanningTreeSpec& spec) const {
    return SpanningTreeOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const KnapsackSpec& spec) const {
    return KnapsackOracle::Create(spec, dimension, sense);
  }
  absl::StatusOr<std::unique_ptr<Oracle>> operator()(const LinearProgramSpec& spec) const {
    return LinearProgramOracle::Create(spec, dimension, sense);
  }
};

}  // namespace

Sense NaturalSense(const OracleSpec& spec) { return std::visit(NaturalSenseOf{}, spec); }

std::optional<int64_t> StructuralDimension(const OracleSpec& spec) {
  return std::visit(StructuralDimensionOf{}, spec);
}

absl::StatusOr<std::unique_ptr<Oracle>> MakeOracle(const OracleSpec& spec, int64_t dimension,
                                                   std::optional<Sense> sense) {
  return std::visit(Maker{dimension, sense.value_or(NaturalSense(spec))}, spec);
}

}  // namespace perturbd
