// SocketStream: the Stream over a connected TCP or Unix stream socket.
#pragma once

#include <memory>
#include <utility>
#include <variant>

#include "duplex/net/socket_ops.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

class SocketStream final : public Stream {
 public:
  /// Takes a connected socket; reads the peer's address (and credentials on a Unix socket) now,
  /// and sets the per-transport options (TCP_NODELAY; a larger send buffer on Unix sockets).
  explicit SocketStream(ip::tcp::socket s);
  /// A TCP socket whose peer address is known already (from accept): no getpeername(2).
  SocketStream(ip::tcp::socket s, const ip::tcp::endpoint& remote);
  explicit SocketStream(unix_proto::socket s);
  explicit SocketStream(ConnectedSocket s);

  /// Hands the socket over (e.g. to a TLS layer after the first-byte sniff); this stream is
  /// closed afterwards. peer() stays valid and may be copied first.
  ConnectedSocket release() &&;

  asio::any_io_executor get_executor() override;
  awaitable<std::tuple<std::error_code>> wait_readable() override;
  awaitable<IoResult> read_some(asio::mutable_buffer into) override;
  IoResult try_read_some(asio::mutable_buffer into) noexcept override;
  awaitable<std::error_code> wait_hangup() override;
  awaitable<void> shutdown_send() override;
  void cancel() noexcept override;
  void close() noexcept override;
  void abort() noexcept override;
  bool is_open() const noexcept override;
  void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) noexcept override;
  bool splices() const noexcept override { return true; }
  awaitable<IoResult> write_spliced(std::span<const asio::const_buffer> head, int pipe_fd,
                                    std::size_t n) override;
  awaitable<IoResult> read_spliced(int pipe_fd, std::size_t n) override;

  /// Copies what has already arrived into `into` without taking it off the socket (MSG_PEEK), and
  /// without waiting: would_block when nothing is there. For reading a header of unknown length
  /// (the PROXY protocol's) without taking any byte that follows it.
  IoResult peek(asio::mutable_buffer into) noexcept;

  /// The socket's fd, for tests and socket options; sessions never need it.
  int native_handle() noexcept;

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override;

 private:
  ConnectedSocket s_;
};

}  // namespace duplex::net
