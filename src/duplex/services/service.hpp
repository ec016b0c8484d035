// What a service sees of a framed session: the messages routed to it, a FrameSink for its
// replies, the peer's identity, and whether the client is still there. Never a socket.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/services/frame_sink.hpp"
#include "duplex/wire/frame.hpp"

namespace duplex::services {

/// What the session does after a message was handled.
enum class Next {
  read_on,  // decode the next frame
  end,      // stop reading: the client is gone (a send returned false)
};

/// After a send: read on, or end when the client is gone. (Keep the co_await out of the
/// conditional: GCC 12 destroys temporaries twice in `co_await f(T{}) ? a : b`.)
constexpr Next after_send(bool sent) noexcept {
  return sent ? Next::read_on : Next::end;
}

/// A handler's outcome. A Failure is a protocol breach: its code (a duplex::errc) and detail go
/// to the client in an ERROR frame, then the session closes (answer-then-drop).
using Handled = Result<Next>;

/// One service's part of one framed session (docs/ARCHITECTURE.md, "Adding a service"). The
/// session's ServiceTable routes each message type to exactly one Service.
class Service {
 public:
  virtual ~Service() = default;
  /// Handles one message of a type routed here. Runs on the session's reader: while it waits,
  /// no further frame is read (that is the backpressure on a client's input). `payload` is
  /// valid until the returned awaitable completes.
  virtual awaitable<Handled> handle(wire::MsgType type, ByteView payload) = 0;
};

/// The session a service runs in, as the service sees it. Implemented by the server's framed
/// session; tests may implement it with fakes.
class SessionContext {
 public:
  virtual ~SessionContext() = default;
  /// The session's executor (one thread): services run their own work on it.
  virtual asio::any_io_executor get_executor() = 0;
  /// Where replies go (the session's single writer).
  virtual FrameSink& sink() noexcept = 0;
  /// Who the client is, read once when the connection was made.
  virtual const net::Peer& peer() const noexcept = 0;
  /// Completes when the client has hung up (FIN, reset or vanished), even while frames it sent
  /// are still unread: for a handler that waits on something other than the client.
  virtual awaitable<void> client_gone() = 0;
  /// While busy, the idle timeout does not end the session (a command runs or waits its turn).
  virtual void set_busy(bool busy) noexcept = 0;
  /// Probes a silent peer so that a vanished host ends the session (TCP keepalive; a no-op on
  /// transports where a peer cannot vanish unnoticed).
  virtual void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) = 0;

  /// The connection is TLS, or came through a loopback or Unix-socket listener: protected mode
  /// lets exec run only on such a channel.
  virtual bool channel_protected() const noexcept = 0;
  /// The stream's channel binding (TLS exporter under `label`); fails on a plain stream.
  virtual Result<std::array<std::byte, 32>> channel_binding(std::string_view label) = 0;
  /// The client has authenticated as `identity` ("token", "uid 1000", "key SHA256:…"): the
  /// session lifts its pre-authentication limits (small frames, the auth deadline).
  virtual void set_authenticated(std::string identity) = 0;

  /// The connection's id, as every log line about it starts ("[c42] ..."); 0 when it has none.
  virtual std::uint64_t connection_id() const noexcept { return 0; }
  /// The client authenticated, or its transport says who it is (a Unix-socket peer whose uid
  /// the server trusts): what stats require, as exec does.
  virtual bool identified() const noexcept { return false; }
  /// For stats: the service the client uses now ("exec", "stats"; a string literal), and the
  /// command it runs (empty: none). `command` must stay valid until it is set again.
  virtual void set_service(const char* /*service*/) noexcept {}
  virtual void set_command(std::string_view /*command*/) noexcept {}
};

}  // namespace duplex::services
