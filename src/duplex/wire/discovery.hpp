// Discovery datagrams (docs/PROTOCOL.md, "Discovery"): the probe a client broadcasts and the reply
// a server sends back. Pure: no I/O, no JSON parsing here (the reply's JSON is opaque bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"

namespace duplex::wire {

/// The only discovery version so far; a datagram with another one is not a valid probe/reply.
inline constexpr std::uint8_t kDiscoveryVersion = 1;
/// 00 'D' 'P' 'X': typed text never starts with NUL, so the upper service never sees these.
inline constexpr std::size_t kDiscoveryPrefixSize = 4;
/// Prefix, kind ('?' or '!'), u8 version, u64 nonce.
inline constexpr std::size_t kDiscoveryHeaderSize = 14;

/// A client's question "who serves here?". The nonce comes back in every reply to it.
struct DiscoveryProbe {
  std::uint64_t nonce = 0;
  bool operator==(const DiscoveryProbe&) const = default;
};

/// A server's answer: the probe's nonce and a JSON object (UTF-8) saying who it is.
struct DiscoveryReply {
  std::uint64_t nonce = 0;
  std::string json;
  bool operator==(const DiscoveryReply&) const = default;
};

/// True when the datagram starts with the discovery prefix (00 'D' 'P' 'X'): never upper it,
/// whether or not it then decodes.
bool is_discovery(ByteView datagram) noexcept;

/// Exactly kDiscoveryHeaderSize bytes.
Bytes encode_probe(const DiscoveryProbe& probe);
/// The header, then the JSON bytes. The caller keeps the whole within one datagram.
Bytes encode_reply(const DiscoveryReply& reply);

/// A probe is exactly 14 bytes with kind '?' and version 1; anything else is errc::bad_message.
Result<DiscoveryProbe> decode_probe(ByteView datagram) noexcept;
/// A reply is the header with kind '!' and version 1, then at least one byte of JSON (an object
/// is never empty); anything else is errc::bad_message. The JSON itself is not checked here.
Result<DiscoveryReply> decode_reply(ByteView datagram) noexcept;

}  // namespace duplex::wire
