#include "service/auth.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/rate_limiter.h"

namespace trainspotter {
namespace {

constexpr char kAdminKey[] = "admin-key-0123456789abcdef";
constexpr char kQueryKey[] = "query-key-0123456789abcdef";

std::string KeysFile() {
  return absl::StrCat("# comment line\n\n", *FormatKeyLine("ops", "admin", kAdminKey), "\n",
                      *FormatKeyLine("label-a", "query", kQueryKey), "  # trailing comment\n");
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(FormatKeyLineTest, LineHasNameRoleAndHashNotKey) {
  absl::StatusOr<std::string> line = FormatKeyLine("alice", "admin", kAdminKey);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, absl::StrCat("alice admin ", Sha256Hex(kAdminKey)));
  EXPECT_EQ(line->find(kAdminKey), std::string::npos);
}

TEST(FormatKeyLineTest, RejectsBadInput) {
  EXPECT_FALSE(FormatKeyLine("has space", "query", kAdminKey).ok());
  EXPECT_FALSE(FormatKeyLine("bob", "root", kAdminKey).ok());
  EXPECT_FALSE(FormatKeyLine("bob", "query", "short").ok());
}

TEST(GenerateApiKeyTest, KeysAreLongAndDistinct) {
  absl::StatusOr<std::string> a = GenerateApiKey(), b = GenerateApiKey();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_GE(a->size(), 40u);
  EXPECT_TRUE(FormatKeyLine("x", "query", *a).ok());
}

TEST(KeyStoreTest, ParsesAndFinds) {
  absl::StatusOr<std::unique_ptr<KeyStore>> store = KeyStore::Parse(KeysFile(), "keys.txt");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->size(), 2u);
  const ApiKey* admin = (*store)->Find(kAdminKey);
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->name, "ops");
  EXPECT_EQ(admin->role, Role::kAdmin);
  const ApiKey* query = (*store)->Find(kQueryKey);
  ASSERT_NE(query, nullptr);
  EXPECT_EQ(query->role, Role::kQuery);
  EXPECT_EQ((*store)->Find("not-a-key-0123456789"), nullptr);
  EXPECT_EQ((*store)->Find(""), nullptr);
}

TEST(KeyStoreTest, ErrorsNameFileAndLine) {
  std::string hash = Sha256Hex(kAdminKey);
  struct Case {
    std::string contents, expected;
  } cases[] = {
      {"a query\n", "keys.txt:1: expected 'name role sha256hex'"},
      {absl::StrCat("\na superuser ", hash, "\n"), "keys.txt:2: unknown role"},
      {"a query 1234\n", "keys.txt:1: hash must be 64 hex digits"},
      {absl::StrCat("a query ", hash, "\na admin ", Sha256Hex("x"), "\n"),
       "keys.txt:2: duplicate key name"},
      {absl::StrCat("a query ", hash, "\nb admin ", hash, "\n"), "keys.txt:2: the same key"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<KeyStore>> store = KeyStore::Parse(c.contents, "keys.txt");
    ASSERT_FALSE(store.ok()) << c.contents;
    EXPECT_TRUE(absl::IsInvalidArgument(store.status()));
    EXPECT_NE(store.status().message().find(c.expected), absl::string_view::npos) << store.status();
  }
}

TEST(AuthenticatorTest, RolesAndErrors) {
  Authenticator auth(*KeyStore::Parse(KeysFile(), "keys"), "");
  EXPECT_TRUE(auth.enabled());

  absl::StatusOr<Caller> caller =
      auth.Authenticate(absl::StrCat("Bearer ", kQueryKey), Role::kQuery);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->key_name, "label-a");

  absl::StatusOr<Caller> denied =
      auth.Authenticate(absl::StrCat("Bearer ", kQueryKey), Role::kAdmin);
  EXPECT_TRUE(absl::IsPermissionDenied(denied.status())) << denied.status();
  EXPECT_EQ(denied.status().message().find(kQueryKey), absl::string_view::npos);

  EXPECT_TRUE(auth.Authenticate(absl::StrCat("Bearer ", kAdminKey), Role::kAdmin).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate("", Role::kQuery).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate(kAdminKey, Role::kQuery).status()));
  absl::Status unknown = auth.Authenticate("Bearer wrong-key-0123456789", Role::kQuery).status();
  EXPECT_TRUE(absl::IsUnauthenticated(unknown));
  EXPECT_EQ(unknown.message().find("wrong-key"), absl::string_view::npos);
}

TEST(AuthenticatorTest, WithoutKeysEveryoneIsAnonymousAdmin) {
  Authenticator auth(nullptr, "");
  EXPECT_FALSE(auth.enabled());
  absl::StatusOr<Caller> caller = auth.Authenticate("", Role::kAdmin);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->key_name, "anonymous");
}

TEST(RateLimiterTest, TokenBucketRefills) {
  absl::Time now = absl::FromUnixSeconds(1000);
  RateLimiter limiter(2.0, 3.0, [&] { return now; });
  EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_FALSE(limiter.TryAcquire("a"));  // burst of 3 spent
  EXPECT_TRUE(limiter.TryAcquire("b"));   // buckets are per key
  EXPECT_EQ(limiter.TimeToNextToken("a"), absl::Milliseconds(500));
  now += absl::Milliseconds(500);
  EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_FALSE(limiter.TryAcquire("a"));
  now += absl::Seconds(100);  // refills up to the burst only
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_FALSE(limiter.TryAcquire("a"));
}

TEST(RateLimiterTest, DisabledAtZero) {
  RateLimiter limiter(0, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.TryAcquire("a"));
}

TEST(RateLimiterTest, AcquireWaitsOrGivesUpAtDeadline) {
  RateLimiter limiter(20.0, 1.0);
  ASSERT_TRUE(limiter.TryAcquire("k"));
  absl::Time start = absl::Now();
  EXPECT_TRUE(limiter.Acquire("k", absl::InfiniteFuture(), nullptr).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  absl::Status late = limiter.Acquire("k", absl::Now() + absl::Milliseconds(1), nullptr);
  EXPECT_TRUE(absl::IsDeadlineExceeded(late)) << late;
}

}  // namespace
}  // namespace trainspotter
