// libFuzzer target: the PROXY header decoder. A verdict never claims bytes it was not given, a
// parsed header decodes the same from exactly its own bytes, need_more stays within the bound a
// reader relies on, and a smaller limit never accepts what a larger one refused.
// Asio-free: links only duplex_core and duplex_wire. Aborts on a broken invariant.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "duplex/wire/proxy_header.hpp"

namespace {

using namespace duplex;
using namespace duplex::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const ProxyHeader& a, const ProxyHeader& b) {
  return a.status == b.status && a.version == b.version && a.command == b.command &&
         a.family == b.family && a.datagram == b.datagram && a.size == b.size &&
         a.source.ip == b.source.ip && a.source.port == b.source.port &&
         a.destination.ip == b.destination.ip && a.destination.port == b.destination.port &&
         a.source.path == b.source.path && a.destination.path == b.destination.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in = std::as_bytes(std::span(data, size));
  // The first byte, when there is one, picks a smaller limit for a second look.
  const std::size_t small = size > 0 ? 16 + data[0] : 16;
  for (const std::size_t limit : {kProxyMaxSize, small}) {
    const ProxyHeader h = decode_proxy_header(in, limit);
    switch (h.status) {
      case ProxyStatus::need_more:
        check(size < std::max(kProxyV1MaxSize, limit));
        check(h.size == 0 && h.error.empty());
        break;
      case ProxyStatus::not_proxy: check(size > 0 && !starts_with_proxy_signature(in)); break;
      case ProxyStatus::error: check(!h.error.empty() && h.size == 0); break;
      case ProxyStatus::parsed: {
        check(h.size > 0 && h.size <= size && h.size <= std::max(kProxyV1MaxSize, limit));
        check(h.version == 1 || h.version == 2);
        check(starts_with_proxy_signature(in));
        check(h.error.empty());
        check(same(decode_proxy_header(in.first(h.size), limit), h));
        check(decode_proxy_header(in.first(h.size - 1), limit).status == ProxyStatus::need_more);
        if (h.command == ProxyCommand::local) check(h.family == ProxyFamily::unspec);
        if (h.family == ProxyFamily::unix_socket) {
          check(h.source.path.size() <= 108 && h.destination.path.size() <= 108);
        } else {
          check(h.source.path.empty() && h.destination.path.empty());
        }
        break;
      }
    }
  }
  // A tighter limit only ever refuses more.
  const ProxyHeader wide = decode_proxy_header(in, kProxyMaxSize);
  const ProxyHeader tight = decode_proxy_header(in, small);
  if (wide.status == ProxyStatus::error) check(tight.status == ProxyStatus::error);
  return 0;
}
