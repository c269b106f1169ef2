#include "server/request_translator.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/tensor_codec.h"

namespace perturbd {
namespace {

using ::testing::HasSubstr;

v1::SolveRequest Request(std::vector<int64_t> shape, uint32_t num_samples = 10) {
  v1::SolveRequest request;
  request.mutable_problem()->mutable_argmax();
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  EncodeTensor(std::vector<double>(static_cast<size_t>(n), 0.5), shape, DType::kFloat64,
               request.mutable_theta());
  request.mutable_noise()->set_epsilon(1.0);
  request.mutable_noise()->set_num_samples(num_samples);
  return request;
}

TEST(RequestTranslator, BatchedAndSingleInstance) {
  absl::StatusOr<std::unique_ptr<TranslatedRequest>> batched =
      TranslateSolveRequest(Request({2, 3}), ServerLimits{});
  ASSERT_TRUE(batched.ok()) << batched.status();
  EXPECT_FALSE((*batched)->single_instance);
  EXPECT_EQ((*batched)->request.batch, 2);
  EXPECT_EQ((*batched)->request.theta.size(), 6u);
  EXPECT_EQ((*batched)->oracle->dimension(), 3);

  absl::StatusOr<std::unique_ptr<TranslatedRequest>> single =
      TranslateSolveRequest(Request({3}), ServerLimits{});
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_TRUE((*single)->single_instance);
  EXPECT_EQ((*single)->request.batch, 1);
}

TEST(RequestTranslator, UnspecifiedEnumsMeanTheDefaults) {
  v1::Noise noise;
  absl::StatusOr<NoiseOptions> options = TranslateNoise(noise);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->distribution, NoiseDistribution::kNormal);
  EXPECT_EQ(options->perturbation, Perturbation::kAdditive);
  EXPECT_FALSE(options->variance_reduction.has_value());

  v1::Problem problem;
  problem.mutable_grid_shortest_path()->set_rows(2);
  absl::StatusOr<TranslatedProblem> grid = TranslateProblem(problem);
  ASSERT_TRUE(grid.ok());
  EXPECT_EQ(std::get<GridShortestPathSpec>(grid->spec).connectivity, Connectivity::kEight);
  EXPECT_FALSE(grid->sense.has_value());
}

TEST(RequestTranslator, LimitsComeAfterEveryInvalidArgument) {
  ServerLimits limits;
  limits.max_work = 100;
  v1::SolveRequest request = Request({2, 3}, /*num_samples=*/1000);
  absl::Status over = TranslateSolveRequest(request, limits).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RejectReason(over), "max_work");

  request.mutable_noise()->set_epsilon(-1.0);
  EXPECT_EQ(TranslateSolveRequest(request, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.mutable_noise()->set_epsilon(1.0);
  request.set_backend(v1::GPU);
  EXPECT_EQ(TranslateSolveRequest(request, limits).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(RequestTranslator, ResponseSizeLimitsNameTheOutput) {
  ServerLimits limits;
  limits.max_response_values = 1000;
  v1::SolveRequest jacobian = Request({1, 40});
  jacobian.mutable_outputs()->set_jacobian(true);  // 1600 values
  absl::Status status = TranslateSolveRequest(jacobian, limits).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("outputs.jacobian"));
  EXPECT_EQ(RejectReason(status), "max_response_values");

  v1::SolveRequest samples = Request({1, 40}, /*num_samples=*/30);
  samples.mutable_outputs()->set_samples(true);  // 1200 values
  status = TranslateSolveRequest(samples, limits).status();
  EXPECT_THAT(std::string(status.message()), HasSubstr("outputs.samples"));

  limits.max_response_values = 1'000'000;
  limits.max_message_bytes = 10'000;
  status = TranslateSolveRequest(jacobian, limits).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RejectReason(status), "max_message_bytes");
}

TEST(RequestTranslator, SecondTensorMustHaveThetasShape) {
  v1::BackwardRequest request;
  request.mutable_problem()->mutable_argmax();
  EncodeTensor({1, 2, 3, 4}, {2, 2}, DType::kFloat64, request.mutable_theta());
  request.mutable_noise()->set_epsilon(1.0);
  request.mutable_noise()->set_num_samples(4);
  EXPECT_THAT(std::string(TranslateBackwardRequest(request, {}).status().message()),
              HasSubstr("cotangent: missing"));
  EncodeTensor({1, 2, 3, 4}, {4}, DType::kFloat32, request.mutable_cotangent());
  EXPECT_THAT(std::string(TranslateBackwardRequest(request, {}).status().message()),
              HasSubstr("cotangent.shape: must equal theta.shape [2, 2], got [4]"));
  EncodeTensor({1, 2, 3, 4}, {2, 2}, DType::kFloat32, request.mutable_cotangent());
  absl::StatusOr<std::unique_ptr<TranslatedRequest>> ok = TranslateBackwardRequest(request, {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->request.cotangent.size(), 4u);
}

TEST(RequestTranslator, OracleSizeLimitComesAfterInvalidArguments) {
  v1::SolveRequest request = Request({3});
  v1::KnapsackProblem* knapsack = request.mutable_problem()->mutable_knapsack();
  knapsack->add_weights(1);
  knapsack->add_weights(int64_t{1} << 40);
  knapsack->add_weights((int64_t{1} << 40) + 1);
  knapsack->set_capacity(int64_t{1} << 41);  // DP table 3 × 2^41 cells
  absl::Status status = TranslateSolveRequest(request, ServerLimits{}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(RejectReason(status), "oracle_limit");
  request.mutable_noise()->set_num_samples(0);
  status = TranslateSolveRequest(request, ServerLimits{}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("noise.num_samples"));
}

TEST(RequestTranslator, ProblemKindNames) {
  v1::Problem problem;
  EXPECT_EQ(ProblemKindName(problem), "none");
  problem.mutable_graph_shortest_path();
  EXPECT_EQ(ProblemKindName(problem), "graph_shortest_path");
}

}  // namespace
}  // namespace perturbd
