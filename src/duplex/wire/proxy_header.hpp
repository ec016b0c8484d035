// PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text and v2 binary): what a load
// balancer sends before its client's first byte. Pure: bytes in, a verdict out; no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "duplex/core/bytes.hpp"

namespace duplex::wire {

/// v1: "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n" is 56 bytes; the spec caps a
/// line (TCP6 included) at 107 bytes with its CRLF.
inline constexpr std::size_t kProxyV1MaxSize = 107;
/// v2: 12-byte signature, version/command, family/transport, u16 length of what follows.
inline constexpr std::size_t kProxyV2FixedSize = 16;
inline constexpr std::array<std::uint8_t, 12> kProxyV2Signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
/// The largest v2 header taken by default, TLVs included. The spec allows 16 + 65535 bytes, but
/// what balancers send (addresses, ALPN, SNI, a unique id, TLS details) fits well within this;
/// a longer one is refused rather than buffered.
inline constexpr std::size_t kProxyMaxSize = 4096;

enum class ProxyStatus {
  need_more,  // the bytes so far are a strict prefix of a header: read more
  not_proxy,  // the bytes do not start a PROXY header (a direct client's own first bytes)
  error,      // they start one, but it is malformed or over the limit; `error` says how
  parsed,     // a whole header: `size` bytes, then the client's own bytes
};

enum class ProxyCommand {
  local,  // v2 LOCAL: the balancer's own connection (a health check); keep the real peer
  proxy,  // relayed for a client: use the carried source address
};

enum class ProxyFamily {
  unspec,       // v1 UNKNOWN, v2 AF_UNSPEC: no usable address; keep the real peer
  inet,         // TCP4 / AF_INET
  inet6,        // TCP6 / AF_INET6
  unix_socket,  // v2 AF_UNIX: source and destination are socket paths
};

struct ProxyAddress {
  std::array<std::uint8_t, 16> ip{};  // network order; inet uses the first 4 bytes
  std::uint16_t port = 0;
  std::string_view path;  // unix_socket: up to its first NUL (a view into the input)
};

struct ProxyHeader {
  ProxyStatus status = ProxyStatus::need_more;
  std::string_view error;  // status error: one line saying what is wrong (a string literal)
  int version = 0;         // 1 or 2, once parsed
  ProxyCommand command = ProxyCommand::proxy;
  ProxyFamily family = ProxyFamily::unspec;  // LOCAL headers are always reported unspec
  bool datagram = false;                     // v2 transport DGRAM (UDP or unixgram)
  ProxyAddress source, destination;
  std::size_t size = 0;  // parsed: header bytes; the client's own bytes start here
};

/// Decodes a PROXY header from the front of `in` (all the connection's bytes so far). Never
/// reads past `in`, never allocates, never throws. need_more only while `in` is shorter than
/// what the header needs and no larger than max(kProxyV1MaxSize, max_size), so a reader that
/// stops there is bounded. v2 TLVs are checked for framing (each fits) and otherwise skipped.
ProxyHeader decode_proxy_header(ByteView in, std::size_t max_size = kProxyMaxSize) noexcept;

/// True when `in` starts with a whole v1 ("PROXY ") or v2 (12-byte) signature: a PROXY header
/// from a peer that is not trusted to send one.
bool starts_with_proxy_signature(ByteView in) noexcept;

}  // namespace duplex::wire
