#include "tests/integration/hostile_requests.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "client/cpp/perturbd_client.h"

namespace perturbd::testing {
namespace {

using C = grpc::StatusCode;

void SetTheta(v1::SolveRequest& r, std::vector<double> values, std::vector<int64_t> shape,
              v1::DType dtype = v1::FLOAT64) {
  *r.mutable_theta() = client::MakeTensor(values, shape, dtype);
}

void SetShape(v1::Tensor* t, std::vector<int64_t> shape) {
  t->clear_shape();
  for (int64_t s : shape) t->add_shape(s);
}

// Six float64 values whose bit patterns are given.
std::string RawFloat64(std::vector<uint64_t> bits) {
  std::string data(bits.size() * 8, '\0');
  for (size_t i = 0; i < bits.size(); ++i) std::memcpy(&data[i * 8], &bits[i], 8);
  return data;
}

v1::Problem LinearProgram(uint32_t n) {
  v1::Problem p;
  v1::LinearProgramProblem* lp = p.mutable_linear_program();
  lp->set_num_variables(n);
  for (uint32_t j = 0; j < n; ++j) {
    lp->add_row_index(0);
    lp->add_column_index(j);
    lp->add_coefficient(1.0);
  }
  lp->add_row_lower(0.0);
  lp->add_row_upper(1.0);
  return p;
}

// θ [2, 3] keeps d = 3: the problems below have 3 coordinates unless a row says otherwise.
v1::Problem Graph3(std::vector<std::pair<uint32_t, uint32_t>> edges, uint32_t num_nodes,
                   uint32_t source, uint32_t target) {
  return client::GraphShortestPathProblem(num_nodes, edges, source, target);
}

}  // namespace

std::vector<BadRequestCase> HostileSolveRequestCases() {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
  constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
  constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();
  return {
      // --- Truncated bytes and dtype sizes that do not match. ---
      {"data_empty", [](auto& r) { r.mutable_theta()->clear_data(); }, C::INVALID_ARGUMENT,
       "theta.data"},
      {"data_half", [](auto& r) { r.mutable_theta()->mutable_data()->resize(24); },
       C::INVALID_ARGUMENT, "theta.data"},
      {"data_one_byte_long", [](auto& r) { r.mutable_theta()->mutable_data()->push_back('x'); },
       C::INVALID_ARGUMENT, "theta.data"},
      {"float64_dtype_on_float32_bytes",
       [](auto& r) {
         SetTheta(r, {1, 2, 3, 4, 5, 6}, {2, 3}, v1::FLOAT32);
         r.mutable_theta()->set_dtype(v1::FLOAT64);
       },
       C::INVALID_ARGUMENT, "theta.data"},
      {"float32_odd_byte_count",
       [](auto& r) {
         SetTheta(r, {1, 2, 3, 4, 5, 6}, {2, 3}, v1::FLOAT32);
         r.mutable_theta()->mutable_data()->push_back('\0');
       },
       C::INVALID_ARGUMENT, "theta.data"},
      {"dtype_negative", [](auto& r) { r.mutable_theta()->set_dtype(static_cast<v1::DType>(-1)); },
       C::INVALID_ARGUMENT, "theta.dtype"},
      {"targets_truncated",
       [](auto& r) {
         *r.mutable_targets() = client::MakeTensor({0, 1, 0, 0, 1, 0}, {2, 3});
         r.mutable_targets()->mutable_data()->resize(5);
       },
       C::INVALID_ARGUMENT, "targets.data"},
      // --- Huge shapes, products and byte counts that overflow int64. ---
      {"huge_batch_small_data",
       [](auto& r) {
         SetShape(r.mutable_theta(), {int64_t{1} << 40, 3});
       },
       C::INVALID_ARGUMENT, "theta"},
      {"huge_d_bytes_overflow",
       [](auto& r) {
         SetShape(r.mutable_theta(), {1, int64_t{1} << 62});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"product_is_2_pow_63",
       [](auto& r) {
         SetShape(r.mutable_theta(), {int64_t{1} << 31, int64_t{1} << 32});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"product_wraps_to_6",
       // 3 · (2^63 + 2) ≡ 6 (mod 2^64) in unsigned arithmetic; must not pass as 6 elements.
       [](auto& r) {
         SetShape(r.mutable_theta(), {3, kI64Min + 2});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"rank_3_product_overflows",
       [](auto& r) {
         SetShape(r.mutable_theta(), {int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 22});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"int64_max_dimension", [](auto& r) { SetShape(r.mutable_theta(), {kI64Max}); },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"two_negative_dims_multiply_to_6",
       [](auto& r) {
         SetShape(r.mutable_theta(), {-2, -3});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"int64_min_dim",
       [](auto& r) {
         SetShape(r.mutable_theta(), {kI64Min, 1});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"zero_and_negative_dims",
       [](auto& r) {
         SetShape(r.mutable_theta(), {0, -1});
       },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"rank_1000", [](auto& r) { SetTheta(r, {1.0}, std::vector<int64_t>(1000, 1)); },
       C::INVALID_ARGUMENT, "theta.shape"},
      {"targets_huge_shape",
       [](auto& r) {
         *r.mutable_targets() = client::MakeTensor({0, 1, 0, 0, 1, 0}, {2, 3});
         SetShape(r.mutable_targets(), {int64_t{1} << 40, 3});
       },
       C::INVALID_ARGUMENT, "targets"},
      // --- NaN, Inf and degenerate floats. ---
      {"signaling_nan",
       [](auto& r) {
         r.mutable_theta()->set_data(RawFloat64({0, 0, 0x7ff0000000000001ull, 0, 0, 0}));
       },
       C::INVALID_ARGUMENT, "theta.data: element 2 is NaN"},
      {"negative_nan",
       [](auto& r) {
         r.mutable_theta()->set_data(RawFloat64({0, 0, 0, 0, 0, 0xfff8000000000000ull}));
       },
       C::INVALID_ARGUMENT, "theta.data: element 5 is NaN"},
      {"float32_nan",
       [](auto& r) {
         SetTheta(r, {0, 1, 2, std::numeric_limits<double>::quiet_NaN(), 4, 5}, {2, 3},
                  v1::FLOAT32);
       },
       C::INVALID_ARGUMENT, "theta.data: element 3 is NaN"},
      {"float32_overflow_is_inf",
       // 1e39 does not fit a float32: the client's rounding gives +Inf on the wire.
       [](auto& r) {
         SetTheta(r, {0, 1e39, 2, 3, 4, 5}, {2, 3}, v1::FLOAT32);
       },
       C::INVALID_ARGUMENT, "theta.data: element 1 is +Inf"},
      {"targets_minus_inf_float32",
       [kInf](auto& r) {
         *r.mutable_targets() = client::MakeTensor({0, 1, 0, 0, -kInf, 0}, {2, 3}, v1::FLOAT32);
       },
       C::INVALID_ARGUMENT, "targets.data: element 4 is -Inf"},
      {"epsilon_inf", [kInf](auto& r) { r.mutable_noise()->set_epsilon(kInf); },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      {"epsilon_minus_inf", [kInf](auto& r) { r.mutable_noise()->set_epsilon(-kInf); },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      {"epsilon_negative_zero", [](auto& r) { r.mutable_noise()->set_epsilon(-0.0); },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      // --- Valid-looking inputs whose estimates overflow: refused, never OK with Inf inside. ---
      {"theta_near_float64_max_additive_overflow",
       [](auto& r) {
         SetTheta(r, std::vector<double>(6, 1.7e308), {2, 3});
         r.mutable_noise()->set_epsilon(1e308);
       },
       C::INVALID_ARGUMENT, "value: element"},
      {"multiplicative_noise_overflows",
       [](auto& r) {
         SetTheta(r, std::vector<double>(6, 1e308), {2, 3});
         r.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
         r.mutable_noise()->set_epsilon(3);
       },
       C::INVALID_ARGUMENT, "value: element"},
      {"denormal_epsilon_jacobian_overflows",
       [](auto& r) {
         r.mutable_noise()->set_epsilon(5e-324);
         r.mutable_outputs()->set_jacobian(true);
       },
       C::INVALID_ARGUMENT, "jacobian: element"},
      {"float32_value_beyond_flt_max",
       [](auto& r) {
         SetTheta(r, std::vector<double>(6, 3e38), {2, 3}, v1::FLOAT32);
         r.mutable_noise()->set_epsilon(1e38);
       },
       C::INVALID_ARGUMENT, "float32"},
      {"fenchel_young_loss_overflows",
       [](auto& r) {
         SetTheta(r, std::vector<double>(6, 1e308), {2, 3});
         *r.mutable_targets() = client::MakeTensor(std::vector<double>(6, -1e308), {2, 3});
         r.mutable_noise()->set_epsilon(1e-3);
       },
       C::INVALID_ARGUMENT, "element"},
      // --- Negative and zero sizes in the structures. ---
      {"grid_rows_0", [](auto& r) { *r.mutable_problem() = client::GridShortestPathProblem(0, 3); },
       C::INVALID_ARGUMENT, "problem.grid_shortest_path"},
      {"assignment_cols_0", [](auto& r) { *r.mutable_problem() = client::AssignmentProblem(3, 0); },
       C::INVALID_ARGUMENT, "problem.assignment"},
      {"graph_num_nodes_0",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 2}, {0, 2}}, 0, 0, 2);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.num_nodes"},
      {"spanning_tree_num_nodes_0",
       [](auto& r) {
         *r.mutable_problem() = client::SpanningTreeProblem(0, {{0, 1}, {1, 2}, {0, 2}});
       },
       C::INVALID_ARGUMENT, "problem.spanning_tree.num_nodes"},
      {"knapsack_capacity_negative",
       [](auto& r) {
         *r.mutable_problem() = client::KnapsackProblem({1, 2, 3}, -1);
       },
       C::INVALID_ARGUMENT, "problem.knapsack.capacity"},
      {"knapsack_weight_int64_min",
       [kI64Min](auto& r) {
         *r.mutable_problem() = client::KnapsackProblem({1, kI64Min, 3}, 4);
       },
       C::INVALID_ARGUMENT, "problem.knapsack.weights"},
      {"linear_program_no_variables", [](auto& r) { *r.mutable_problem() = LinearProgram(0); },
       C::INVALID_ARGUMENT, "problem.linear_program"},
      {"top_k_k_uint32_max",
       [kU32Max](auto& r) { *r.mutable_problem() = client::TopKProblem(kU32Max); },
       C::INVALID_ARGUMENT, "problem.top_k.k"},
      // --- Sizes that wrap around in 32 bits: (2^31 + 3)·2 ≡ 6 (mod 2^32), d is 6. ---
      {"grid_rows_times_cols_wraps_to_d",
       [](auto& r) {
         *r.mutable_problem() = client::GridShortestPathProblem((1u << 31) + 3, 2);
         SetTheta(r, {1, 2, 3, 4, 5, 6}, {6});
       },
       C::INVALID_ARGUMENT, "problem.grid_shortest_path"},
      {"assignment_rows_times_cols_wraps_to_d",
       [](auto& r) {
         *r.mutable_problem() = client::AssignmentProblem((1u << 31) + 3, 2);
         SetTheta(r, {1, 2, 3, 4, 5, 6}, {6});
       },
       C::INVALID_ARGUMENT, "problem.assignment"},
      {"linear_program_uint32_max_variables",
       [kU32Max](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->set_num_variables(kU32Max);
       },
       C::INVALID_ARGUMENT, "problem.linear_program"},
      // --- Objectives the LP solver cannot take (COIN-OR Clp aborts at |c| >= 1e25). ---
      {"linear_program_objective_7e29",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         SetTheta(r, {1, 7e29, 0.5, 0, 0, 0}, {2, 3});
       },
       C::INVALID_ARGUMENT, "theta: linear_program objective"},
      {"linear_program_objective_minus_1e300",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         SetTheta(r, {1, 2, 3, 4, 5, -1e300}, {2, 3});
       },
       C::INVALID_ARGUMENT, "theta: linear_program objective"},
      {"linear_program_epsilon_perturbs_beyond_range",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_noise()->set_epsilon(1e24);
       },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      {"linear_program_multiplicative_gumbel_overflows",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         SetTheta(r, {1, 2, 3, 4, 5, 6}, {2, 3});
         r.mutable_noise()->set_perturbation(v1::MULTIPLICATIVE);
         r.mutable_noise()->set_distribution(v1::GUMBEL);
         r.mutable_noise()->set_epsilon(20);
       },
       C::INVALID_ARGUMENT, "noise.epsilon"},
      // --- Indices out of range. ---
      {"graph_edge_source_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {5, 2}, {0, 2}}, 3, 0, 2);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.edge_sources[1]"},
      {"graph_edge_target_uint32_max",
       [kU32Max](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, kU32Max}, {0, 2}}, 3, 0, 2);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.edge_targets[1]"},
      {"graph_source_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 2}, {0, 2}}, 3, 3, 2);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.source"},
      {"graph_target_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 2}, {0, 2}}, 3, 0, 9);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path.target"},
      {"graph_uint32_max_nodes_sparse_edges",
       // Memory must follow the edges, not num_nodes: the unreachable target is the only error.
       [kU32Max](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 2}, {0, 2}}, kU32Max, 0, kU32Max - 1);
       },
       C::INVALID_ARGUMENT, "problem.graph_shortest_path"},
      {"spanning_tree_edge_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = client::SpanningTreeProblem(3, {{0, 1}, {1, 3}, {0, 2}});
       },
       C::INVALID_ARGUMENT, "problem.spanning_tree.edge_targets[1]"},
      {"spanning_tree_edge_lists_differ",
       [](auto& r) {
         *r.mutable_problem() = client::SpanningTreeProblem(3, {{0, 1}, {1, 2}, {0, 2}});
         r.mutable_problem()->mutable_spanning_tree()->add_edge_sources(1);
       },
       C::INVALID_ARGUMENT, "problem.spanning_tree"},
      {"linear_program_row_index_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->set_row_index(1, 7);
       },
       C::INVALID_ARGUMENT, "problem.linear_program.row_index"},
      {"linear_program_column_index_out_of_range",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->set_column_index(2, 3);
       },
       C::INVALID_ARGUMENT, "problem.linear_program.column_index"},
      {"linear_program_index_lists_differ",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->add_coefficient(2.0);
       },
       C::INVALID_ARGUMENT, "problem.linear_program"},
      {"linear_program_nan_coefficient",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->set_coefficient(
             0, std::numeric_limits<double>::quiet_NaN());
       },
       C::INVALID_ARGUMENT, "problem.linear_program.coefficient"},
      {"linear_program_row_bounds_differ",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->add_row_upper(2.0);
       },
       C::INVALID_ARGUMENT, "problem.linear_program"},
      {"linear_program_integer_flags_wrong_count",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         r.mutable_problem()->mutable_linear_program()->add_integer(true);
       },
       C::INVALID_ARGUMENT, "problem.linear_program.integer"},
      {"linear_program_lower_above_upper",
       [](auto& r) {
         *r.mutable_problem() = LinearProgram(3);
         auto* lp = r.mutable_problem()->mutable_linear_program();
         for (int j = 0; j < 3; ++j) {
           lp->add_variable_lower(2.0);
           lp->add_variable_upper(1.0);
         }
       },
       C::INVALID_ARGUMENT, "problem.linear_program"},
      // --- A cycle where a DAG is required. ---
      {"graph_cycle_maximize",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 2}, {2, 0}}, 3, 0, 2);
         r.mutable_problem()->set_sense(v1::MAXIMIZE);
       },
       C::INVALID_ARGUMENT, "problem.sense"},
      {"graph_two_cycle_maximize",
       [](auto& r) {
         *r.mutable_problem() = Graph3({{0, 1}, {1, 0}, {1, 2}}, 3, 0, 2);
         r.mutable_problem()->set_sense(v1::MAXIMIZE);
       },
       C::INVALID_ARGUMENT, "problem.sense"},
      // --- Enormous M, B and outputs. ---
      {"samples_uint32_max", [kU32Max](auto& r) { r.mutable_noise()->set_num_samples(kU32Max); },
       C::RESOURCE_EXHAUSTED, "max_work"},
      {"samples_uint32_max_with_every_output",
       [kU32Max](auto& r) {
         r.mutable_noise()->set_num_samples(kU32Max - 1);
         r.mutable_outputs()->set_jacobian(true);
         r.mutable_outputs()->set_samples(true);
         r.mutable_outputs()->set_stderr(true);
       },
       C::RESOURCE_EXHAUSTED, "max_work"},
      {"antithetic_uint32_max_is_odd",
       [kU32Max](auto& r) {
         r.mutable_noise()->set_num_samples(kU32Max);
         r.mutable_noise()->set_antithetic(true);
       },
       C::INVALID_ARGUMENT, "noise.antithetic"},
      {"instance_seeds_thousands",
       [](auto& r) {
         for (int k = 0; k < 5000; ++k) r.mutable_noise()->add_instance_seeds(k);
       },
       C::INVALID_ARGUMENT, "noise.instance_seeds"},
      {"batch_7000_of_d_1_samples_over_limit",
       [](auto& r) {
         SetTheta(r, std::vector<double>(7000, 0.5), {7000, 1});
         r.mutable_noise()->set_num_samples(100);
       },
       C::RESOURCE_EXHAUSTED, "max_work"},
      {"knapsack_capacity_near_int64_max",
       // Not everything fits, so a DP table of ~2^62 columns would be needed: refused, without
       // overflowing capacity + 1.
       [kI64Max](auto& r) {
         *r.mutable_problem() = client::KnapsackProblem({2, kI64Max - 1, 4}, kI64Max - 1);
       },
       C::RESOURCE_EXHAUSTED, "problem.knapsack.capacity"},
  };
}

}  // namespace perturbd::testing
