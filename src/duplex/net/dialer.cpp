// Dialer implementation: connect (net/socket_ops), then wrap the socket as a Stream.
#include "duplex/net/dialer.hpp"

#include <variant>

#include "duplex/net/socket_ops.hpp"
#include "duplex/net/socket_stream.hpp"

namespace duplex::net {

awaitable<Result<std::unique_ptr<Stream>>> dial(const Endpoint& ep, DialSteps steps) {
  auto connected = co_await connect_socket(ep, std::move(steps));
  if (!connected) co_return std::move(connected).failure();
  co_return std::unique_ptr<Stream>(std::make_unique<SocketStream>(std::move(*connected)));
}

}  // namespace duplex::net
