// AnyStream: one connected byte stream over TCP or a Unix socket. The only place transports differ.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "duplex/net/asio.hpp"

namespace duplex::net {

/// SO_SNDBUF for Unix stream sockets, both ends (see listener.cpp for why).
inline constexpr int kUnixSendBuffer = 1 << 20;

/// A connected stream socket of any supported transport. Models Asio's AsyncReadStream and
/// AsyncWriteStream, so asio::async_read/async_write work on it. Not thread-safe: use it from
/// the executor it was created on.
class AnyStream {
 public:
  using executor_type = asio::any_io_executor;

  explicit AnyStream(ip::tcp::socket s) : s_(std::move(s)) {}
  explicit AnyStream(unix_proto::socket s) : s_(std::move(s)) {}
  AnyStream(AnyStream&&) noexcept = default;
  AnyStream& operator=(AnyStream&&) noexcept = default;

  executor_type get_executor() {
    return std::visit([](auto& s) -> executor_type { return s.get_executor(); }, s_);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return std::visit([&](auto& s) { return s.async_read_some(b, std::forward<Token>(token)); },
                      s_);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& b, Token&& token) {
    return std::visit([&](auto& s) { return s.async_write_some(b, std::forward<Token>(token)); },
                      s_);
  }

  /// Completes when the socket is readable, without taking a buffer: idle connections hold none.
  template <class Token>
  auto async_wait_readable(Token&& token) {
    return std::visit(
        [&](auto& s) {
          return s.async_wait(asio::socket_base::wait_read, std::forward<Token>(token));
        },
        s_);
  }

  /// Completes when the socket reports an error (e.g. the peer reset it); for watching a peer
  /// while not reading from it.
  template <class Token>
  auto async_wait_error(Token&& token) {
    return std::visit(
        [&](auto& s) {
          return s.async_wait(asio::socket_base::wait_error, std::forward<Token>(token));
        },
        s_);
  }

  bool is_open() const {
    return std::visit([](const auto& s) { return s.is_open(); }, s_);
  }
  bool is_unix() const noexcept { return std::holds_alternative<unix_proto::socket>(s_); }
  int native_handle() {
    return std::visit([](auto& s) { return static_cast<int>(s.native_handle()); }, s_);
  }

  /// Half-close: the peer reads EOF after what was written. Errors are ignored (peer may be gone).
  void shutdown_send() noexcept;
  /// Cancels pending operations (they complete with operation_aborted); the socket stays open.
  void cancel() noexcept;
  /// Closes the socket; pending operations complete with operation_aborted.
  void close() noexcept;
  /// Sets SO_LINGER 0 so close() sends RST (used when a peer is being dropped for abuse).
  void set_linger_zero() noexcept;
  /// "127.0.0.1:54321", "[::1]:54321", "unix:pid=123,uid=1000" — for logs and stats.
  std::string peer_description();

  template <class T>
  T* get_if() noexcept {
    return std::get_if<T>(&s_);
  }

 private:
  std::variant<ip::tcp::socket, unix_proto::socket> s_;
};

}  // namespace duplex::net
