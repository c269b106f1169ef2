// Wire requests → validated engine requests, and engine results → wire responses.
//
// `TranslateSolveRequest` / `TranslateBackwardRequest` do every check a request needs before
// any work is queued, in the order the contract fixes (DESIGN §5):
//   1. INVALID_ARGUMENT for anything malformed, naming the wire field: `problem.kind`,
//      `problem.sense`, enum values out of range, `noise` missing, θ's dtype/shape/data
//      (θ is [B, d] or [d], B ≥ 1, d ≥ 1, finite), targets/cotangent with θ's shape, the
//      oracle structure (`MakeOracle`) and the noise settings (`ValidatePerturbedRequest`);
//   2. FAILED_PRECONDITION for `backend: GPU` on a server without a GPU backend
//      (`limits.gpu`), INVALID_ARGUMENT naming `backend` for an oracle the GPU does not run;
//   3. RESOURCE_EXHAUSTED when the oracle's structure is over its own size limit (a knapsack DP
//      table), B·M·d exceeds `max_work`, or the response would hold more than
//      `max_response_values` values or `max_message_bytes` bytes.
// Only θ, targets and cotangent (whose size the message size already bounds) are decoded
// before the limits are checked; nothing proportional to B·M·d or B·d² is allocated here.
//
// A RESOURCE_EXHAUSTED status carries the limit's name (`max_work`, `oracle_limit`, ...) as the
// payload `kRejectReasonPayload`, for the `perturbd_rejected_requests_total{reason}` metric.
//
// Thread safety: pure functions. Lifetimes: a `TranslatedRequest` owns every buffer its
// `request` spans point into; it is neither copyable nor movable, so keep it behind the
// `unique_ptr` these functions return until the engine's `done` callback has run.
#ifndef PERTURBD_SERVER_REQUEST_TRANSLATOR_H_
#define PERTURBD_SERVER_REQUEST_TRANSLATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "perturbd/v1/perturbd.pb.h"
#include "solvers/oracles/oracle.h"
#include "solvers/oracles/oracle_spec.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

// Per-request limits (the server's flags of the same names).
struct ServerLimits {
  // Max B·M·d per request.
  uint64_t max_work = 1'000'000'000;
  // Max values in one response: B·d² for a Jacobian, B·M·d for samples, plus the rest.
  uint64_t max_response_values = uint64_t{1} << 25;
  // Max size of a request or response message, in bytes.
  uint64_t max_message_bytes = uint64_t{256} << 20;
  // Not a limit: whether a GPU backend serves `backend: GPU` (set by the service from its
  // BackendRouter). Without one, GPU requests get FAILED_PRECONDITION.
  bool gpu = false;
};

// Type URL of the absl::Status payload naming the limit a RESOURCE_EXHAUSTED status hit.
inline constexpr absl::string_view kRejectReasonPayload = "type.perturbd/reject_reason";

// The limit named by a status's `kRejectReasonPayload`, or "" when it has none.
std::string RejectReason(const absl::Status& status);

// A std::allocator whose value-initialisation (`resize`) leaves doubles uninitialised: the
// decoded tensors are overwritten in full, and zero-filling a 64 × 1000 θ first was a pass of
// its own over 512 KB.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      ::new (static_cast<void*>(p)) U;
    } else {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  }
};
using DecodedValues = std::vector<double, DefaultInitAllocator<double>>;

class TranslatedRequest {
 public:
  TranslatedRequest() = default;
  TranslatedRequest(const TranslatedRequest&) = delete;
  TranslatedRequest& operator=(const TranslatedRequest&) = delete;

  std::unique_ptr<Oracle> oracle;
  DecodedValues theta;      // [B, d]
  DecodedValues targets;    // empty or [B, d]
  DecodedValues cotangent;  // empty or [B, d]
  // θ was [d]: every output drops its batch axis.
  bool single_instance = false;
  // The backend the request asked for (AUTO for UNSPECIFIED); backend_router.h decides.
  v1::Backend backend = v1::AUTO;
  // The engine request; its spans point into the vectors above.
  PerturbedRequest request;
};

// The wire name of the problem's oracle (`argmax`, ...), or "none" when `problem.kind` is not
// set. Used as a metrics label before and after validation.
absl::string_view ProblemKindName(const v1::Problem& problem);

// The oracle structure and sense (nullopt: the oracle's natural sense) of a wire problem.
struct TranslatedProblem {
  OracleSpec spec;
  std::optional<Sense> sense;
};
absl::StatusOr<TranslatedProblem> TranslateProblem(const v1::Problem& problem);

// Wire noise → engine options, with the defaults of DESIGN §5 for UNSPECIFIED enums. Value
// checks (ε > 0, M ≥ 1, ...) are the engine's (`ValidatePerturbedRequest`).
absl::StatusOr<NoiseOptions> TranslateNoise(const v1::Noise& noise);

absl::StatusOr<std::unique_ptr<TranslatedRequest>> TranslateSolveRequest(
    const v1::SolveRequest& request, const ServerLimits& limits);
absl::StatusOr<std::unique_ptr<TranslatedRequest>> TranslateBackwardRequest(
    const v1::BackwardRequest& request, const ServerLimits& limits);

// Writes the outputs of `result` (and the stats, with the backend that ran it) into `response`, in θ's
// dtype, dropping the batch axis for a single instance.
void FillSolveResponse(const TranslatedRequest& translated, const PerturbedResult& result,
                       v1::SolveResponse* response);
void FillBackwardResponse(const TranslatedRequest& translated, const PerturbedResult& result,
                          v1::BackwardResponse* response);

}  // namespace perturbd

#endif  // PERTURBD_SERVER_REQUEST_TRANSLATOR_H_
