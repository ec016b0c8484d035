// Front: serves one bound address of the server, whatever carries it: an accept loop for stream
// transports (stream_front.cpp), one socket serving many peers for datagrams (datagram_front.cpp).
// Server::Impl only opens, starts and closes fronts; adding a transport adds a front, not a
// server rewrite.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::server {

struct ServerState;
class IoPool;
class Refusals;

/// After a failed accept or receive a front waits, doubling from the first to the most, so a
/// shortage (no fds, no buffers) is not a busy loop and the logs see it once a step.
inline constexpr std::chrono::milliseconds kFirstBackoff{10};
inline constexpr std::chrono::milliseconds kMaxBackoff{1000};

/// What every front shares with its server; all of it outlives the fronts.
struct FrontContext {
  asio::io_context& control;  // the fronts' loop: one thread, also runs signals and the stop
  ServerState& state;         // limits, counters, `stopping`
  IoPool& pool;               // sessions run on its workers, each on one for its whole life
  Refusals& refusals;         // connections over --max-connections: bound and log
};

class Front {
 public:
  virtual ~Front() = default;
  Front() = default;
  Front(const Front&) = delete;
  Front& operator=(const Front&) = delete;

  /// The bound address, with the real port when port 0 was asked.
  virtual const net::Endpoint& endpoint() const noexcept = 0;
  std::string url() const { return endpoint().url(); }
  /// The bound socket's own address is loopback (127.0.0.0/8, ::1) or a Unix socket: judged from
  /// the socket after bind, never from the name it was given (which a resolver may map anywhere).
  /// Only such a stream front serves exec without TLS. Datagram fronts serve no exec: false.
  virtual bool loopback() const noexcept { return false; }
  /// Starts serving and returns at once: on the control loop or the only worker's (streams) or
  /// on a thread of the front's own (datagrams). Control thread.
  virtual void start() = 0;
  /// Stops taking new peers; what is pending ends soon after on the loop it runs on, so the front
  /// must live until that loop has returned. Sessions already started are not touched: the
  /// server's stop sequence closes those. Control thread.
  virtual void close() noexcept = 0;
};

/// Binds `ep` and returns the front that serves it. A failure's detail is one line naming the
/// address ("cannot listen on udp://127.0.0.1:9: address already in use ...").
Result<std::unique_ptr<Front>> open_front(const net::Endpoint& ep, const FrontContext& ctx);
/// The front for a socket bound by a service manager (socket activation): a listening stream
/// socket or a bound datagram socket, judged from the fd; `tls` as a tls:// listener.
Result<std::unique_ptr<Front>> adopt_front(int fd, bool tls, const FrontContext& ctx);

}  // namespace duplex::server
