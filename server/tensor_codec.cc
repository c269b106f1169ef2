#include "server/tensor_codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solvers/oracles/internal/vector_clones.h"

namespace perturbd {
namespace {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian platforms are not supported");

uint32_t LoadLE32(const char* p) {
  uint32_t u;
  std::memcpy(&u, p, sizeof(u));
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
  return u;
}

uint64_t LoadLE64(const char* p) {
  uint64_t u;
  std::memcpy(&u, p, sizeof(u));
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap64(u);
  return u;
}

void StoreLE32(uint32_t u, char* p) {
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
  std::memcpy(p, &u, sizeof(u));
}

void StoreLE64(uint64_t u, char* p) {
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap64(u);
  std::memcpy(p, &u, sizeof(u));
}

// The conversions, one pass each: branch-free loops that vectorise (the clones pick AVX-512 or
// AVX2 at run time; a 64 × 1000 θ went from a scalar convert, then a separate finite check, to
// one vector pass). Decoding reports whether any value is NaN or ±Inf: the magnitude bits above
// +max's, in integer order (NaN's are above +Inf's), as FirstBeyond compares.
constexpr int64_t kMagnitude = std::numeric_limits<int64_t>::max();
const int64_t kFiniteMax = std::bit_cast<int64_t>(std::numeric_limits<double>::max());

PERTURBD_ORACLE_VECTOR_CLONES
bool DecodeFloat32(const char* __restrict p, size_t n, double* __restrict out) {
  int64_t beyond = 0;
#pragma omp simd reduction(| : beyond)
  for (size_t i = 0; i < n; ++i) {
    const double v = std::bit_cast<float>(LoadLE32(p + 4 * i));
    out[i] = v;
    beyond |= (std::bit_cast<int64_t>(v) & kMagnitude) > kFiniteMax ? 1 : 0;
  }
  return beyond != 0;
}

PERTURBD_ORACLE_VECTOR_CLONES
bool DecodeFloat64(const char* __restrict p, size_t n, double* __restrict out) {
  int64_t beyond = 0;
#pragma omp simd reduction(| : beyond)
  for (size_t i = 0; i < n; ++i) {
    const uint64_t u = LoadLE64(p + 8 * i);
    std::memcpy(out + i, &u, sizeof(u));
    beyond |= (static_cast<int64_t>(u) & kMagnitude) > kFiniteMax ? 1 : 0;
  }
  return beyond != 0;
}

PERTURBD_ORACLE_VECTOR_CLONES
void EncodeFloat32(const double* __restrict values, size_t n, char* __restrict p) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    StoreLE32(std::bit_cast<uint32_t>(static_cast<float>(values[i])), p + 4 * i);
  }
}

PERTURBD_ORACLE_VECTOR_CLONES
void EncodeFloat64(const double* __restrict values, size_t n, char* __restrict p) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) StoreLE64(std::bit_cast<uint64_t>(values[i]), p + 8 * i);
}

absl::string_view NonFiniteName(double x) {
  if (std::isnan(x)) return "NaN";
  return x > 0 ? "+Inf" : "-Inf";
}

}  // namespace

int64_t DTypeSize(DType dtype) { return dtype == DType::kFloat32 ? 4 : 8; }

v1::DType ToWireDType(DType dtype) { return dtype == DType::kFloat32 ? v1::FLOAT32 : v1::FLOAT64; }

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<TensorLayout> InspectTensor(const v1::Tensor& tensor, absl::string_view field) {
  TensorLayout layout;
  switch (tensor.dtype()) {
    case v1::FLOAT32:
      layout.dtype = DType::kFloat32;
      break;
    case v1::FLOAT64:
      layout.dtype = DType::kFloat64;
      break;
    case v1::DTYPE_UNSPECIFIED:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".dtype: DTYPE_UNSPECIFIED; use FLOAT32 or FLOAT64"));
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".dtype: unknown value ", static_cast<int>(tensor.dtype())));
  }
  int64_t count = 1;
  for (int k = 0; k < tensor.shape_size(); ++k) {
    const int64_t dim = tensor.shape(k);
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".shape: dimension ", k, " is negative (", dim, ")"));
    }
    if (__builtin_mul_overflow(count, dim, &count)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".shape: the number of elements overflows int64"));
    }
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(count, DTypeSize(layout.dtype), &bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shape: the number of bytes overflows int64"));
  }
  if (static_cast<uint64_t>(bytes) != tensor.data().size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".data: ", tensor.data().size(), " bytes, but shape ", ShapeString(tensor.shape()),
        " of ", v1::DType_Name(tensor.dtype()), " needs ", bytes));
  }
  layout.shape.assign(tensor.shape().begin(), tensor.shape().end());
  layout.num_elements = count;
  return layout;
}

absl::Status DecodeTensorValues(const v1::Tensor& tensor, const TensorLayout& layout,
                                absl::string_view field, absl::Span<double> out) {
  const char* p = tensor.data().data();
  const int64_t n = layout.num_elements;
  if (static_cast<int64_t>(out.size()) != n ||
      static_cast<int64_t>(tensor.data().size()) != n * DTypeSize(layout.dtype)) {
    return absl::InternalError(absl::StrCat(field, ": layout does not match the tensor"));
  }
  const bool beyond = layout.dtype == DType::kFloat32
                          ? DecodeFloat32(p, static_cast<size_t>(n), out.data())
                          : DecodeFloat64(p, static_cast<size_t>(n), out.data());
  if (beyond) {
    const size_t i = FirstBeyond(out, std::numeric_limits<double>::max());
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".data: element ", i, " is ", NonFiniteName(out[i])));
  }
  return absl::OkStatus();
}

void EncodeTensor(absl::Span<const double> values, absl::Span<const int64_t> shape, DType dtype,
                  v1::Tensor* out) {
  out->set_dtype(ToWireDType(dtype));
  out->mutable_shape()->Assign(shape.begin(), shape.end());
  std::string* data = out->mutable_data();
  data->resize(values.size() * static_cast<size_t>(DTypeSize(dtype)));
  if (dtype == DType::kFloat32) {
    EncodeFloat32(values.data(), values.size(), data->data());
  } else {
    EncodeFloat64(values.data(), values.size(), data->data());
  }
}

}  // namespace perturbd
