// Optional bearer-token authentication of the perturbd service (`--auth_token_file`).
//
//   ASSIGN_OR_RETURN(BearerTokenAuth auth, BearerTokenAuth::FromFile("/run/secrets/token"));
//   if (absl::Status s = auth.Check(context->client_metadata()); !s.ok()) { /* finish with s */ }
//
// A client sends the metadata `authorization: Bearer <token>`. The token file holds one token
// per line (more than one lets a token be rotated without downtime: add the new one, restart,
// move the clients, remove the old one); blank lines and lines starting with '#' are ignored,
// surrounding whitespace is trimmed. A token is 16 to kMaxTokenBytes visible ASCII characters.
// The file is read once, at startup; the server never reads it again.
//
// The comparison takes the same time whatever the presented token and whichever byte differs:
// each configured token is kept zero-padded in a fixed kMaxTokenBytes buffer, the presented one
// is copied into another, and all bytes of every configured token are compared (OR of XORs),
// so the time depends on the number of configured tokens only, never on their contents or
// lengths.
//
// Only perturbd.v1.PerturbedOptimizer checks the token (in its handlers, so it applies on
// plaintext and TLS ports alike; gRPC 1.51's AuthMetadataProcessor works on TLS credentials
// only). grpc.health.v1.Health stays open for probes, and reflection, which describes the
// public schema only, stays open too.
//
// Thread safety: `Check` is const and may be called concurrently.
#ifndef PERTURBD_SERVER_BEARER_TOKEN_AUTH_H_
#define PERTURBD_SERVER_BEARER_TOKEN_AUTH_H_

#include <grpcpp/support/string_ref.h>

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace perturbd {

class BearerTokenAuth {
 public:
  static constexpr size_t kMaxTokenBytes = 512;
  static constexpr size_t kMinTokenBytes = 16;

  // Reads and validates the token file (INVALID_ARGUMENT / NOT_FOUND naming the problem, never
  // echoing a token).
  static absl::StatusOr<BearerTokenAuth> FromFile(const std::string& path);
  // The same from the file's contents.
  static absl::StatusOr<BearerTokenAuth> FromContents(absl::string_view contents);

  // OK when `metadata` carries `authorization: Bearer <one of the tokens>`, else
  // UNAUTHENTICATED.
  absl::Status Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;
  // True when `presented` is one of the tokens, in time independent of the tokens.
  bool Matches(absl::string_view presented) const;

  size_t num_tokens() const { return tokens_.size(); }

 private:
  struct Token {
    std::array<unsigned char, kMaxTokenBytes> bytes{};  // zero-padded
    size_t size = 0;
  };
  std::vector<Token> tokens_;
};

}  // namespace perturbd

#endif  // PERTURBD_SERVER_BEARER_TOKEN_AUTH_H_
