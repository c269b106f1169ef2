// Builds a validated oracle from its structure specification.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Oracle> oracle,
//                    MakeOracle(TopKSpec{.k = 5}, /*dimension=*/100, std::nullopt));
//
// `dimension` is d, the length of θ per instance (θ.shape[-1] on the wire). `sense` empty means
// the oracle's natural sense (DESIGN §3). Errors are INVALID_ARGUMENT and name the wire field:
// `problem.top_k.k`, `problem.sense`, `theta.shape` (d does not match the structure), ...;
// after every INVALID_ARGUMENT check, RESOURCE_EXHAUSTED when the oracle's own limits are
// exceeded (the knapsack DP table, the linear_program feasibility solve's time limit).
// Validation does all per-request structure work (topological order, reachability, the
// linear_program feasibility solve) once.
#ifndef PERTURBD_SOLVERS_ORACLES_ORACLE_FACTORY_H_
#define PERTURBD_SOLVERS_ORACLES_ORACLE_FACTORY_H_

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"

namespace perturbd {

// The oracle's natural sense (argmax: MAXIMIZE, grid_shortest_path: MINIMIZE, ...).
Sense NaturalSense(const OracleSpec& spec);

// The d implied by the structure, or nullopt for oracles that accept any d (argmax, ...).
std::optional<int64_t> StructuralDimension(const OracleSpec& spec);

absl::StatusOr<std::unique_ptr<Oracle>> MakeOracle(const OracleSpec& spec, int64_t dimension,
                                                   std::optional<Sense> sense);

}  // namespace perturbd

#endif  // PERTURBD_SOLVERS_ORACLES_ORACLE_FACTORY_H_
