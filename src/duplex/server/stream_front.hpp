// Stream front: a listening TCP or Unix socket and its accept loop (one session per connection).
#pragma once

#include <memory>

#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/server/front.hpp"

namespace duplex::server {

/// Binds `ep` (tcp or unix) with net::Listener's rules. Once started, each connection goes to
/// the pool's next worker (round robin) and runs there as a session; one refused at accept
/// (penalty box, --max-connections, reserved slots, per-address cap: admission.hpp's turn_away)
/// is logged through ctx.refusals; out of fds (EMFILE), a spare fd
/// is given up to accept and close one waiting client, then the loop backs off 10 ms -> 1 s.
Result<std::unique_ptr<Front>> open_stream_front(const net::Endpoint& ep, const FrontContext& ctx);
/// The same over a listening socket bound by a service manager (net::Listener::adopt).
Result<std::unique_ptr<Front>> adopt_stream_front(int fd, bool tls, const FrontContext& ctx);

}  // namespace duplex::server
