// SocketStream: TCP and Unix stream sockets behind the Stream interface. The socket-level work
// (options, SO_PEERCRED, the hang-up watch, keepalive) is in socket_ops, shared with TLS.
#include "duplex/net/socket_stream.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace duplex::net {

SocketStream::SocketStream(ip::tcp::socket s) : SocketStream(ConnectedSocket(std::move(s))) {}

SocketStream::SocketStream(ip::tcp::socket s, const ip::tcp::endpoint& remote) : s_(std::move(s)) {
  auto& sock = std::get<ip::tcp::socket>(s_);
  tune_socket(sock);
  peer_ = tcp_peer(remote);
}

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

namespace {

// Completes a read with an IoResult instead of Asio's (error, bytes), keeping the handler's
// executor, allocator and cancellation slot (so that `read_some(b) || timer` still cancels it).
template <typename Handler>
struct CompleteAsIoResult {
  Handler handler;

  using executor_type = asio::associated_executor_t<Handler>;
  executor_type get_executor() const noexcept { return asio::get_associated_executor(handler); }
  using allocator_type = asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler); }
  using cancellation_slot_type = asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return asio::get_associated_cancellation_slot(handler);
  }

  void operator()(std::error_code ec, std::size_t n) { std::move(handler)(IoResult{ec, n}); }
};

}  // namespace

awaitable<IoResult> SocketStream::read_some(asio::mutable_buffer into) {
  // Not a coroutine: Asio's own awaitable for the read, completed as an IoResult. An idle
  // connection waits here, and a frame of our own would cost each one its bytes.
  return asio::async_initiate<const asio::use_awaitable_t<>, void(IoResult)>(
      [this](auto handler, asio::mutable_buffer b) {
        std::visit(
            [&](auto& s) {
              s.async_read_some(b, CompleteAsIoResult<decltype(handler)>{std::move(handler)});
            },
            s_);
      },
      asio::use_awaitable, into);
}

IoResult SocketStream::try_read_some(asio::mutable_buffer into) noexcept {
  // recv(2) with MSG_DONTWAIT: non-blocking for this call only, whatever mode Asio keeps the
  // socket in. Errors in Asio's category, as read_some() reports them.
  const ssize_t n = ::recv(native_handle(), into.data(), into.size(), MSG_DONTWAIT);
  if (n > 0) return {{}, static_cast<std::size_t>(n)};
  if (n == 0) return {into.size() == 0 ? std::error_code{} : make_error_code(asio::error::eof), 0};
  const int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
    return {make_error_code(asio::error::would_block), 0};
  return {std::error_code(e, asio::error::get_system_category()), 0};
}

IoResult SocketStream::peek(asio::mutable_buffer into) noexcept {
  const ssize_t n = ::recv(native_handle(), into.data(), into.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return {{}, static_cast<std::size_t>(n)};
  if (n == 0) return {make_error_code(asio::error::eof), 0};
  const int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
    return {make_error_code(asio::error::would_block), 0};
  return {std::error_code(e, asio::error::get_system_category()), 0};
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
