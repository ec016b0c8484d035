// Endpoint: every address form (README "Addresses") parsed into one value. Pure: no Asio, no DNS,
// no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "duplex/core/result.hpp"

namespace duplex::net {

enum class Transport { tcp, udp, unix_stream, unix_dgram };

/// A parsed address. For tcp/udp `host` is an IPv4 literal, an IPv6 literal (without brackets)
/// or a host name, and `port` is 0..65535; for unix/unixgram `path` is an absolute file path.
struct Endpoint {
  Transport transport = Transport::tcp;
  std::string host;
  std::uint16_t port = 0;
  std::string path;
  /// tls://HOST:PORT or tls+unix:///path: TLS over the stream (tcp or unix_stream). A client
  /// speaks TLS; a server listener refuses plaintext clients.
  bool tls = false;

  bool is_unix() const noexcept {
    return transport == Transport::unix_stream || transport == Transport::unix_dgram;
  }
  bool is_stream() const noexcept {
    return transport == Transport::tcp || transport == Transport::unix_stream;
  }
  /// Host is an IPv6 literal (it is bracketed in URLs).
  bool is_ipv6() const noexcept { return host.find(':') != std::string::npos; }
  /// 127.0.0.0/8, ::1, "localhost", or a Unix socket: reachable from this machine only.
  bool is_loopback() const noexcept;
  /// Canonical URL: tcp://127.0.0.1:8080, tcp://[::1]:8080, tls://…, udp://…, unix:///p,
  /// tls+unix:///p, unixgram:///p.
  std::string url() const;

  bool operator==(const Endpoint&) const = default;
};

/// Parses `tcp://HOST:PORT`, `HOST:PORT` (= tcp), `tcp://[V6]:PORT`, `tls://HOST:PORT` (tcp with
/// `tls` set), `udp://HOST:PORT`, `unix:///abs/path`, `tls+unix:///abs/path` (unix_stream with
/// `tls` set), `unixgram:///abs/path`. Schemes are case-insensitive. On failure the code is
/// errc::bad_url and the detail is a short reason naming what is wrong ("port 70000 is out of
/// range (0-65535)").
Result<Endpoint> parse_endpoint(std::string_view url);

}  // namespace duplex::net
