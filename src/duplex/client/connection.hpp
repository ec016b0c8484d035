// Connection: the client side of one connection — dial, handshake, frames in and out, upper calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "duplex/core/byte_buffer.hpp"
#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

enum class Protocol {
  detect,  // try the framed handshake; if the server echoes it upper-cased (the seed's
           // server.py), continue on the same connection with the raw protocol
  framed,  // framed only: a raw server is an error
  raw,     // the seed's protocol: send bytes, read as many back
};

/// How a TLS client decides to believe a server's key (ssh's StrictHostKeyChecking, in small).
struct TrustOptions {
  std::string fingerprint;   // --fingerprint SHA256:…: the key expected; pinned when it matches
  bool accept_new = false;   // --trust accept-new: pin an unknown key without asking
  bool interactive = false;  // stdin and stderr are terminals: ask about an unknown key
  std::string known_hosts;   // empty: ${XDG_CONFIG_HOME:-~/.config}/duplex/known_hosts
  std::string identity;      // client key to present; empty: the default one when it exists
  std::string sessions;      // TLS session cache file; empty: the default; "-": none
};

struct ClientOptions {
  Protocol protocol = Protocol::detect;
  std::chrono::milliseconds timeout{10'000};  // for each reply; zero waits forever
  std::string agent = "duplex";
  bool tls = false;    // --tls: as if the URL were tls:// (the endpoint's own flag also counts)
  TrustOptions trust;  // for TLS connections
  /// Log each step (resolve, connect, TLS, trust, handshake) at info level, which -v shows, as
  /// ssh -v does. Off for the many connections of a load test.
  bool log_steps = false;
  /// Called once, in open(), with the server's transport identity (its uid on a Unix socket)
  /// before a byte of ours is sent (over TLS, once its key is believed): a failure ends open()
  /// with it, the connection reset.
  std::function<Status(const net::Peer&)> accept_server;
  /// Framed only: frames sent in HELLO's write, which docs/PROTOCOL.md allows before WELCOME
  /// (one round trip less); their replies follow WELCOME.
  Bytes after_hello;
};

struct Frame {
  wire::MsgType type{};
  Bytes payload;
};

/// A frame as read_frame_view() returns it: the payload is a view into the connection's buffer,
/// valid until the next read. `diverted`: the payload went to Divert::pipe_fd instead (and the
/// view is empty).
struct FrameView {
  wire::MsgType type{};
  ByteView payload;
  bool diverted = false;
};

/// Where read_frame_view() may move the payloads of one message type instead of returning them:
/// a pipe (our stdout), by splice(2), when the stream can (a plain socket). -1: nowhere.
struct Divert {
  wire::MsgType type{};
  int pipe_fd = -1;
};

struct TlsClientState;

/// Every failure below is a Failure whose detail is the one line a user sees, naming the server.
/// Its code says what happened:
///  - a system or Asio code: the connection could not be made, or was lost (asio::error::eof
///    when the server closed it);
///  - std::errc::timed_out: no reply within ClientOptions::timeout;
///  - a duplex::errc: the server broke the protocol (bad_frame, bad_message, unexpected_message)
///    or sent an ERROR frame, whose code it is (auth_failed, service_disabled, ...).
class Connection {
 public:
  /// Dials `ep` and (unless raw) performs the handshake. Over TLS (`ep.tls` or `opt.tls`) the
  /// client key is presented when there is one, and the server's key is checked against
  /// known_hosts (client/trust.hpp) before anything is sent: a refusal's code is
  /// std::errc::permission_denied. TLS sessions are loaded from opt.trust.sessions before dialing
  /// and saved once the handshake is done and again at shutdown_send().
  static awaitable<Result<Connection>> open(const net::Endpoint& ep, ClientOptions opt);

  bool framed() const noexcept { return framed_; }
  const wire::Welcome& welcome() const noexcept { return welcome_; }
  const net::Endpoint& endpoint() const noexcept { return ep_; }
  net::Stream& stream() noexcept { return *stream_; }

  /// One upper request and its reply (framed or raw).
  awaitable<Result<std::string>> upper(std::string_view msg);

  /// Writes one encoded frame (framed connections).
  awaitable<Status> write(const Bytes& frame);
  /// Reads the next frame; an ERROR frame is a Failure with the ERROR's code. `timeout` applies
  /// (zero waits forever).
  awaitable<Result<Frame>> read_frame();
  /// read_frame() without copying the payload out of our buffer. A `divert.type` frame whose
  /// payload is mostly still to come goes to `divert.pipe_fd` (what has arrived, then the rest
  /// straight from the socket); writing there fails with std::errc::broken_pipe when the pipe's
  /// reader has gone.
  awaitable<Result<FrameView>> read_frame_view(Divert divert = {});
  /// Half-closes our side (over TLS: close_notify, then the TLS sessions are saved).
  awaitable<void> shutdown_send();
  /// The graceful end: shutdown_send(), then close. What a client that is done should call.
  awaitable<void> finish();
  /// Over TLS: this connection resumed an earlier session (no certificate exchange).
  bool tls_resumed() const noexcept { return tls_resumed_; }
  /// Over TLS, the client key presented ("SHA256:… (PATH)"); empty when none was.
  const std::string& client_key() const noexcept { return client_key_; }
  /// True when opened with ClientOptions::log_steps.
  bool log_steps() const noexcept { return opt_.log_steps; }
  /// Ends the connection at once, dropping whatever we queued and the server has not taken
  /// (a TCP reset): the server learns we are gone even when it has stopped reading, which a
  /// FIN queued behind unsent stdin would never tell it.
  void abort() noexcept;

 private:
  Connection(std::unique_ptr<net::Stream> s, net::Endpoint ep, ClientOptions opt)
      : stream_(std::move(s)), ep_(std::move(ep)), opt_(std::move(opt)) {}
  static awaitable<Result<Connection>> open_tls(const net::Endpoint& ep, ClientOptions opt);
  void save_tls_sessions() const;
  Status accept_server();
  awaitable<Status> handshake();
  awaitable<Result<std::size_t>> read_some_with_timeout(std::span<std::byte> into);
  awaitable<Status> read_exact(std::span<std::byte> into);
  Failure lost(std::error_code ec) const;

  std::unique_ptr<net::Stream> stream_;
  std::shared_ptr<TlsClientState> tls_;  // the context and session file of a TLS connection
  bool tls_resumed_ = false;
  std::string client_key_;
  net::Endpoint ep_;
  ClientOptions opt_;
  bool framed_ = false;
  wire::Welcome welcome_;
  ByteBuffer in_;               // received, not yet decoded
  std::size_t viewed_ = 0;      // the frame read_frame_view() returned, consumed at the next read
  bool diverted_last_ = false;  // the last frame went to a Divert: the next may well too
};

/// True when `f` says the connection failed or was lost (not a protocol breach or a refusal).
bool is_connection_failure(const Failure& f) noexcept;

}  // namespace duplex::client
