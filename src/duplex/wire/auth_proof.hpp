// The token's challenge-response (docs/PROTOCOL.md, authentication): the key, both proofs, the
// nonces and the constant-time compare. Pure functions over bytes (OpenSSL's HMAC and RNG), shared
// by the server's exec session and the client, so the two cannot disagree on the layout.
#pragma once

#include <string_view>

#include "duplex/core/result.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::wire {

/// The TLS exporter label of the channel binding B. On a stream without TLS, B is 32 zero bytes.
inline constexpr std::string_view kAuthBindingLabel = "EXPORTER-duplex-auth";

enum class ProofRole { server, client };

/// K = SHA-256(token): the key both proofs use. A server keeps K, never the token.
AuthBlock auth_key(std::string_view token);

/// HMAC-SHA256(K, "duplex-auth server v1" || B || Nc || Ns) for the server,
/// HMAC-SHA256(K, "duplex-auth client v1" || B || Nc || Ns) for the client. The distinct labels
/// keep one side's proof from ever being replayed as the other's.
AuthBlock auth_proof(ProofRole role, const AuthBlock& key, const AuthBlock& binding,
                     const AuthBlock& client_nonce, const AuthBlock& server_nonce);

/// Compares two proofs in constant time (CRYPTO_memcmp).
bool same_proof(const AuthBlock& a, const AuthBlock& b) noexcept;

/// 32 bytes from the system's CSPRNG (RAND_bytes).
Result<AuthBlock> make_nonce();

}  // namespace duplex::wire
