// libFuzzer target: the metrics endpoint's HTTP request head parser. Fed whole or split in two at
// any point, it gives the same verdict and the same request; it never holds more than its limit.
// Asio-free: links only duplex_core and duplex_wire. Aborts on a broken invariant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "duplex/wire/http_request.hpp"

namespace {

using namespace duplex::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::size_t kLimit = 512;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpRequestParser whole(kLimit);
  const HttpParse a = whole.feed(std::span<const char>(in.data(), in.size()));
  // The split point comes from the input itself, so that every split gets explored.
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  HttpRequestParser split(kLimit);
  HttpParse b = split.feed(std::span<const char>(in.data(), cut));
  if (b == HttpParse::need_more) b = split.feed(std::span<const char>(in.data() + cut, size - cut));
  check(a == b);
  if (a == HttpParse::done) {
    check(whole.request().method == split.request().method);
    check(whole.request().path == split.request().path);
    check(whole.request().accept == split.request().accept);
    check(whole.request().path.size() + whole.request().accept.size() <= kLimit);
  }
  if (a == HttpParse::bad || a == HttpParse::too_large) check(!whole.error().empty());
  if (a == HttpParse::need_more) check(size < kLimit);
  return 0;
}
