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
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

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

using OracleSpec = std::variant<ArgmaxSpec, TopKSpec, ThresholdSpec, RankingSpec,
                                GridShortestPathSpec, GraphShortestPathSpec>;

// The wire name of a spec's oracle (`argmax`, `top_k`, ...).
absl::string_view OracleName(const OracleSpec& spec);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ORACLE_SPEC_H_
