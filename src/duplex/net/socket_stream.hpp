// SocketStream: the Stream over a connected TCP or Unix stream socket.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <variant>

#include "duplex/net/socket_ops.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

/// std::allocator under another name, so that Asio allocates with it as asked instead of
/// recycling (see SocketStream::async_read_some).
template <typename T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() noexcept = default;
  template <typename U>
  ExactAllocator(const ExactAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(ExactAllocator, ExactAllocator) noexcept { return true; }
};

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

  /// Callback forms of read_some() and write(), for a session that keeps no coroutine frame
  /// while it waits (server/raw_session.hpp): `handler(IoResult)` runs on get_executor(), as
  /// any Asio completion does (never inside the call). The handler's own executor and
  /// cancellation slot are not used: cancel() and close() end these operations.
  /// The read is allocated at its own size: Asio's per-thread recycling would hand it whatever
  /// block was freed last (a coroutine frame of hundreds of bytes), and an idle connection keeps
  /// its read.
  template <typename Handler>
  void async_read_some(asio::mutable_buffer into, Handler&& handler) {
    std::visit(
        [&](auto& s) {
          s.async_read_some(into,
                            asio::bind_allocator(ExactAllocator<void>(),
                                                 [h = std::forward<Handler>(handler)](
                                                     std::error_code ec, std::size_t n) mutable {
                                                   std::move(h)(IoResult{ec, n});
                                                 }));
        },
        s_);
  }
  /// Writes all of `bytes`.
  template <typename Handler>
  void async_write(asio::const_buffer bytes, Handler&& handler) {
    std::visit(
        [&](auto& s) {
          asio::async_write(
              s, bytes,
              [h = std::forward<Handler>(handler)](std::error_code ec, std::size_t n) mutable {
                std::move(h)(IoResult{ec, n});
              });
        },
        s_);
  }

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
