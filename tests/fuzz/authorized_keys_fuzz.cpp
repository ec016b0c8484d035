// libFuzzer target: the authorized_keys parser, its address patterns and the decision. Pure: links
// only duplex_core. Aborts when a refusal is not one bounded line naming its line, or a parsed key
// is not found again by authorize().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "duplex/core/authorized_keys.hpp"
#include "duplex/core/fingerprint.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::string_view kAddresses[] = {"127.0.0.1",  "::1",      "10.1.2.3",
                                           "fe80::1%lo", "uid:1000", "::ffff:192.168.1.1"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = duplex::AuthorizedKeys::parse(text);
  if (!parsed) {
    const std::string why = parsed.message();
    check(why.starts_with("line "));
    check(why.find('\n') == std::string::npos);
    check(why.size() <= 512);
    return 0;
  }
  for (const auto& key : parsed->keys()) {
    check(duplex::check_fingerprint(key.fingerprint).ok());
    check(!key.command || !key.command->empty());
    for (const auto& p : key.from) {
      check(!p.pattern.empty());
      (void)duplex::address_matches(p, text);  // any text as the peer's address: no crash
    }
    for (std::string_view address : kAddresses) {
      const auto d = parsed->authorize(key.fingerprint, address);
      check(d.verdict != duplex::KeyVerdict::unknown_key);
      check(d.key != nullptr && d.key->fingerprint == key.fingerprint);
      check((d.verdict == duplex::KeyVerdict::allowed) == d.key->allows_address(address));
      // An unrestricted line allows every address.
      if (key.from.empty()) check(d.verdict == duplex::KeyVerdict::allowed);
    }
  }
  return 0;
}
