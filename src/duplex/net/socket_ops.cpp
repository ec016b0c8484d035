// Socket-level helpers: connect, options, SO_PEERCRED, EPOLLRDHUP watch, keepalive.
#include "duplex/net/socket_ops.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>

namespace duplex::net {

awaitable<Result<ConnectedSocket>> connect_socket(const Endpoint& ep, DialSteps steps) {
  auto ex = co_await asio::this_coro::executor;
  auto failed = [&](std::error_code ec) {
    return fail(ec, fmt::format("cannot connect to {}: {}", ep.url(), ec.message()));
  };
  auto step = [&](const std::string& line) {
    if (steps) steps(line);
  };
  if (ep.transport == Transport::unix_stream) {
    step(fmt::format("connecting to the Unix socket {}", ep.path));
    unix_proto::socket s(ex);
    auto [ec] = co_await s.async_connect(unix_proto::endpoint(ep.path), use_tuple);
    if (ec) co_return failed(ec);
    tune_socket(s);
    step(fmt::format("connected to {}", ep.path));
    co_return ConnectedSocket(std::move(s));
  }
  if (ep.transport != Transport::tcp)
    co_return fail(std::error_code(EPROTONOSUPPORT, std::system_category()),
                   fmt::format("cannot connect to {}: not a stream transport", ep.url()));
  std::error_code not_literal;
  ip::make_address(ep.host, not_literal);
  if (not_literal) step(fmt::format("resolving {} port {}", ep.host, ep.port));
  ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(
      ep.host, std::to_string(ep.port), ip::tcp::resolver::numeric_service, use_tuple);
  if (rec) co_return failed(rec);
  if (steps && not_literal) {
    std::string addresses;
    for (const auto& r : results)
      addresses += (addresses.empty() ? "" : ", ") + r.endpoint().address().to_string();
    step(fmt::format("{} is {}", ep.host, addresses));
  }
  std::error_code last = std::make_error_code(std::errc::host_unreachable);
  for (const auto& r : results) {
    step(fmt::format("connecting to {}", tcp_peer(r.endpoint()).address));
    ip::tcp::socket s(ex);
    auto [ec] = co_await s.async_connect(r.endpoint(), use_tuple);
    if (!ec) {
      tune_socket(s);
      if (steps) {
        std::error_code ignored;
        const auto local = s.local_endpoint(ignored);
        step(fmt::format("connected to {} from {}", tcp_peer(r.endpoint()).address,
                         ignored ? std::string("?") : tcp_peer(local).address));
      }
      co_return ConnectedSocket(std::move(s));
    }
    step(fmt::format("connecting to {} failed: {}", tcp_peer(r.endpoint()).address, ec.message()));
    last = ec;
  }
  co_return failed(last);
}

void tune_socket(ip::tcp::socket& s) noexcept {
  std::error_code ignored;
  s.set_option(ip::tcp::no_delay(true), ignored);
}

void tune_socket(unix_proto::socket& s) noexcept {
  std::error_code ignored;
  s.set_option(asio::socket_base::send_buffer_size(kUnixSendBuffer), ignored);
}

Peer socket_peer(ip::tcp::socket& s) {
  std::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) {
    Peer p;
    p.address = p.client_key = "tcp:?";
    return p;
  }
  return tcp_peer(ep);
}

Peer tcp_peer(const ip::tcp::endpoint& ep) {
  Peer p;
  const auto addr = ep.address();
  p.client_key = addr.to_string();
  p.address = addr.is_v6() ? fmt::format("[{}]:{}", p.client_key, ep.port())
                           : fmt::format("{}:{}", p.client_key, ep.port());
  return p;
}

// unix(7): SO_PEERCRED gives the credentials the peer had when it called connect(), from the
// kernel.
Peer socket_peer(unix_proto::socket& s) {
  Peer p;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    p.address = p.client_key = "unix:?";
    return p;
  }
  p.uid = cred.uid;
  p.pid = cred.pid;
  p.address = fmt::format("unix:pid={},uid={}", cred.pid, cred.uid);
  p.client_key = fmt::format("uid:{}", cred.uid);
  return p;
}

// epoll(7): an epoll fd is itself pollable, so Asio can wait on it. Costs one fd, only while
// someone waits here.
awaitable<std::error_code> wait_socket_hangup(asio::any_io_executor ex, int fd) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) co_return std::error_code(errno, std::system_category());
  asio::posix::stream_descriptor watch(ex, ep);
  epoll_event ev{};
  ev.events = EPOLLRDHUP;  // EPOLLHUP and EPOLLERR are always reported
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
    co_return std::error_code(errno, std::system_category());
  for (;;) {
    auto [ec] = co_await watch.async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
    if (ec) co_return ec;
    epoll_event got{};
    if (::epoll_wait(ep, &got, 1, 0) != 1) continue;  // readiness that went away
    if ((got.events & EPOLLERR) != 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      co_return std::error_code(err != 0 ? err : ECONNRESET, std::system_category());
    }
    co_return make_error_code(asio::error::eof);
  }
}

void enable_tcp_keepalive(int fd, std::chrono::seconds idle,
                          std::chrono::seconds interval) noexcept {
  const int on = 1, cnt = 3;
  const int idle_s = static_cast<int>(idle.count()), intvl_s = static_cast<int>(interval.count());
  // tcp(7): TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT override the 2-hour system default.
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

bool bound_to_loopback(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  switch (ss.ss_family) {
    case AF_UNIX: return true;
    case AF_INET: {
      const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
      return (ntohl(a.sin_addr.s_addr) >> 24) == 127;
    }
    case AF_INET6: {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
      return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
    }
    default: return false;
  }
}

}  // namespace duplex::net
