// TlsStream: the Stream over TLS 1.3 on a TCP or Unix stream socket (Asio's ssl::stream), and the
// handshakes that make one: the server's after the first-byte sniff, the client's after connect.
#pragma once

#include <openssl/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/net/tls_context.hpp"

#include <asio/ssl/stream.hpp>

namespace duplex::net {

/// How long shutdown_send() waits for close_notify to leave before it gives up and half-closes
/// the socket anyway (a peer that reads nothing must not hold us).
inline constexpr std::chrono::milliseconds kCloseNotifyTimeout{2000};

class TlsStream final : public Stream {
 public:
  using TcpTls = asio::ssl::stream<ip::tcp::socket>;
  using UnixTls = asio::ssl::stream<unix_proto::socket>;

  /// For tls_accept / tls_connect: a stream whose handshake is still to be done.
  TlsStream(TcpTls s, Peer peer);
  TlsStream(UnixTls s, Peer peer);

  asio::any_io_executor get_executor() override;
  /// Completes at once when OpenSSL holds decrypted bytes or unprocessed records; otherwise reads
  /// until one byte of application data is decrypted (kept for read_some), so that records that
  /// carry no data (session tickets) do not wake the caller.
  awaitable<std::tuple<std::error_code>> wait_readable() override;
  awaitable<IoResult> read_some(asio::mutable_buffer into) override;
  /// Watches the socket, as SocketStream does: the peer's FIN (it follows close_notify).
  awaitable<std::error_code> wait_hangup() override;
  /// Sends close_notify without waiting for the peer's (reading goes on: TLS 1.3 allows a half
  /// close), then half-closes the socket. Bounded by kCloseNotifyTimeout. Call it before close()
  /// on a normal end: OpenSSL will not resume a session that ended without it.
  awaitable<void> shutdown_send() override;
  void cancel() noexcept override;
  void close() noexcept override;
  /// Closes at once with SO_LINGER 0 (the peer sees a reset), sending no close_notify.
  void abort() noexcept override;
  bool is_open() const noexcept override;
  void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) noexcept override;

  /// This connection resumed an earlier session (a ticket): no certificate exchange, no signature.
  bool session_reused() noexcept;
  /// For logs: "TLSv1.3 TLS_AES_256_GCM_SHA384".
  std::string description();
  SSL* native_handle() noexcept;
  /// 32 bytes both ends derive from this connection's secrets under `label` (RFC 8446 §7.5,
  /// SSL_export_keying_material): what an authentication exchange binds itself to, so that a relay
  /// between two TLS connections cannot forward it.
  Result<std::array<std::byte, 32>> exporter(std::string_view label);
  bool encrypted() const noexcept override { return true; }
  Result<std::array<std::byte, 32>> channel_binding(std::string_view label) override {
    return exporter(label);
  }

  /// Runs the handshake (used by tls_accept / tls_connect): `initial` are bytes already read from
  /// the socket (the server's sniff), which must stay valid until it completes; all within
  /// `deadline`. On success the peer's key fingerprint is in peer().
  awaitable<Status> handshake(asio::ssl::stream_base::handshake_type type,
                              asio::const_buffer initial, std::chrono::milliseconds deadline);

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override;

 private:
  std::variant<TcpTls, UnixTls> s_;
  std::array<std::byte, 1> held_{};  // the byte wait_readable decrypted, read_some's first
  bool has_held_ = false;
  std::error_code ended_;  // how the stream ended, seen by wait_readable, told by read_some
};

/// Server side: shakes hands on an accepted socket whose first bytes (`already_read`, from the
/// first-byte sniff; they must stay valid until this completes) began a ClientHello. Everything
/// within `deadline` (a trickling client does not extend it). `peer` is the socket's, as read at
/// accept; its key_fingerprint is filled in when the client showed a certificate. The failure's
/// detail is one line naming the peer ("TLS handshake with 1.2.3.4:5 failed: unsupported
/// protocol"; "… timed out after 10000 ms").
awaitable<Result<std::unique_ptr<TlsStream>>> tls_accept(asio::ssl::context& ctx, ip::tcp::socket s,
                                                         Peer peer, asio::const_buffer already_read,
                                                         std::chrono::milliseconds deadline);
awaitable<Result<std::unique_ptr<TlsStream>>> tls_accept(asio::ssl::context& ctx,
                                                         unix_proto::socket s, Peer peer,
                                                         asio::const_buffer already_read,
                                                         std::chrono::milliseconds deadline);

/// Client side on a connected socket: offers the session kept for `server` ("host:port", as
/// known_host_name() spells it) and keeps the new one. On success peer().key_fingerprint is the
/// server key's fingerprint, for the caller to check against known_hosts before it sends
/// anything.
awaitable<Result<std::unique_ptr<TlsStream>>> tls_connect(TlsClientContext& ctx, ConnectedSocket s,
                                                          const std::string& server,
                                                          std::chrono::milliseconds deadline);

/// Connects to `ep` (tcp:// or unix://) and shakes hands as tls_connect does; the deadline covers
/// the handshake, the connect has the system's. `steps`, when set, hears each step (-v).
awaitable<Result<std::unique_ptr<TlsStream>>> tls_dial(TlsClientContext& ctx, const Endpoint& ep,
                                                       std::chrono::milliseconds deadline,
                                                       DialSteps steps = {});

}  // namespace duplex::net
