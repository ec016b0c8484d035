// Listener: a bound, listening stream socket (TCP or Unix) and the file it may own.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

class Listener {
 public:
  /// Binds and listens. TCP: SO_REUSEADDR (restart binds at once), no SO_REUSEPORT (a second
  /// server on the port is refused), IPv6 sockets are v6-only. Unix: the socket file is made
  /// owner-only (0600); a stale file is replaced only when no server answers on it; the file is
  /// removed when the Listener is destroyed. A failure's detail is one line naming the address
  /// ("cannot listen on tcp://127.0.0.1:80: permission denied").
  static Result<Listener> open(asio::io_context& ctx, const Endpoint& ep);
  /// Takes a listening TCP or Unix socket bound by someone else (socket activation: `fd` from
  /// take_inherited_sockets). Its endpoint is the socket's own address, with `tls` as given; a
  /// Unix socket's file is left in place at the end (the service manager owns it).
  static Result<Listener> adopt(asio::io_context& ctx, int fd, bool tls);

  // The socket file goes with the move: the moved-from listener must not remove it.
  Listener(Listener&& o) noexcept
      : acceptor_(std::move(o.acceptor_)),
        bound_(std::move(o.bound_)),
        owned_path_id_(std::exchange(o.owned_path_id_, std::nullopt)) {}
  Listener& operator=(Listener&&) = delete;
  ~Listener();

  /// The bound address, with the real port when port 0 was asked.
  const Endpoint& endpoint() const noexcept { return bound_; }

  /// Accepts one connection whose socket runs on `ex` (another thread's io_context).
  awaitable<Result<std::unique_ptr<Stream>>> accept(const asio::any_io_executor& ex);

  int native_handle() {
    return std::visit([](auto& a) { return static_cast<int>(a.native_handle()); }, acceptor_);
  }

  /// Stops accepting; a pending accept completes with operation_aborted.
  void close() noexcept;

 private:
  Listener(std::variant<ip::tcp::acceptor, unix_proto::acceptor> a, Endpoint bound)
      : acceptor_(std::move(a)), bound_(std::move(bound)) {}

  std::variant<ip::tcp::acceptor, unix_proto::acceptor> acceptor_;
  Endpoint bound_;
  // Device + inode of the Unix socket file we created: removed at exit only if still ours.
  std::optional<std::pair<unsigned long, unsigned long>> owned_path_id_;
};

}  // namespace duplex::net
