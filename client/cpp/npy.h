// NumPy .npy and CSV files ⇄ `Array`, for perturbd-cli's --theta_file and --output.
//
// .npy: format versions 1.0–3.0, C order, little-endian float32 ('<f4') or float64 ('<f8')
// (also '<i4'/'<i8', read as float64). Written as version 1.0 with a 64-byte aligned header.
// CSV: one row per non-empty line, comma-separated numbers; the result is [rows, cols].
#ifndef PERTURBD_CLIENT_CPP_NPY_H_
#define PERTURBD_CLIENT_CPP_NPY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cpp/perturbd_client.h"

namespace perturbd::client {

absl::StatusOr<Array> ReadNpy(const std::string& path);
// Writes `array` in its dtype (FLOAT32 → '<f4', otherwise '<f8').
absl::Status WriteNpy(const std::string& path, const Array& array);
absl::StatusOr<Array> ReadCsv(const std::string& path);

}  // namespace perturbd::client

#endif  // PERTURBD_CLIENT_CPP_NPY_H_
