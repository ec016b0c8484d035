// Authentication of exec clients: what the transport proves (a Unix peer's uid, a TLS client
// key in authorized_keys) and the token's challenge-response (wire/auth_proof.hpp). The server
// keeps only K = SHA-256(token); the token never crosses the wire.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "duplex/net/stream.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::services {

/// The key of the token's challenge-response: SHA-256 of the token. The server keeps this, not
/// the token.
std::array<std::byte, 32> token_key(std::string_view token);

/// Who an authenticated client is, and what restricts it for the session.
struct Identity {
  /// For logs and AUTH_OK: "uid 1000", "token", "key SHA256:… (alice@laptop)".
  std::string name;
  /// authorized_keys command="…": runs instead of whatever the client asks (sshd's ForceCommand).
  std::optional<std::string> forced_command;
};

/// What the transport alone says about a peer.
struct TransportCheck {
  std::optional<Identity> identity;  // set: this suffices, no token needed
  /// Otherwise why not, for the log ("uid 1001 is not allowed", "unknown key SHA256:…",
  /// "key SHA256:… (c): address refused by from= on line 3"); empty when the transport showed
  /// nothing (TCP without a client key).
  std::string refusal;
};

/// A Unix peer whose uid (SO_PEERCRED, read once at accept, never from the client) is in
/// allowed_uids, or over TLS a client key (Peer::key_fingerprint) that authorized_keys allows from
/// the peer's address (Peer::client_key), its restrictions kept.
TransportCheck check_transport(const AuthPolicy& policy, const net::Peer& peer);

}  // namespace duplex::services
