#include "server/bearer_token_auth.h"

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace perturbd {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

constexpr char kToken[] = "s3cr3t-token-0123456789";
constexpr char kOther[] = "another-token-abcdefghij";

BearerTokenAuth Auth(const std::string& contents) {
  absl::StatusOr<BearerTokenAuth> auth = BearerTokenAuth::FromContents(contents);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return *std::move(auth);
}

absl::StatusCode CheckWith(const BearerTokenAuth& auth, const std::string& value) {
  Metadata metadata;
  metadata.emplace("authorization", value);
  return auth.Check(metadata).code();
}

TEST(BearerTokenAuth, AcceptsEveryListedTokenAndNothingElse) {
  const BearerTokenAuth auth =
      Auth(absl::StrCat("# rotation: old and new\n", kToken, "\n\n  ", kOther, "  \r\n"));
  EXPECT_EQ(auth.num_tokens(), 2u);
  EXPECT_TRUE(auth.Matches(kToken));
  EXPECT_TRUE(auth.Matches(kOther));
  EXPECT_FALSE(auth.Matches(""));
  EXPECT_FALSE(auth.Matches("s3cr3t-token-012345678"));    // a prefix
  EXPECT_FALSE(auth.Matches("s3cr3t-token-01234567890"));  // one more byte
  EXPECT_FALSE(auth.Matches("S3cr3t-token-0123456789"));   // case matters
  EXPECT_FALSE(auth.Matches(std::string(kToken) + std::string(1, '\0')));
  EXPECT_FALSE(auth.Matches(std::string(BearerTokenAuth::kMaxTokenBytes + 1, 'x')));
}

TEST(BearerTokenAuth, ChecksTheAuthorizationMetadata) {
  const BearerTokenAuth auth = Auth(kToken);
  EXPECT_EQ(CheckWith(auth, absl::StrCat("Bearer ", kToken)), absl::StatusCode::kOk);
  EXPECT_EQ(CheckWith(auth, absl::StrCat("bearer ", kToken)), absl::StatusCode::kOk);
  EXPECT_EQ(CheckWith(auth, absl::StrCat("Bearer  ", kToken)), absl::StatusCode::kOk);
  EXPECT_EQ(CheckWith(auth, absl::StrCat("Basic ", kToken)), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckWith(auth, kToken), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckWith(auth, "Bearer"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckWith(auth, "Bearer "), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckWith(auth, absl::StrCat("Bearer ", kOther)), absl::StatusCode::kUnauthenticated);
  Metadata none;
  const absl::Status missing = auth.Check(none);
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(missing.message()), ::testing::HasSubstr("missing"));
  // The message never echoes what was presented.
  Metadata wrong;
  wrong.emplace("authorization", "Bearer wrong-token-value-123456");
  EXPECT_THAT(std::string(auth.Check(wrong).message()),
              ::testing::Not(::testing::HasSubstr("wrong-token")));
}

TEST(BearerTokenAuth, RejectsBadFiles) {
  EXPECT_FALSE(BearerTokenAuth::FromContents("").ok());
  EXPECT_FALSE(BearerTokenAuth::FromContents("# only a comment\n\n").ok());
  EXPECT_FALSE(BearerTokenAuth::FromContents("short\n").ok());
  EXPECT_FALSE(BearerTokenAuth::FromContents("has a space in the middle\n").ok());
  EXPECT_FALSE(
      BearerTokenAuth::FromContents(std::string(BearerTokenAuth::kMaxTokenBytes + 1, 'x')).ok());
  const absl::StatusOr<BearerTokenAuth> bad =
      BearerTokenAuth::FromContents("ok-token-0123456789\nshort");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("line 2"));
  EXPECT_EQ(BearerTokenAuth::FromFile("/nonexistent/perturbd/token").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BearerTokenAuth, ReadsTheFile) {
  const std::string path = ::testing::TempDir() + "/perturbd_token_test";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(kToken, f);
  std::fputs("\n", f);
  std::fclose(f);
  absl::StatusOr<BearerTokenAuth> auth = BearerTokenAuth::FromFile(path);
  std::remove(path.c_str());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->Matches(kToken));
}

}  // namespace
}  // namespace perturbd
