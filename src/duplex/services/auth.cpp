// Authentication checks on what the transport proves: the uid allow list, then authorized_keys.
#include "duplex/services/auth.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "duplex/wire/auth_proof.hpp"

namespace duplex::services {

std::array<std::byte, 32> token_key(std::string_view token) {
  return wire::auth_key(token);
}

TransportCheck check_transport(const AuthPolicy& policy, const net::Peer& peer) {
  TransportCheck out;
  if (peer.uid) {
    if (std::find(policy.allowed_uids.begin(), policy.allowed_uids.end(), *peer.uid) !=
        policy.allowed_uids.end()) {
      out.identity = Identity{"uid " + std::to_string(*peer.uid), std::nullopt};
      return out;
    }
    out.refusal = fmt::format("uid {} is not allowed", *peer.uid);
  }
  if (peer.key_fingerprint.empty()) return out;
  if (!policy.authorized_keys) {
    out.refusal = fmt::format("key {}: no --authorized-keys on this server", peer.key_fingerprint);
    return out;
  }
  const KeyDecision d = policy.authorized_keys->authorize(peer.key_fingerprint, peer.client_key);
  switch (d.verdict) {
    case KeyVerdict::unknown_key:
      out.refusal = fmt::format("unknown key {}", peer.key_fingerprint);
      break;
    case KeyVerdict::address_refused:
      out.refusal = fmt::format(
          "key {}{}: address {} refused by from= on line {}", peer.key_fingerprint,
          d.key->comment.empty() ? "" : " (" + d.key->comment + ")", peer.client_key, d.key->line);
      break;
    case KeyVerdict::allowed:
      out.identity =
          Identity{fmt::format("key {}{}", peer.key_fingerprint,
                               d.key->comment.empty() ? "" : " (" + d.key->comment + ")"),
                   d.key->command};
      out.refusal.clear();
      break;
  }
  return out;
}

}  // namespace duplex::services
