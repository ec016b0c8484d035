// Authentication of exec clients: a shared token (any transport) or, on a Unix socket, the peer's
// uid as the kernel reported it when the connection was made.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "duplex/core/result.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::services {

/// The key of the token's challenge-response: SHA-256 of the token. The server keeps this, not
/// the token.
std::array<std::byte, 32> token_key(std::string_view token);

/// Checks a client's AUTH. On success returns how the client is known ("uid 1000", "token");
/// errc::auth_failed otherwise (the reason is not told: no oracle for guessing). The token is
/// compared in constant time (over SHA-256 digests, so that not even its length leaks). The uid
/// comes from `peer` (SO_PEERCRED, read once at accept), never from the client.
Result<std::string> authenticate(const AuthPolicy& policy, std::string_view token,
                                 const net::Peer& peer);

}  // namespace duplex::services
