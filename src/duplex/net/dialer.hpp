// Dialer: connect to an Endpoint (TCP with name resolution, or a Unix socket).
#pragma once

#include <memory>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

/// Connects to `ep`. A failure's detail is one line naming the address
/// ("cannot connect to tcp://127.0.0.1:8080: Connection refused"); never throws for a refusal,
/// a timeout or a name that does not resolve. `steps`, when set, hears each step (-v).
awaitable<Result<std::unique_ptr<Stream>>> dial(const Endpoint& ep, DialSteps steps = {});

}  // namespace duplex::net
