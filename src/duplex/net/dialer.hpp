// Dialer: connect to an Endpoint (TCP with name resolution, or a Unix socket).
#pragma once

#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/stream.hpp"

#include <memory>

namespace duplex::net {

/// Connects to `ep`. Throws std::system_error whose what() is one line naming the address
/// ("cannot connect to tcp://127.0.0.1:8080: Connection refused").
awaitable<std::unique_ptr<Stream>> dial(const Endpoint& ep);

}  // namespace duplex::net
