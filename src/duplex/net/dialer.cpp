// Dialer implementation: resolve, try each address in turn, report the last failure in one line.
#include "duplex/net/dialer.hpp"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "duplex/net/socket_stream.hpp"

namespace duplex::net {

awaitable<Result<std::unique_ptr<Stream>>> dial(const Endpoint& ep) {
  auto ex = co_await asio::this_coro::executor;
  auto failed = [&](std::error_code ec) {
    return fail(ec, fmt::format("cannot connect to {}: {}", ep.url(), ec.message()));
  };
  using Connected = std::unique_ptr<Stream>;
  if (ep.transport == Transport::unix_stream) {
    unix_proto::socket s(ex);
    auto [ec] = co_await s.async_connect(unix_proto::endpoint(ep.path), use_tuple);
    if (ec) co_return failed(ec);
    co_return Connected(std::make_unique<SocketStream>(std::move(s)));
  }
  if (ep.transport != Transport::tcp)
    co_return fail(std::error_code(EPROTONOSUPPORT, std::system_category()),
                   fmt::format("cannot connect to {}: not a stream transport", ep.url()));
  ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(
      ep.host, std::to_string(ep.port), ip::tcp::resolver::numeric_service, use_tuple);
  if (rec) co_return failed(rec);
  std::error_code last = std::make_error_code(std::errc::host_unreachable);
  for (const auto& r : results) {
    ip::tcp::socket s(ex);
    auto [ec] = co_await s.async_connect(r.endpoint(), use_tuple);
    if (!ec) co_return Connected(std::make_unique<SocketStream>(std::move(s)));
    last = ec;
  }
  co_return failed(last);
}

}  // namespace duplex::net
