// SocketStream: TCP and Unix stream sockets behind the Stream interface. The socket-level work
// (options, SO_PEERCRED, the hang-up watch, keepalive) is in socket_ops, shared with TLS.
#include "duplex/net/socket_stream.hpp"

#include <utility>

namespace duplex::net {

SocketStream::SocketStream(ip::tcp::socket s) : SocketStream(ConnectedSocket(std::move(s))) {}

SocketStream::SocketStream(unix_proto::socket s) : SocketStream(ConnectedSocket(std::move(s))) {}

SocketStream::SocketStream(ConnectedSocket s) : s_(std::move(s)) {
  std::visit(
      [this](auto& sock) {
        tune_socket(sock);
        peer_ = socket_peer(sock);
      },
      s_);
}

ConnectedSocket SocketStream::release() && {
  return std::move(s_);
}

asio::any_io_executor SocketStream::get_executor() {
  return std::visit([](auto& s) -> asio::any_io_executor { return s.get_executor(); }, s_);
}

awaitable<std::tuple<std::error_code>> SocketStream::wait_readable() {
  // Nothing is buffered above a plain socket, so the socket's readiness is the answer. Not a
  // coroutine: Asio's awaitable is returned as it is (one frame less per idle connection).
  return std::visit([](auto& s) { return s.async_wait(asio::socket_base::wait_read, use_tuple); },
                    s_);
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

awaitable<std::error_code> SocketStream::wait_hangup() {
  return wait_socket_hangup(get_executor(), native_handle());
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
  // A Unix peer cannot vanish without the kernel telling us.
  if (std::holds_alternative<ip::tcp::socket>(s_))
    enable_tcp_keepalive(native_handle(), idle, interval);
}

int SocketStream::native_handle() noexcept {
  return std::visit([](auto& s) { return static_cast<int>(s.native_handle()); }, s_);
}

}  // namespace duplex::net
