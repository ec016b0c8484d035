// Authentication checks: uid allow list first, then the token in constant time.
#include "duplex/services/auth.hpp"

#include <algorithm>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "duplex/core/errors.hpp"

namespace duplex::services {

std::array<std::byte, 32> token_key(std::string_view token) {
  std::array<std::byte, 32> key{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         reinterpret_cast<unsigned char*>(key.data()));
  return key;
}

Result<std::string> authenticate(const AuthPolicy& policy, std::string_view token,
                                 const net::Peer& peer) {
  if (peer.uid && std::find(policy.allowed_uids.begin(), policy.allowed_uids.end(), *peer.uid) !=
                      policy.allowed_uids.end())
    return "uid " + std::to_string(*peer.uid);
  if (policy.token.empty() || token.empty()) return errc::auth_failed;
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(policy.token.data()), policy.token.size(), b);
  if (CRYPTO_memcmp(a, b, sizeof a) != 0) return errc::auth_failed;
  return std::string("token");
}

}  // namespace duplex::services
