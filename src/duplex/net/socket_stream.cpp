// SocketStream: TCP and Unix stream sockets behind the Stream interface.
#include "duplex/net/socket_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace duplex::net {
namespace {

Peer tcp_peer(ip::tcp::socket& s) {
  Peer p;
  std::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) {
    p.address = p.client_key = "tcp:?";
    return p;
  }
  const auto addr = ep.address();
  p.client_key = addr.to_string();
  p.address = addr.is_v6() ? fmt::format("[{}]:{}", p.client_key, ep.port())
                           : fmt::format("{}:{}", p.client_key, ep.port());
  return p;
}

// unix(7): SO_PEERCRED gives the credentials the peer had when it called connect(), from the
// kernel; the one place duplex reads them.
Peer unix_peer(unix_proto::socket& s) {
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

}  // namespace

SocketStream::SocketStream(ip::tcp::socket s) : s_(std::move(s)) {
  auto& t = std::get<ip::tcp::socket>(s_);
  std::error_code ignored;
  t.set_option(ip::tcp::no_delay(true), ignored);  // request/reply traffic: don't wait for Nagle
  peer_ = tcp_peer(t);
}

SocketStream::SocketStream(unix_proto::socket s) : s_(std::move(s)) {
  auto& u = std::get<unix_proto::socket>(s_);
  // Unix stream sockets get no buffer autotuning (TCP does): with the 208 KiB default a bulk
  // stream wakes the reader for every small skb. 1 MiB is a ceiling, not an allocation; idle
  // connections cost nothing extra (docs/BENCHMARKS.md: exec bulk output 0.3x -> 0.7x a pipe).
  std::error_code ignored;
  u.set_option(asio::socket_base::send_buffer_size(kUnixSendBuffer), ignored);
  peer_ = unix_peer(u);
}

asio::any_io_executor SocketStream::get_executor() {
  return std::visit([](auto& s) -> asio::any_io_executor { return s.get_executor(); }, s_);
}

awaitable<std::error_code> SocketStream::wait_readable() {
  // Nothing is buffered above a plain socket, so the socket's readiness is the answer.
  auto [ec] = co_await std::visit(
      [](auto& s) { return s.async_wait(asio::socket_base::wait_read, use_tuple); }, s_);
  co_return ec;
}

awaitable<IoResult> SocketStream::read_some(asio::mutable_buffer into) {
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return s.async_read_some(into, use_tuple); }, s_);
  co_return IoResult{ec, n};
}

awaitable<IoResult> SocketStream::write_all(std::span<const asio::const_buffer> bufs) {
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return asio::async_write(s, bufs, use_tuple); }, s_);
  co_return IoResult{ec, n};
}

// Asio's reactor does not ask for EPOLLRDHUP, and a FIN behind unread bytes does not make a
// socket report an error. A private epoll set that watches only for hang-up tells us without
// reading (epoll(7): an epoll fd is itself pollable, so Asio can wait on it). Costs one fd, only
// while someone waits here.
awaitable<std::error_code> SocketStream::wait_hangup() {
  const int fd = native_handle();
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) co_return std::error_code(errno, std::system_category());
  asio::posix::stream_descriptor watch(get_executor(), ep);
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

awaitable<void> SocketStream::shutdown_send() {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.shutdown(asio::socket_base::shutdown_send, ignored);
      },
      s_);
  co_return;
}

void SocketStream::cancel() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.cancel(ignored);
      },
      s_);
}

void SocketStream::close() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.close(ignored);
      },
      s_);
}

void SocketStream::abort() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.set_option(asio::socket_base::linger(true, 0), ignored);
        s.close(ignored);
      },
      s_);
}

bool SocketStream::is_open() const noexcept {
  return std::visit([](const auto& s) { return s.is_open(); }, s_);
}

void SocketStream::enable_keepalive(std::chrono::seconds idle,
                                    std::chrono::seconds interval) noexcept {
  auto* t = std::get_if<ip::tcp::socket>(&s_);
  if (t == nullptr) return;  // a Unix peer cannot vanish without the kernel telling us
  const int fd = t->native_handle();
  const int on = 1, cnt = 3;
  const int idle_s = static_cast<int>(idle.count()), intvl_s = static_cast<int>(interval.count());
  // tcp(7): TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT override the 2-hour system default.
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

int SocketStream::native_handle() noexcept {
  return std::visit([](auto& s) { return static_cast<int>(s.native_handle()); }, s_);
}

}  // namespace duplex::net
