// SocketStream: the Stream over a connected TCP or Unix stream socket.
#pragma once

#include <memory>
#include <utility>
#include <variant>

#include "duplex/net/stream.hpp"

namespace duplex::net {

/// SO_SNDBUF for Unix stream sockets, both ends (see socket_stream.cpp for why).
inline constexpr int kUnixSendBuffer = 1 << 20;

class SocketStream final : public Stream {
 public:
  /// Takes a connected socket; reads the peer's address (and credentials on a Unix socket) now,
  /// and sets the per-transport options (TCP_NODELAY; a larger send buffer on Unix sockets).
  explicit SocketStream(ip::tcp::socket s);
  explicit SocketStream(unix_proto::socket s);

  asio::any_io_executor get_executor() override;
  awaitable<std::error_code> wait_readable() override;
  awaitable<IoResult> read_some(asio::mutable_buffer into) override;
  awaitable<std::error_code> wait_hangup() override;
  awaitable<void> shutdown_send() override;
  void cancel() noexcept override;
  void close() noexcept override;
  void abort() noexcept override;
  bool is_open() const noexcept override;
  void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) noexcept override;

  /// The socket's fd, for tests and socket options; sessions never need it.
  int native_handle() noexcept;

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override;

 private:
  std::variant<ip::tcp::socket, unix_proto::socket> s_;
};

}  // namespace duplex::net
