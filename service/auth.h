// API keys: who may call the service, in which role.
//
// A keys file has one key per line, `name role sha256hex`, where role is `query` (Membership
// calls and catalogue reads) or `admin` (everything, including catalogue writes), and sha256hex
// is the SHA-256 of the key as 64 hex digits; `#` starts a comment. Only hashes are stored, so
// the file does not reveal keys. `trainspotter serve --hash-key KEY` prints such a line.
// Clients send the key as `authorization: Bearer <key>` metadata.
//
// Thread-safety: KeyStore is immutable after construction; Authenticator may be used from any
// thread, including while Reload() runs.
#ifndef TRAINSPOTTER_SERVICE_AUTH_H_
#define TRAINSPOTTER_SERVICE_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace trainspotter {

enum class Role { kQuery, kAdmin };

// "query" / "admin".
const char* RoleName(Role role);
// INVALID_ARGUMENT for anything but "query" and "admin".
absl::StatusOr<Role> ParseRole(absl::string_view name);

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 (OpenSSL's libcrypto).
Sha256Digest Sha256(absl::string_view data);
// Lower-case hex of a digest, or of SHA-256(data).
std::string DigestHex(const Sha256Digest& digest);
std::string Sha256Hex(absl::string_view data);

// The keys-file line for `key` (name and role are validated: INVALID_ARGUMENT).
absl::StatusOr<std::string> FormatKeyLine(absl::string_view name, absl::string_view role,
                                          absl::string_view key);

// A fresh random key (32 bytes from the OS CSPRNG, URL-safe base64, prefixed "ts_").
absl::StatusOr<std::string> GenerateApiKey();

struct ApiKey {
  std::string name;
  Role role = Role::kQuery;
  Sha256Digest digest{};
};

// The parsed keys file.
class KeyStore {
 public:
  // Parses a keys file's contents; errors name `origin` and the line (INVALID_ARGUMENT), e.g. a
  // malformed hash, an unknown role, or a duplicated name or hash.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Parse(absl::string_view contents,
                                                         absl::string_view origin);
  // Reads and parses `path`. An empty file is valid (no key is accepted).
  static absl::StatusOr<std::unique_ptr<KeyStore>> Load(const std::string& path);

  // The entry whose hash equals SHA-256(`key`), or nullptr. Compares every entry in constant
  // time, so timing reveals neither the key nor which entry matched.
  const ApiKey* Find(absl::string_view key) const;

  size_t size() const { return keys_.size(); }
  const std::vector<ApiKey>& keys() const { return keys_; }

 private:
  explicit KeyStore(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}
  std::vector<ApiKey> keys_;
};

// The identity a call was admitted with.
struct Caller {
  std::string key_name;  // "anonymous" when the server runs without keys
  Role role = Role::kQuery;
};

// Checks the `authorization` metadata of calls against the current KeyStore (or admits everyone
// as admin when constructed without one: loopback-only servers, see ServerOptions).
class Authenticator {
 public:
  // `keys` may be null: no authentication. `keys_path` is what Reload() re-reads.
  Authenticator(std::unique_ptr<KeyStore> keys, std::string keys_path);

  bool enabled() const;

  // Who sent `authorization` (the raw metadata value, e.g. "Bearer abc"; empty when absent).
  // UNAUTHENTICATED: missing, malformed or unknown key. Messages never contain the key.
  absl::StatusOr<Caller> Identify(absl::string_view authorization) const;

  // PERMISSION_DENIED if `caller`'s role is below `required`.
  static absl::Status CheckRole(const Caller& caller, Role required);

  // Identify, then CheckRole.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization, Role required) const;

  // Re-reads the keys file (e.g. on SIGHUP). On error the old keys stay in force.
  absl::Status Reload();

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyStore> keys_ ABSL_GUARDED_BY(mu_);
  const std::string keys_path_;
};

}  // namespace trainspotter

#endif  // TRAINSPOTTER_SERVICE_AUTH_H_
