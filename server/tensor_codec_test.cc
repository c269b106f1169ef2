#include "server/tensor_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace perturbd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Tensor Float64Tensor(const std::vector<double>& values, std::vector<int64_t> shape) {
  v1::Tensor t;
  t.set_dtype(v1::FLOAT64);
  for (int64_t dim : shape) t.add_shape(dim);
  t.set_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 8));
  return t;
}

TEST(TensorCodec, RoundTripsBothDtypes) {
  const std::vector<double> values = {1.0, -2.5, 0.1, 3e10, -0.0, 7.0};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    v1::Tensor wire;
    EncodeTensor(values, {2, 3}, dtype, &wire);
    EXPECT_EQ(wire.data().size(), 6u * DTypeSize(dtype));
    absl::StatusOr<TensorLayout> layout = InspectTensor(wire, "theta");
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->dtype, dtype);
    EXPECT_THAT(layout->shape, ElementsAre(2, 3));
    EXPECT_EQ(layout->num_elements, 6);
    std::vector<double> out(6);
    ASSERT_TRUE(DecodeTensorValues(wire, *layout, "theta", absl::MakeSpan(out)).ok());
    for (size_t i = 0; i < values.size(); ++i) {
      const double want =
          dtype == DType::kFloat32 ? static_cast<double>(static_cast<float>(values[i])) : values[i];
      EXPECT_EQ(out[i], want) << i;
    }
  }
}

TEST(TensorCodec, WritesLittleEndianBytes) {
  v1::Tensor wire;
  EncodeTensor({1.0}, {1}, DType::kFloat32, &wire);
  EXPECT_EQ(wire.data(), std::string("\x00\x00\x80\x3f", 4));  // 1.0f = 0x3f800000
}

TEST(TensorCodec, ScalarHasOneElement) {
  v1::Tensor wire;
  EncodeTensor({4.0}, {}, DType::kFloat64, &wire);
  absl::StatusOr<TensorLayout> layout = InspectTensor(wire, "value");
  ASSERT_TRUE(layout.ok());
  EXPECT_TRUE(layout->shape.empty());
  EXPECT_EQ(layout->num_elements, 1);
}

TEST(TensorCodec, RejectsBadDtypes) {
  v1::Tensor t = Float64Tensor({1, 2}, {2});
  t.set_dtype(v1::DTYPE_UNSPECIFIED);
  EXPECT_THAT(std::string(InspectTensor(t, "theta").status().message()),
              HasSubstr("theta.dtype: DTYPE_UNSPECIFIED"));
  t.set_dtype(static_cast<v1::DType>(17));
  EXPECT_THAT(std::string(InspectTensor(t, "targets").status().message()),
              HasSubstr("targets.dtype: unknown value 17"));
}

TEST(TensorCodec, RejectsBadShapesBeforeLookingAtData) {
  v1::Tensor t = Float64Tensor({}, {});
  t.add_shape(3);
  t.add_shape(-1);
  EXPECT_THAT(std::string(InspectTensor(t, "theta").status().message()),
              HasSubstr("theta.shape: dimension 1 is negative"));
  t.clear_shape();
  t.add_shape(int64_t{1} << 62);
  t.add_shape(4);
  EXPECT_THAT(std::string(InspectTensor(t, "theta").status().message()),
              HasSubstr("theta.shape: the number of elements overflows int64"));
  t.clear_shape();
  t.add_shape(int64_t{1} << 61);
  EXPECT_THAT(std::string(InspectTensor(t, "theta").status().message()),
              HasSubstr("theta.shape: the number of bytes overflows int64"));
}

TEST(TensorCodec, RejectsDataOfTheWrongLength) {
  v1::Tensor t = Float64Tensor({1, 2, 3}, {2, 2});
  absl::Status status = InspectTensor(t, "cotangent").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("cotangent.data: 24 bytes, but shape [2, 2] of FLOAT64 needs 32"));
}

TEST(TensorCodec, RejectsNonFiniteValuesNamingTheElement) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& [values, message] : std::vector<std::pair<std::vector<double>, std::string>>{
           {{0, 1, 2, nan}, "theta.data: element 3 is NaN"},
           {{inf, 1, 2, 3}, "theta.data: element 0 is +Inf"},
           {{0, -inf, 2, 3}, "theta.data: element 1 is -Inf"}}) {
    v1::Tensor t = Float64Tensor(values, {4});
    absl::StatusOr<TensorLayout> layout = InspectTensor(t, "theta");
    ASSERT_TRUE(layout.ok());
    std::vector<double> out(4);
    absl::Status status = DecodeTensorValues(t, *layout, "theta", absl::MakeSpan(out));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), message);
  }
}

// Long tensors go through the vector loops (their bodies and their tails): every element is
// converted exactly, the largest finite values pass, and a NaN or ±Inf anywhere is found at its
// own index, in either dtype.
TEST(TensorCodec, LongTensorsConvertEveryElementAndFindTheFirstNonFinite) {
  constexpr size_t kN = 1003;  // not a multiple of any vector width
  std::vector<double> values(kN);
  for (size_t i = 0; i < kN; ++i) values[i] = (static_cast<double>(i) - 500.25) / 7.0;
  values[17] = std::numeric_limits<double>::max();
  values[18] = -std::numeric_limits<float>::max();
  values[19] = std::numeric_limits<double>::denorm_min();
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const bool f32 = dtype == DType::kFloat32;
    std::vector<double> in = values;
    if (f32) in[17] = std::numeric_limits<float>::max();  // the double max rounds to +Inf
    v1::Tensor wire;
    EncodeTensor(in, {static_cast<int64_t>(kN)}, dtype, &wire);
    absl::StatusOr<TensorLayout> layout = InspectTensor(wire, "theta");
    ASSERT_TRUE(layout.ok());
    std::vector<double> out(kN, -1.0);
    ASSERT_TRUE(DecodeTensorValues(wire, *layout, "theta", absl::MakeSpan(out)).ok());
    for (size_t i = 0; i < kN; ++i) {
      const double want = f32 ? static_cast<double>(static_cast<float>(in[i])) : in[i];
      ASSERT_EQ(out[i], want) << i << (f32 ? " f32" : " f64");
    }
    for (size_t bad : {size_t{0}, size_t{15}, size_t{512}, kN - 2, kN - 1}) {
      for (double v :
           {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()}) {
        std::vector<double> with = in;
        with[bad] = v;
        if (bad + 1 < kN) with[kN - 1] = std::numeric_limits<double>::infinity();  // a later one
        v1::Tensor t;
        EncodeTensor(with, {static_cast<int64_t>(kN)}, dtype, &t);
        absl::Status status = DecodeTensorValues(t, *layout, "theta", absl::MakeSpan(out));
        EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
        EXPECT_EQ(status.message(),
                  absl::StrCat("theta.data: element ", bad, " is ", std::isnan(v) ? "NaN" : "-Inf"))
            << (f32 ? "f32" : "f64");
      }
    }
  }
}

}  // namespace
}  // namespace perturbd
