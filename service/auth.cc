#include "service/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"

namespace trainspotter {
namespace {

bool IsValidKeyName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != '@') return false;
  }
  return true;
}

absl::StatusOr<Sha256Digest> ParseDigestHex(absl::string_view hex) {
  if (hex.size() != 64) return absl::InvalidArgumentError("hash must be 64 hex digits");
  for (char c : hex) {
    if (!absl::ascii_isxdigit(c)) return absl::InvalidArgumentError("hash must be hex digits");
  }
  std::string bytes = absl::HexStringToBytes(absl::AsciiStrToLower(hex));
  Sha256Digest digest;
  std::copy(bytes.begin(), bytes.end(), digest.begin());
  return digest;
}

}  // namespace

const char* RoleName(Role role) { return role == Role::kAdmin ? "admin" : "query"; }

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "query") return Role::kQuery;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (expected 'query' or 'admin')"));
}

Sha256Digest Sha256(absl::string_view data) {
  Sha256Digest digest{};
  unsigned int len = 0;
  // EVP_Digest with SHA-256 cannot fail for in-memory input short of allocation failure.
  EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

std::string DigestHex(const Sha256Digest& digest) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string Sha256Hex(absl::string_view data) { return DigestHex(Sha256(data)); }

absl::StatusOr<std::string> FormatKeyLine(absl::string_view name, absl::string_view role,
                                          absl::string_view key) {
  if (!IsValidKeyName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key name '", name, "' must be 1-128 of letters, digits, '-', '_', '.', '@'"));
  }
  absl::StatusOr<Role> parsed = ParseRole(role);
  if (!parsed.ok()) return parsed.status();
  if (key.size() < 16) {
    return absl::InvalidArgumentError("API keys must be at least 16 characters");
  }
  return absl::StrCat(name, " ", RoleName(*parsed), " ", Sha256Hex(key));
}

absl::StatusOr<std::string> GenerateApiKey() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("no randomness available from the OS (RAND_bytes failed)");
  }
  std::string key;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)),
                            &key);
  return absl::StrCat("ts_", key);
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Parse(absl::string_view contents,
                                                          absl::string_view origin) {
  std::vector<ApiKey> keys;
  absl::flat_hash_set<std::string> names, digests;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_no;
    size_t hash_pos = line.find('#');
    if (hash_pos != absl::string_view::npos) line = line.substr(0, hash_pos);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto where = [&] { return absl::StrCat(origin, ":", line_no, ": "); };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected 'name role sha256hex', got ", fields.size(), " fields"));
    }
    ApiKey key;
    if (!IsValidKeyName(fields[0])) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "bad key name '", fields[0], "'"));
    }
    key.name = std::string(fields[0]);
    absl::StatusOr<Role> role = ParseRole(fields[1]);
    if (!role.ok())
      return absl::InvalidArgumentError(absl::StrCat(where(), role.status().message()));
    key.role = *role;
    absl::StatusOr<Sha256Digest> digest = ParseDigestHex(fields[2]);
    if (!digest.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), digest.status().message(),
                                                     " (use 'trainspotter serve --hash-key')"));
    }
    key.digest = *digest;
    if (!names.insert(key.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "duplicate key name '", key.name, "'"));
    }
    if (!digests.insert(DigestHex(key.digest)).second) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "the same key is listed twice"));
    }
    keys.push_back(std::move(key));
  }
  return std::unique_ptr<KeyStore>(new KeyStore(std::move(keys)));
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Load(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path, size_t{16} << 20);
  if (!contents.ok()) {
    return absl::Status(contents.status().code(),
                        absl::StrCat("keys file: ", contents.status().message()));
  }
  return Parse(*contents, path);
}

const ApiKey* KeyStore::Find(absl::string_view key) const {
  Sha256Digest digest = Sha256(key);
  const ApiKey* found = nullptr;
  // No early exit: every entry costs the same, whichever matched.
  for (const ApiKey& entry : keys_) {
    bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (equal && found == nullptr) found = &entry;
  }
  return found;
}

Authenticator::Authenticator(std::unique_ptr<KeyStore> keys, std::string keys_path)
    : keys_(std::move(keys)), keys_path_(std::move(keys_path)) {}

bool Authenticator::enabled() const {
  absl::MutexLock lock(&mu_);
  return keys_ != nullptr;
}

absl::StatusOr<Caller> Authenticator::Identify(absl::string_view authorization) const {
  std::shared_ptr<const KeyStore> keys;
  {
    absl::MutexLock lock(&mu_);
    keys = keys_;
  }
  if (keys == nullptr) return Caller{"anonymous", Role::kAdmin};
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send metadata 'authorization: Bearer <key>'");
  }
  absl::string_view key = authorization;
  if (!absl::ConsumePrefix(&key, "Bearer ") && !absl::ConsumePrefix(&key, "bearer ")) {
    return absl::UnauthenticatedError("malformed authorization metadata: expected 'Bearer <key>'");
  }
  key = absl::StripAsciiWhitespace(key);
  const ApiKey* entry = keys->Find(key);
  if (entry == nullptr) return absl::UnauthenticatedError("unknown API key");
  return Caller{entry->name, entry->role};
}

absl::Status Authenticator::CheckRole(const Caller& caller, Role required) {
  if (required == Role::kAdmin && caller.role != Role::kAdmin) {
    return absl::PermissionDeniedError(
        absl::StrCat("key '", caller.key_name, "' has role 'query'; this call needs role 'admin'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Caller> Authenticator::Authenticate(absl::string_view authorization,
                                                   Role required) const {
  absl::StatusOr<Caller> caller = Identify(authorization);
  if (!caller.ok()) return caller.status();
  absl::Status allowed = CheckRole(*caller, required);
  if (!allowed.ok()) return allowed;
  return caller;
}

absl::Status Authenticator::Reload() {
  if (keys_path_.empty()) {
    return absl::FailedPreconditionError("the server was started without a keys file");
  }
  absl::StatusOr<std::unique_ptr<KeyStore>> fresh = KeyStore::Load(keys_path_);
  if (!fresh.ok()) return fresh.status();
  absl::MutexLock lock(&mu_);
  keys_ = std::shared_ptr<const KeyStore>(std::move(*fresh));
  return absl::OkStatus();
}

}  // namespace trainspotter
