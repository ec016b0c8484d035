// libFuzzer target: the URL parser. Asio-free: links only duplex_endpoint. Aborts when a parsed
// endpoint does not survive url() -> parse again, or a refusal is not one short line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "duplex/net/endpoint.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  auto ep = duplex::net::parse_endpoint(url);
  if (!ep) {
    // A refusal reaches the user as one line: no newline, and bounded whatever the input (quoted
    // fragments are cut at 48 characters, each shown as at most 4 bytes: \xNN).
    const std::string why = ep.message();
    check(!why.empty());
    check(why.find('\n') == std::string::npos);
    check(why.size() <= 1024);
    return 0;
  }
  // The canonical spelling parses back to the same endpoint.
  auto again = duplex::net::parse_endpoint(ep->url());
  check(again.ok());
  check(*again == *ep);
  return 0;
}
