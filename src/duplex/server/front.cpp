// open_front: the one place that chooses a front by transport.
#include "duplex/server/front.hpp"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "duplex/net/socket_activation.hpp"
#include "duplex/server/datagram_front.hpp"
#include "duplex/server/stream_front.hpp"

namespace duplex::server {

Result<std::unique_ptr<Front>> open_front(const net::Endpoint& ep, const FrontContext& ctx) {
  switch (ep.transport) {
    case net::Transport::tcp:
    case net::Transport::unix_stream: return open_stream_front(ep, ctx);
    case net::Transport::udp:
    case net::Transport::unix_dgram: return open_datagram_front(ep, ctx);
  }
  return fail(std::error_code(EPROTONOSUPPORT, std::system_category()),
              fmt::format("cannot listen on {}: unknown transport", ep.url()));
}

Result<std::unique_ptr<Front>> adopt_front(int fd, bool tls, const FrontContext& ctx) {
  auto ep = net::socket_endpoint(fd);
  if (!ep) return std::move(ep).failure();
  if (ep->is_stream()) return adopt_stream_front(fd, tls, ctx);
  return adopt_datagram_front(fd, ctx);
}

}  // namespace duplex::server
