#include "server/bearer_token_auth.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace perturbd {
namespace {

constexpr absl::string_view kScheme = "bearer";

bool IsVisibleAscii(absl::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<BearerTokenAuth> BearerTokenAuth::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("auth_token_file: cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  absl::StatusOr<BearerTokenAuth> auth = FromContents(contents.str());
  if (!auth.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth_token_file ", path, ": ", auth.status().message()));
  }
  return auth;
}

absl::StatusOr<BearerTokenAuth> BearerTokenAuth::FromContents(absl::string_view contents) {
  BearerTokenAuth auth;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.size() < kMinTokenBytes || line.size() > kMaxTokenBytes || !IsVisibleAscii(line)) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": a token must be ",
                                                     kMinTokenBytes, " to ", kMaxTokenBytes,
                                                     " visible ASCII characters without spaces"));
    }
    Token token;
    std::memcpy(token.bytes.data(), line.data(), line.size());
    token.size = line.size();
    auth.tokens_.push_back(token);
  }
  if (auth.tokens_.empty()) return absl::InvalidArgumentError("no token in the file");
  return auth;
}

bool BearerTokenAuth::Matches(absl::string_view presented) const {
  // The presented length is the client's own knowledge; branching on it leaks nothing.
  if (presented.size() > kMaxTokenBytes) return false;
  std::array<unsigned char, kMaxTokenBytes> padded{};
  std::memcpy(padded.data(), presented.data(), presented.size());
  // Every byte of every token is visited, whatever matches: no early exit anywhere.
  volatile unsigned char any_match = 0;
  for (const Token& token : tokens_) {
    unsigned char diff = 0;
    for (size_t i = 0; i < kMaxTokenBytes; ++i) diff |= padded[i] ^ token.bytes[i];
    size_t size_diff = token.size ^ presented.size();
    for (size_t shift = 0; shift < sizeof(size_t) * 8; shift += 8) {
      diff |= static_cast<unsigned char>(size_diff >> shift);
    }
    // diff == 0 → 1, else 0, without a branch: (diff - 1) >> 8 is all ones only for 0.
    any_match =
        any_match | static_cast<unsigned char>(((static_cast<unsigned>(diff) - 1u) >> 8) & 1u);
  }
  return any_match != 0;
}

absl::Status BearerTokenAuth::Check(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "authorization: missing; send the metadata 'authorization: Bearer <token>'");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  const bool bearer = value.size() > kScheme.size() && value[kScheme.size()] == ' ' &&
                      absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme);
  if (!bearer) {
    return absl::UnauthenticatedError("authorization: not a 'Bearer <token>' value");
  }
  const absl::string_view presented =
      absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size() + 1));
  if (!Matches(presented)) return absl::UnauthenticatedError("authorization: token not accepted");
  return absl::OkStatus();
}

}  // namespace perturbd
