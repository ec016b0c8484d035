// known_hosts parsing and lookup (pure), and the file's load and append (the only I/O here).
#include "duplex/core/known_hosts.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>

#include <fmt/format.h>

#include "duplex/core/fingerprint.hpp"
#include "duplex/core/glob.hpp"
#include "duplex/core/secure_file.hpp"

namespace duplex {
namespace {

constexpr std::string_view kBlanks = " \t";

std::string printable(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (char c : s.substr(0, kMax))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > kMax) out += "...";
  return out;
}

bool host_char(char c, bool ipv6) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  if (c == '.' || c == '-' || c == '_') return true;
  return ipv6 && (c == ':' || c == '%');  // IPv6 literal, zone index
}

// A Unix socket path as a known_hosts name: absolute, printable, no blank (fields are split on
// blanks).
bool socket_path_ok(std::string_view path) noexcept {
  if (!path.starts_with('/')) return false;
  return std::all_of(path.begin(), path.end(),
                     [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
}

// "host:port" or "[host]:port" into the canonical name, or a Unix socket's absolute path as it
// is; the error says what is wrong.
Result<std::string> parse_name(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail(std::errc::invalid_argument, fmt::format("'{}' {}", printable(text), why));
  };
  if (text.starts_with('/')) {
    if (!socket_path_ok(text)) return bad("is a socket path with a control character");
    return std::string(text);
  }
  std::string_view host, port;
  const bool bracketed = text.starts_with('[');
  if (bracketed) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return bad("has no ]:PORT after the [host]");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad("is an IPv6 address without brackets: write [ADDRESS]:PORT");
  }
  if (host.empty()) return bad("has an empty host");
  // ':' and a zone index belong to IPv6 literals only, which are bracketed; a bracketed name
  // ("[host]:2222", as ssh writes them) is still a name.
  const bool ipv6 = bracketed && host.find(':') != std::string_view::npos;
  for (char c : host)
    if (!host_char(c, ipv6)) return bad("has a character that no host name holds");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
      value == 0 || value > 65535)
    return bad("has no port number in 1-65535");
  return known_host_name(host, static_cast<std::uint16_t>(value));
}

}  // namespace

std::string known_host_name(std::string_view host, std::uint16_t port) {
  const std::string h = ascii_lower(host);
  return h.find(':') != std::string::npos ? fmt::format("[{}]:{}", h, port)
                                          : fmt::format("{}:{}", h, port);
}

Result<KnownHosts> KnownHosts::parse(std::string_view text) {
  KnownHosts out;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    const auto begin = line.find_first_not_of(kBlanks);
    if (begin == std::string_view::npos || line[begin] == '#') continue;
    line.remove_prefix(begin);

    auto bad = [&](const std::string& why) {
      return fail(std::errc::invalid_argument, fmt::format("line {}: {}", number, why));
    };
    const auto name_end = line.find_first_of(kBlanks);
    if (name_end == std::string_view::npos)
      return bad("expected HOST:PORT SHA256:…, found one word");
    auto name = parse_name(line.substr(0, name_end));
    if (!name) return bad(name.message());
    std::string_view rest = line.substr(name_end);
    rest.remove_prefix(std::min(rest.size(), rest.find_first_not_of(kBlanks)));
    const std::string_view fingerprint = rest.substr(0, rest.find_first_of(kBlanks));
    if (auto ok = check_fingerprint(fingerprint); !ok) return bad(ok.message());
    out.entries_.push_back(KnownHost{std::move(*name), std::string(fingerprint), number});
  }
  return out;
}

HostKeyCheck KnownHosts::check(std::string_view host, std::uint16_t port,
                               std::string_view fingerprint) const {
  const std::string name = known_host_name(host, port);
  HostKeyCheck result;
  for (const auto& e : entries_) {
    if (e.name != name) continue;
    if (e.fingerprint == fingerprint)
      return HostKeyCheck{HostKeyStatus::known, e.fingerprint, e.line};
    if (result.status == HostKeyStatus::unknown)
      result = HostKeyCheck{HostKeyStatus::changed, e.fingerprint, e.line};
  }
  return result;
}

std::string known_hosts_line(std::string_view host, std::uint16_t port,
                             std::string_view fingerprint) {
  return fmt::format("{} {}\n", known_host_name(host, port), fingerprint);
}

std::string default_known_hosts_path() {
  return config_path("known_hosts");
}

Result<KnownHosts> load_known_hosts(const std::string& path) {
  auto text = read_private_file(path, FileTrust::trusted);
  if (!text) {
    if (text.error() == std::error_code(ENOENT, std::system_category())) return KnownHosts{};
    return std::move(text).failure();
  }
  auto parsed = KnownHosts::parse(*text);
  if (!parsed) return fail(parsed.error(), fmt::format("{}: {}", path, parsed.message()));
  return parsed;
}

namespace {

// Appends one pin line, after a newline when a hand edit left the last line without one.
Status append_line(const std::string& path, std::string_view fingerprint, const std::string& line) {
  if (auto ok = check_fingerprint(fingerprint); !ok) return ok;
  // A hand-edited file may lack its last newline: the new line must not join the old one.
  bool needs_newline = false;
  if (auto text = read_private_file(path, FileTrust::trusted); text) {
    needs_newline = !text->empty() && text->back() != '\n';
  } else if (text.error() != std::error_code(ENOENT, std::system_category())) {
    return std::move(text).failure();
  }
  // Built in one go (GCC 12's -Wrestrict misreads a string insert at the front at -O2).
  return append_private_file(path, (needs_newline ? "\n" : "") + line);
}

}  // namespace

Status append_known_host(const std::string& path, std::string_view host, std::uint16_t port,
                         std::string_view fingerprint) {
  return append_line(path, fingerprint, known_hosts_line(host, port, fingerprint));
}

bool can_pin_socket_path(std::string_view socket_path) noexcept {
  return socket_path_ok(socket_path);
}

Status append_known_socket(const std::string& path, std::string_view socket_path,
                           std::string_view fingerprint) {
  if (!socket_path_ok(socket_path))
    return fail(std::errc::invalid_argument,
                fmt::format("'{}' cannot be written in known_hosts (a relative path, or one with a "
                            "blank or control character)",
                            printable(socket_path)));
  return append_line(path, fingerprint, known_socket_line(socket_path, fingerprint));
}

std::string known_socket_line(std::string_view socket_path, std::string_view fingerprint) {
  return fmt::format("{} {}\n", socket_path, fingerprint);
}

}  // namespace duplex
