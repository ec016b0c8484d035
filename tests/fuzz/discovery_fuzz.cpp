// libFuzzer target: the discovery datagram decoders. Whatever decodes re-encodes to the very same
// datagram (the encoding is canonical); anything that decodes starts with the discovery prefix.
// Asio-free: links only duplex_core and duplex_wire. Aborts on a broken invariant.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "duplex/core/errors.hpp"
#include "duplex/wire/discovery.hpp"

namespace {

using namespace duplex;
using namespace duplex::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const Bytes& a, ByteView b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in = std::as_bytes(std::span(data, size));
  const bool prefixed = is_discovery(in);

  const auto probe = decode_probe(in);
  if (probe) {
    check(prefixed && size == kDiscoveryHeaderSize);
    check(same(encode_probe(*probe), in));
  } else {
    check(probe.error() == errc::bad_message);
  }

  const auto reply = decode_reply(in);
  if (reply) {
    check(prefixed && size > kDiscoveryHeaderSize && !probe);
    check(reply->json.size() == size - kDiscoveryHeaderSize);
    check(same(encode_reply(*reply), in));
  } else {
    check(reply.error() == errc::bad_message);
  }
  return 0;
}
