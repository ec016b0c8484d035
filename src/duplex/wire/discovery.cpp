// Discovery datagrams: fixed 14-byte header, then (replies only) the JSON bytes. No I/O, no throws.
#include "duplex/wire/discovery.hpp"

#include <algorithm>
#include <array>

#include "duplex/core/errors.hpp"

namespace duplex::wire {
namespace {

constexpr std::array<std::byte, kDiscoveryPrefixSize> kPrefix{std::byte{0x00}, std::byte{'D'},
                                                              std::byte{'P'}, std::byte{'X'}};
constexpr std::uint8_t kProbeKind = '?';
constexpr std::uint8_t kReplyKind = '!';

void write_header(std::uint8_t kind, std::uint64_t nonce, Bytes& out) {
  ByteWriter w(out);
  w.raw(kPrefix);
  w.u8(kind);
  w.u8(kDiscoveryVersion);
  w.u64(nonce);
}

// Reads prefix, kind, version and nonce; false unless all are there and as expected.
bool read_header(ByteReader& r, std::uint8_t kind, std::uint64_t& nonce) noexcept {
  const ByteView prefix = r.raw(kPrefix.size());
  const std::uint8_t k = r.u8();
  const std::uint8_t version = r.u8();
  nonce = r.u64();
  return !r.failed() && std::equal(prefix.begin(), prefix.end(), kPrefix.begin()) && k == kind &&
         version == kDiscoveryVersion;
}

}  // namespace

bool is_discovery(ByteView datagram) noexcept {
  return datagram.size() >= kPrefix.size() &&
         std::equal(kPrefix.begin(), kPrefix.end(), datagram.begin());
}

Bytes encode_probe(const DiscoveryProbe& probe) {
  Bytes out;
  out.reserve(kDiscoveryHeaderSize);
  write_header(kProbeKind, probe.nonce, out);
  return out;
}

Bytes encode_reply(const DiscoveryReply& reply) {
  Bytes out;
  out.reserve(kDiscoveryHeaderSize + reply.json.size());
  write_header(kReplyKind, reply.nonce, out);
  ByteWriter(out).raw(as_bytes(reply.json));
  return out;
}

Result<DiscoveryProbe> decode_probe(ByteView datagram) noexcept {
  ByteReader r(datagram);
  std::uint64_t nonce = 0;
  if (!read_header(r, kProbeKind, nonce) || !r.done())
    return Result<DiscoveryProbe>(errc::bad_message);
  return DiscoveryProbe{nonce};
}

Result<DiscoveryReply> decode_reply(ByteView datagram) noexcept {
  ByteReader r(datagram);
  std::uint64_t nonce = 0;
  if (!read_header(r, kReplyKind, nonce) || r.remaining() == 0)
    return Result<DiscoveryReply>(errc::bad_message);
  return DiscoveryReply{nonce, std::string(as_chars(r.rest()))};
}

}  // namespace duplex::wire
