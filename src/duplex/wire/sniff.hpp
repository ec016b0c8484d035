// The first-byte sniff: which protocol a new connection speaks, from its first byte. Pure.
#pragma once

#include <cstddef>

namespace duplex::wire {

/// What a connection's first byte says about its client.
enum class Opening {
  raw,     // anything else: the tutorial's protocol (typed text, nc, the tutorial's client.py)
  framed,  // 0x00, the first byte of the framed protocol's preface (PROTOCOL.md §1)
  tls,     // 0x16, a TLS handshake record (RFC 8446 §5.1: ContentType handshake(22))
};

/// Classifies a connection by its first byte. Typed text never starts with NUL or 0x16 (^V), so
/// one port can serve raw, framed and (later) TLS clients without asking them anything.
constexpr Opening sniff(std::byte first) noexcept {
  if (first == std::byte{0x00}) return Opening::framed;
  if (first == std::byte{0x16}) return Opening::tls;
  return Opening::raw;
}

/// Lower-case name for logs and stats ("raw", "framed", "tls").
constexpr const char* opening_name(Opening o) noexcept {
  switch (o) {
    case Opening::raw: return "raw";
    case Opening::framed: return "framed";
    case Opening::tls: return "tls";
  }
  return "raw";
}

}  // namespace duplex::wire
