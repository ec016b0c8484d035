// Challenge-response computations: SHA-256, HMAC-SHA256 and CRYPTO_memcmp from OpenSSL, nonces
// from the kernel.
#include "duplex/wire/auth_proof.hpp"

#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "duplex/core/errors.hpp"

namespace duplex::wire {
namespace {

constexpr std::string_view kServerLabel = "duplex-auth server v1";
constexpr std::string_view kClientLabel = "duplex-auth client v1";

const unsigned char* u8(const void* p) {
  return static_cast<const unsigned char*>(p);
}

}  // namespace

AuthBlock auth_key(std::string_view token) {
  AuthBlock key{};
  SHA256(u8(token.data()), token.size(), reinterpret_cast<unsigned char*>(key.data()));
  return key;
}

AuthBlock auth_proof(ProofRole role, const AuthBlock& key, const AuthBlock& binding,
                     const AuthBlock& client_nonce, const AuthBlock& server_nonce) {
  const std::string_view label = role == ProofRole::server ? kServerLabel : kClientLabel;
  Bytes msg;
  msg.reserve(label.size() + 3 * 32);
  const auto add = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    msg.insert(msg.end(), b, b + n);
  };
  add(label.data(), label.size());
  add(binding.data(), binding.size());
  add(client_nonce.data(), client_nonce.size());
  add(server_nonce.data(), server_nonce.size());
  AuthBlock out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), u8(msg.data()), msg.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

bool same_proof(const AuthBlock& a, const AuthBlock& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// getrandom(2), not RAND_bytes: OpenSSL's generator is seeded from the same kernel source, and
// setting it up (providers, openssl.cnf) was 40% of the instructions of a whole `duplex exec`
// over a Unix socket, which draws one nonce and needs no other OpenSSL. Up to 256 bytes,
// getrandom returns them all and signals cannot interrupt it.
Result<AuthBlock> make_nonce() {
  AuthBlock n{};
  static_assert(sizeof(n) <= 256);
  if (::getrandom(n.data(), n.size(), 0) != static_cast<ssize_t>(n.size()))
    return fail(errc::internal, "cannot draw a nonce: getrandom failed");
  return n;
}

}  // namespace duplex::wire
