// libFuzzer target for everything a request goes through before and after the engine:
// bytes → SolveRequest or BackwardRequest (protobuf parsing) → TranslateSolveRequest /
// TranslateBackwardRequest (tensor decoding, problem and noise translation, oracle structure
// validation, noise validation, work and response-size limits) → for small accepted requests a
// bounded engine run on one worker and the response encoding.
//
// Input: byte 0 selects the path (bit 0: Backward instead of Solve; bit 1: also run the
// engine), the rest is the serialized request. The seed corpus (tests/fuzz/corpus/, written by
// make_fuzz_corpus) holds one valid request per oracle and path, plus every crash found so far
// as a regression input.
//
// Checked properties (a violation aborts, which libFuzzer reports as a crash):
//   - no crash, leak, undefined behaviour or timeout in any of it (ASan+UBSan build);
//   - a refused request is INVALID_ARGUMENT, FAILED_PRECONDITION or RESOURCE_EXHAUSTED with a
//     non-empty message; an engine failure is INVALID_ARGUMENT, FAILED_PRECONDITION or
//     RESOURCE_EXHAUSTED; a non-finite result is refused by ValidateResult (INVALID_ARGUMENT);
//   - an accepted request respects max_work, and the encoded response is no larger than
//     max_message_bytes (the server's "response size checked before sending" promise) and
//     holds no more than max_response_values values.
//
// Built two ways: `request_fuzzer` (clang, -fsanitize=fuzzer; scripts/fuzz.sh) and
// `request_fuzzer_replay` (any compiler; runs the corpus once, as the ctest
// `request_fuzzer_corpus`).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/stubs/logging.h"
#include "perturbd/v1/perturbd.pb.h"
#include "server/request_translator.h"
#include "server/result_validator.h"
#include "solvers/perturbed/executor.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {
namespace {

// Small limits keep every accepted request cheap to run.
constexpr ServerLimits kLimits{
    .max_work = 4096, .max_response_values = 1 << 14, .max_message_bytes = 1 << 20};
// An accepted request is run only when B·M oracle calls cost at most this much.
constexpr double kMaxEngineCost = 2e6;

// PERTURBD_FUZZ_VERBOSE=1: print what happened to each input (for corpus maintenance).
bool Verbose() {
  static const bool verbose = std::getenv("PERTURBD_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// PERTURBD_FUZZ_SKIP_RUN=linear_program,knapsack: no engine run for those oracles (to keep
// fuzzing the rest while a known crash in one of them is being fixed).
bool SkipRun(const v1::Problem& problem) {
  static const std::string skip = [] {
    const char* env = std::getenv("PERTURBD_FUZZ_SKIP_RUN");
    return env == nullptr ? std::string() : "," + std::string(env) + ",";
  }();
  return !skip.empty() &&
         skip.find("," + std::string(ProblemKindName(problem)) + ",") != std::string::npos;
}

[[noreturn]] void Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "request_fuzzer: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}

bool IsRefusal(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kResourceExhausted;
}

int64_t Values(const v1::Tensor& t) {
  int64_t n = t.data().size();
  if (t.dtype() == v1::FLOAT64) return n / 8;
  return n / 4;
}

template <typename Request, typename Response, typename Translate, typename Fill>
void Exercise(const uint8_t* data, size_t size, bool run, Translate translate, Fill fill) {
  Request request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  absl::StatusOr<std::unique_ptr<TranslatedRequest>> translated = translate(request, kLimits);
  if (Verbose()) std::fprintf(stderr, "translate: %s\n", translated.status().ToString().c_str());
  if (!translated.ok()) {
    if (!IsRefusal(translated.status().code()) || translated.status().message().empty()) {
      Fail("unexpected refusal", translated.status());
    }
    return;
  }
  TranslatedRequest& t = **translated;
  if (PerturbedWork(t.request) > static_cast<double>(kLimits.max_work)) {
    Fail("accepted over max_work", absl::InternalError(std::to_string(PerturbedWork(t.request))));
  }
  const double cost = static_cast<double>(t.request.batch) * t.request.noise.num_samples *
                      (t.request.oracle->cost_per_solve() + 1.0);
  if (!run || cost > kMaxEngineCost || SkipRun(request.problem())) return;

  static Executor* const executor = new Executor(1);  // lives for the whole run
  absl::StatusOr<PerturbedResult> result = RunPerturbed(*executor, t.request);
  if (Verbose()) std::fprintf(stderr, "engine: %s\n", result.status().ToString().c_str());
  if (!result.ok()) {
    if (!IsRefusal(result.status().code())) Fail("unexpected engine failure", result.status());
    return;
  }
  // As the server does: a result that is not finite in θ's dtype is refused, never sent.
  if (absl::Status valid = ValidateResult(t.request, *result); !valid.ok()) {
    if (valid.code() != absl::StatusCode::kInvalidArgument) Fail("bad result check", valid);
    return;
  }
  Response response;
  fill(t, *result, &response);
  const size_t bytes = response.ByteSizeLong();
  if (bytes > kLimits.max_message_bytes) {
    Fail("response over max_message_bytes", absl::InternalError(std::to_string(bytes)));
  }
  std::string wire;
  if (!response.SerializeToString(&wire)) Fail("cannot serialize", absl::InternalError(""));
}

int64_t CountValues(const v1::SolveResponse& r) {
  return Values(r.solution()) + Values(r.value()) + Values(r.jacobian()) + Values(r.loss()) +
         Values(r.loss_grad()) + Values(r.solution_stderr()) + Values(r.samples());
}

}  // namespace
}  // namespace perturbd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace perturbd;  // NOLINT
  // Malformed UTF-8 in string fields is a parse failure worth no log line.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const bool backward = (mode & 1) != 0;
  const bool run = (mode & 2) != 0;
  if (backward) {
    Exercise<v1::BackwardRequest, v1::BackwardResponse>(
        data + 1, size - 1, run, TranslateBackwardRequest,
        [](const TranslatedRequest& t, const PerturbedResult& r, v1::BackwardResponse* out) {
          FillBackwardResponse(t, r, out);
        });
  } else {
    Exercise<v1::SolveRequest, v1::SolveResponse>(
        data + 1, size - 1, run, TranslateSolveRequest,
        [](const TranslatedRequest& t, const PerturbedResult& r, v1::SolveResponse* out) {
          FillSolveResponse(t, r, out);
          if (CountValues(*out) > static_cast<int64_t>(kLimits.max_response_values)) {
            std::fprintf(stderr, "request_fuzzer: response holds %lld values\n",
                         static_cast<long long>(CountValues(*out)));
            std::abort();
          }
        });
  }
  return 0;
}
