#include "client/cpp/npy.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace perturbd::client {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The value after `'key':` in a .npy header dict, up to the next top-level ',' or '}'.
absl::StatusOr<std::string> HeaderValue(const std::string& header, const std::string& key) {
  const size_t at = header.find(absl::StrCat("'", key, "'"));
  if (at == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(".npy header has no '", key, "'"));
  }
  size_t p = header.find(':', at);
  if (p == std::string::npos) return absl::InvalidArgumentError(".npy header is malformed");
  ++p;
  int depth = 0;
  size_t end = p;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  return std::string(absl::StripAsciiWhitespace(header.substr(p, end - p)));
}

}  // namespace

absl::StatusOr<Array> ReadNpy(const std::string& path) {
  absl::StatusOr<std::string> file = ReadFile(path);
  if (!file.ok()) return file.status();
  const std::string& bytes = *file;
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a .npy file"));
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return absl::InvalidArgumentError(absl::StrCat(path, ": truncated"));
    for (int k = 0; k < 4; ++k) {
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    }
    offset = 12;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, ": .npy version ", major));
  }
  if (offset + header_len > bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated header"));
  }
  const std::string header = bytes.substr(offset, header_len);
  offset += header_len;

  absl::StatusOr<std::string> descr = HeaderValue(header, "descr");
  absl::StatusOr<std::string> fortran = HeaderValue(header, "fortran_order");
  absl::StatusOr<std::string> shape_text = HeaderValue(header, "shape");
  for (const auto* s : {&descr, &fortran, &shape_text}) {
    if (!s->ok())
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", s->status().message()));
  }
  if (*fortran != "False") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": Fortran order is not supported"));
  }
  absl::string_view type_view = *descr;
  absl::ConsumePrefix(&type_view, "'");
  absl::ConsumeSuffix(&type_view, "'");
  const std::string type(type_view);
  size_t element = 0;
  if (type == "<f8" || type == "<i8") {
    element = 8;
  } else if (type == "<f4" || type == "<i4") {
    element = 4;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": dtype ", type, " (use float32 or float64, little-endian)"));
  }

  Array array;
  array.dtype = type == "<f4" ? v1::FLOAT32 : v1::FLOAT64;
  absl::string_view dims = *shape_text;
  absl::ConsumePrefix(&dims, "(");
  absl::ConsumeSuffix(&dims, ")");
  int64_t count = 1;
  for (absl::string_view dim : absl::StrSplit(dims, ',', absl::SkipWhitespace())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(dim, &n) || n < 0 || __builtin_mul_overflow(count, n, &count)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad shape ", *shape_text));
    }
    array.shape.push_back(n);
  }
  if (static_cast<size_t>(count) > (bytes.size() - offset) / element ||
      bytes.size() - offset != static_cast<size_t>(count) * element) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", bytes.size() - offset, " data bytes for shape ", *shape_text));
  }
  array.values.resize(static_cast<size_t>(count));
  const char* p = bytes.data() + offset;
  for (int64_t i = 0; i < count; ++i) {
    if (type == "<f8") {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      array.values[i] = v;
    } else if (type == "<f4") {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      array.values[i] = v;
    } else if (type == "<i8") {
      int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      array.values[i] = static_cast<double>(v);
    } else {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      array.values[i] = v;
    }
  }
  static_assert(std::endian::native == std::endian::little, ".npy I/O assumes little-endian");
  return array;
}

absl::Status WriteNpy(const std::string& path, const Array& array) {
  const bool f32 = array.dtype == v1::FLOAT32;
  // Python tuple syntax: (), (3,), (2, 3).
  const std::string shape = array.shape.size() == 1
                                ? absl::StrCat("(", array.shape[0], ",)")
                                : absl::StrCat("(", absl::StrJoin(array.shape, ", "), ")");
  std::string header = absl::StrCat("{'descr': '", f32 ? "<f4" : "<f8",
                                    "', 'fortran_order': False, 'shape': ", shape, ", }");
  // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  for (double v : array.values) {
    if (f32) {
      const float f = static_cast<float>(v);
      out.append(reinterpret_cast<const char*>(&f), 4);
    } else {
      out.append(reinterpret_cast<const char*>(&v), 8);
    }
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  file.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (!file) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<Array> ReadCsv(const std::string& path) {
  absl::StatusOr<std::string> file = ReadFile(path);
  if (!file.ok()) return file.status();
  Array array;
  int64_t rows = 0;
  int64_t cols = -1;
  for (absl::string_view line : absl::StrSplit(*file, '\n', absl::SkipWhitespace())) {
    int64_t n = 0;
    for (absl::string_view cell : absl::StrSplit(line, ',')) {
      double v = 0;
      if (!absl::SimpleAtod(absl::StripAsciiWhitespace(cell), &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": line ", rows + 1, ": '", cell, "' is not a number"));
      }
      array.values.push_back(v);
      ++n;
    }
    if (cols >= 0 && n != cols) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", rows + 1, " has ", n, " values, expected ", cols));
    }
    cols = n;
    ++rows;
  }
  if (rows == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty"));
  array.shape = {rows, cols};
  return array;
}

}  // namespace perturbd::client
