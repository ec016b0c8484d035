// libFuzzer target: the known_hosts parser and lookup. Pure: links only duplex_core. Aborts when a
// refusal is not one bounded line, or a parsed pin is not found again by check() and a re-parse
// (a Unix socket path by the re-parse).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "duplex/core/fingerprint.hpp"
#include "duplex/core/known_hosts.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = duplex::KnownHosts::parse(text);
  if (!parsed) {
    const std::string why = parsed.message();
    check(why.starts_with("line "));
    check(why.find('\n') == std::string::npos);
    check(why.size() <= 512);
    return 0;
  }
  std::string again;
  for (const auto& e : parsed->entries()) {
    check(duplex::check_fingerprint(e.fingerprint).ok());
    // A Unix socket's path is written back as it was read.
    if (e.name.starts_with('/')) {
      check(duplex::can_pin_socket_path(e.name));
      again += duplex::known_socket_line(e.name, e.fingerprint);
      continue;
    }
    // The canonical name splits back into host and port, and the pin is found under them.
    const auto colon = e.name.rfind(':');
    check(colon != std::string::npos);
    std::string host = e.name.substr(0, colon);
    if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
    const auto port = static_cast<std::uint16_t>(std::stoul(e.name.substr(colon + 1)));
    check(parsed->check(host, port, e.fingerprint).status == duplex::HostKeyStatus::known);
    check(duplex::known_host_name(host, port) == e.name);
    again += duplex::known_hosts_line(host, port, e.fingerprint);
  }
  // The lines we would write parse back to the same pins.
  auto reparsed = duplex::KnownHosts::parse(again);
  check(reparsed.ok());
  check(reparsed->entries().size() == parsed->entries().size());
  for (std::size_t i = 0; i < reparsed->entries().size(); ++i) {
    check(reparsed->entries()[i].name == parsed->entries()[i].name);
    check(reparsed->entries()[i].fingerprint == parsed->entries()[i].fingerprint);
  }
  return 0;
}
