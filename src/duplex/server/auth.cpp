// Authentication checks.
#include "duplex/server/auth.hpp"

#include <sys/socket.h>

#include <algorithm>

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace duplex::server {

std::optional<uid_t> peer_uid(net::Stream& stream) {
  return stream.peer().uid;
}

std::optional<std::string> authenticate(const AuthPolicy& policy, std::string_view token,
                                        net::Stream& stream) {
  if (auto uid = peer_uid(stream);
      uid && std::find(policy.allowed_uids.begin(), policy.allowed_uids.end(), *uid) !=
                 policy.allowed_uids.end())
    return "uid " + std::to_string(*uid);
  if (policy.token.empty() || token.empty()) return std::nullopt;
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(policy.token.data()), policy.token.size(), b);
  if (CRYPTO_memcmp(a, b, sizeof a) != 0) return std::nullopt;
  return std::string("token");
}

}  // namespace duplex::server
