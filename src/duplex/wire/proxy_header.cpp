// PROXY header decoding, v1 and v2, as haproxy's doc/proxy-protocol.txt lays them out (sections
// 2.1 and 2.2). Pure; the only library call is inet_pton(3), which reads its argument only.
#include "duplex/wire/proxy_header.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace duplex::wire {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
// Address block sizes after the 16 fixed bytes (spec 2.2): two addresses, then two ports.
constexpr std::size_t kInetBlock = 4 + 4 + 2 + 2;
constexpr std::size_t kInet6Block = 16 + 16 + 2 + 2;
constexpr std::size_t kUnixPath = 108;
constexpr std::size_t kUnixBlock = kUnixPath * 2;

std::uint8_t at(ByteView in, std::size_t i) noexcept {
  return std::to_integer<std::uint8_t>(in[i]);
}

ProxyHeader failed(std::string_view why) noexcept {
  ProxyHeader h;
  h.status = ProxyStatus::error;
  h.error = why;
  return h;
}

// A v1 address of the line's family: dotted quad for TCP4, RFC 4291 text for TCP6.
bool v1_address(std::string_view text, ProxyFamily family, ProxyAddress& out) noexcept {
  char z[INET6_ADDRSTRLEN]{};  // inet_pton wants a NUL-terminated string
  if (text.empty() || text.size() >= sizeof z) return false;
  std::memcpy(z, text.data(), text.size());
  return ::inet_pton(family == ProxyFamily::inet ? AF_INET : AF_INET6, z, out.ip.data()) == 1;
}

// A v1 port: decimal, 0-65535.
bool v1_port(std::string_view text, std::uint16_t& out) noexcept {
  if (text.empty() || text.size() > 5) return false;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// "PROXY TCP4 SRC DST SPORT DPORT\r\n", single spaces, or "PROXY UNKNOWN[ anything]\r\n".
ProxyHeader decode_v1(ByteView in) noexcept {
  const std::string_view text = as_chars(in.first(std::min(in.size(), kProxyV1MaxSize)));
  const auto lf = text.find('\n');
  if (lf == std::string_view::npos) {
    if (text.size() >= kProxyV1MaxSize) return failed("v1 header has no CRLF within 107 bytes");
    return {};
  }
  if (lf == 0 || text[lf - 1] != '\r') return failed("v1 header line does not end with CRLF");
  std::string_view line = text.substr(kV1Prefix.size(), lf - 1 - kV1Prefix.size());
  ProxyHeader h;
  h.version = 1;
  h.size = lf + 1;
  // The spec: after UNKNOWN the receiver ignores everything up to the CRLF.
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    h.status = ProxyStatus::parsed;
    return h;
  }
  std::array<std::string_view, 5> field{};
  std::size_t n = 0;
  for (;;) {
    const auto sp = line.find(' ');
    if (n == field.size()) return failed("v1 header has more than 5 fields after PROXY");
    field[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  if (field[0] == "TCP4")
    h.family = ProxyFamily::inet;
  else if (field[0] == "TCP6")
    h.family = ProxyFamily::inet6;
  else
    return failed("v1 header's protocol is not TCP4, TCP6 or UNKNOWN");
  if (n != 5) return failed("v1 header needs 4 fields after its protocol, one space apart");
  if (!v1_address(field[1], h.family, h.source) || !v1_address(field[2], h.family, h.destination))
    return failed("v1 header has an address that does not match its protocol");
  if (!v1_port(field[3], h.source.port) || !v1_port(field[4], h.destination.port))
    return failed("v1 header has a port that is not a number from 0 to 65535");
  h.status = ProxyStatus::parsed;
  return h;
}

std::uint16_t be16(ByteView in, std::size_t i) noexcept {
  return static_cast<std::uint16_t>(at(in, i) << 8 | at(in, i + 1));
}

std::string_view unix_path(ByteView block) noexcept {
  const std::string_view raw = as_chars(block.first(kUnixPath));
  return raw.substr(0, raw.find('\0'));
}

// Each TLV (u8 type, u16 length, value) fits in what is left; their contents are not used.
bool tlvs_fit(ByteView tlvs) noexcept {
  while (!tlvs.empty()) {
    if (tlvs.size() < 3) return false;
    const std::size_t len = be16(tlvs, 1);
    if (tlvs.size() - 3 < len) return false;
    tlvs = tlvs.subspan(3 + len);
  }
  return true;
}

ProxyHeader decode_v2(ByteView in, std::size_t max_size) noexcept {
  if (in.size() < kProxyV2FixedSize) return {};
  const std::uint8_t version = at(in, 12) >> 4, command = at(in, 12) & 0x0f;
  const std::uint8_t family = at(in, 13) >> 4, transport = at(in, 13) & 0x0f;
  if (version != 2) return failed("v2 header's version is not 2");
  if (command > 1) return failed("v2 header's command is neither LOCAL nor PROXY");
  if (family > 3) return failed("v2 header's address family is unknown");
  if (transport > 2) return failed("v2 header's transport is unknown");
  const std::size_t total = kProxyV2FixedSize + be16(in, 14);
  if (total > max_size) return failed("v2 header is longer than this server takes");
  if (in.size() < total) return {};

  ProxyHeader h;
  h.version = 2;
  h.size = total;
  h.status = ProxyStatus::parsed;
  // LOCAL: the spec has the receiver ignore the address block (a health check's own connection).
  if (command == 0) {
    h.command = ProxyCommand::local;
    return h;
  }
  h.datagram = transport == 2;
  const ByteView rest = in.subspan(kProxyV2FixedSize, total - kProxyV2FixedSize);
  std::size_t block = 0;
  switch (family) {
    case 0: return h;  // AF_UNSPEC: no address to use; what follows is not ours to read
    case 1:
      h.family = ProxyFamily::inet;
      block = kInetBlock;
      break;
    case 2:
      h.family = ProxyFamily::inet6;
      block = kInet6Block;
      break;
    default:
      h.family = ProxyFamily::unix_socket;
      block = kUnixBlock;
      break;
  }
  if (rest.size() < block) return failed("v2 header is too short for its address family");
  if (!tlvs_fit(rest.subspan(block))) return failed("v2 header has a TLV that overruns it");
  if (h.family == ProxyFamily::unix_socket) {
    h.source.path = unix_path(rest);
    h.destination.path = unix_path(rest.subspan(kUnixPath));
    return h;
  }
  const std::size_t ip = block == kInetBlock ? 4 : 16;
  for (std::size_t i = 0; i < ip; ++i) {
    h.source.ip[i] = at(rest, i);
    h.destination.ip[i] = at(rest, ip + i);
  }
  h.source.port = be16(rest, 2 * ip);
  h.destination.port = be16(rest, 2 * ip + 2);
  return h;
}

// How much of `in` agrees with `sig` (both from their starts).
bool agrees(ByteView in, const std::uint8_t* sig, std::size_t sig_size) noexcept {
  const std::size_t n = std::min(in.size(), sig_size);
  for (std::size_t i = 0; i < n; ++i)
    if (at(in, i) != sig[i]) return false;
  return true;
}

bool agrees_v1(ByteView in) noexcept {
  return agrees(in, reinterpret_cast<const std::uint8_t*>(kV1Prefix.data()), kV1Prefix.size());
}
bool agrees_v2(ByteView in) noexcept {
  return agrees(in, kProxyV2Signature.data(), kProxyV2Signature.size());
}

}  // namespace

ProxyHeader decode_proxy_header(ByteView in, std::size_t max_size) noexcept {
  if (in.empty()) return {};
  if (agrees_v1(in)) {
    if (in.size() < kV1Prefix.size()) return {};
    return decode_v1(in);
  }
  if (agrees_v2(in)) {
    if (in.size() < kProxyV2Signature.size()) return {};
    return decode_v2(in, max_size);
  }
  ProxyHeader h;
  h.status = ProxyStatus::not_proxy;
  return h;
}

bool starts_with_proxy_signature(ByteView in) noexcept {
  return (in.size() >= kV1Prefix.size() && agrees_v1(in)) ||
         (in.size() >= kProxyV2Signature.size() && agrees_v2(in));
}

}  // namespace duplex::wire
