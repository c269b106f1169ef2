// Wire `perturbd.v1.Tensor` ⇄ dense float64 arrays.
//
// A wire tensor is little-endian, row-major, unpadded FLOAT32 or FLOAT64 bytes with
// len(data) = prod(shape) · sizeof(dtype) (DESIGN §5). Decoding is split in two so that a
// request can be rejected before anything proportional to its claims is allocated:
//
//   ASSIGN_OR_RETURN(TensorLayout layout, InspectTensor(request.theta(), "theta"));
//   ... check layout.shape against the problem, the limits ...
//   std::vector<double> theta(layout.num_elements);
//   RETURN_IF_ERROR(DecodeTensorValues(request.theta(), layout, "theta", absl::MakeSpan(theta)));
//
// `InspectTensor` checks the dtype, that no dimension is negative, that prod(shape) and the
// byte count fit in int64, and that the byte count equals len(data); it reads only the shape.
// `DecodeTensorValues` converts to float64 and rejects NaN and ±Inf, naming the flat element
// ("theta.data: element 3 is NaN"). Errors are INVALID_ARGUMENT and name the wire field
// (`theta.dtype`, `theta.shape`, `theta.data`) under the caller's prefix.
//
// Thread safety: pure functions.
#ifndef PERTURBD_SERVER_TENSOR_CODEC_H_
#define PERTURBD_SERVER_TENSOR_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "perturbd/v1/perturbd.pb.h"
#include "solvers/perturbed/perturbed_optimizer.h"

namespace perturbd {

struct TensorLayout {
  DType dtype = DType::kFloat64;
  std::vector<int64_t> shape;
  int64_t num_elements = 0;  // prod(shape); 1 for a scalar (empty shape)
};

// Bytes per element of a dtype (4 or 8).
int64_t DTypeSize(DType dtype);
// The wire enum of a dtype.
v1::DType ToWireDType(DType dtype);
// "[2, 3]", for messages.
std::string ShapeString(absl::Span<const int64_t> shape);

// Validates the tensor's dtype, shape and byte length without touching its data.
absl::StatusOr<TensorLayout> InspectTensor(const v1::Tensor& tensor, absl::string_view field);

// Converts the data of a tensor that `InspectTensor` accepted into `out` (length
// layout.num_elements), rejecting non-finite elements.
absl::Status DecodeTensorValues(const v1::Tensor& tensor, const TensorLayout& layout,
                                absl::string_view field, absl::Span<double> out);

// Writes `values` (length prod(shape)) into `out` with the given dtype (float32 rounds to
// nearest) and shape.
void EncodeTensor(absl::Span<const double> values, absl::Span<const int64_t> shape, DType dtype,
                  v1::Tensor* out);

}  // namespace perturbd

#endif  // PERTURBD_SERVER_TENSOR_CODEC_H_
