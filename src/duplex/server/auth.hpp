// Who may run commands: a shared token (any transport) or, on a Unix socket, the peer's uid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/net/stream.hpp"

namespace duplex::server {

struct AuthPolicy {
  std::string token;                // empty: no token accepted
  std::vector<uid_t> allowed_uids;  // Unix-socket peers with these uids need no token
};

/// Checks a client's AUTH. On success returns how the client is known ("uid 1000", "token");
/// nullopt means refused. The token is compared in constant time (over SHA-256 digests, so that
/// not even its length leaks). The peer uid comes from the kernel (SO_PEERCRED), not the client.
std::optional<std::string> authenticate(const AuthPolicy& policy, std::string_view token,
                                        net::Stream& stream);

/// Peer uid of a Unix-socket connection; nullopt for other transports.
std::optional<uid_t> peer_uid(net::Stream& stream);

}  // namespace duplex::server
