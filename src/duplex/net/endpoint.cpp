// Endpoint parsing and printing: pure string work (plus inet_pton/inet_ntop); no Asio, no DNS.
#include "duplex/net/endpoint.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "duplex/core/errors.hpp"

namespace duplex::net {
namespace {

// sun_path holds 108 bytes on Linux (unix(7)); one is the terminating NUL we always pass.
constexpr std::size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;
// RFC 1035 §2.3.4 / RFC 1123 §2.1: a name is at most 253 characters, a label at most 63.
constexpr std::size_t kMaxHostName = 253;
constexpr std::size_t kMaxLabel = 63;
// Zone ids name an interface ("eth0", IF_NAMESIZE 16) or its index; allow some slack.
constexpr std::size_t kMaxZoneId = 64;
// Quoted fragments in reasons are cut here, so that a 1 MB input gives a one-line error.
constexpr std::size_t kMaxQuoted = 48;
// What an unknown scheme's reason suggests.
constexpr std::string_view kSchemes = "use tcp, tls, udp, unix, tls+unix or unixgram";

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) noexcept {
  return is_digit(c) || is_alpha(c);
}
char to_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = to_lower(c);
  return out;
}

bool all_digits(std::string_view s) noexcept {
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return !s.empty();
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

std::string hex_byte(unsigned char b) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "\\x";
  out += kHex[static_cast<std::size_t>(b >> 4)];
  out += kHex[static_cast<std::size_t>(b & 0xF)];
  return out;
}

/// One character as it should appear inside a reason: itself when printable ASCII, else \xNN.
std::string show_char(char c) {
  auto b = static_cast<unsigned char>(c);
  if (b < 0x20 || b >= 0x7f) return hex_byte(b);
  return std::string(1, c);
}

/// `s` in single quotes, non-printable bytes escaped, long input shortened with "...".
std::string quote(std::string_view s) {
  std::string out = "'";
  std::size_t shown = 0;
  for (char c : s) {
    if (shown == kMaxQuoted) {
      out += "...";
      break;
    }
    out += show_char(c);
    ++shown;
  }
  out += '\'';
  return out;
}

std::string offset(std::size_t i) {
  return " at offset " + std::to_string(i);
}

/// Parsing state: the first rule broken leaves its reason in why(). Every check returns false
/// after calling fail(), so the callers read as a list of rules.
class Parser {
 public:
  bool fail(std::string reason) {
    why_ = std::move(reason);
    return false;
  }

  bool parse(std::string_view url, Endpoint& out);
  std::string& why() noexcept { return why_; }

 private:
  bool check_bytes(std::string_view url);
  bool parse_unix(std::string_view scheme, std::string_view rest, Endpoint& out);
  bool parse_schemeless_prefix(std::string_view url);
  bool parse_host_port(std::string_view authority, Endpoint& out);
  bool parse_bracketed(std::string_view authority, Endpoint& out);
  bool parse_port(std::string_view port, std::string_view authority, Endpoint& out);
  bool parse_ipv6(std::string_view literal, std::string& host);
  bool check_ipv4(std::string_view host);
  bool check_host_name(std::string_view host);

  std::string why_;
};

bool Parser::parse(std::string_view url, Endpoint& out) {
  if (url.empty()) return fail("empty url (expected e.g. tcp://127.0.0.1:8080)");
  if (!check_bytes(url)) return false;

  // RFC 3986 §3.1: scheme ":" — we only take the hierarchical "scheme://" spelling.
  const std::size_t colon = url.find(':');
  const bool has_scheme =
      colon != std::string_view::npos && url.substr(colon + 1).starts_with("//");
  if (!has_scheme) {
    if (!parse_schemeless_prefix(url)) return false;
    out.transport = Transport::tcp;
    return parse_host_port(url, out);
  }

  const std::string_view scheme = url.substr(0, colon);
  const std::string_view rest = url.substr(colon + 3);
  if (scheme.empty()) return fail("missing scheme before '://' (" + std::string(kSchemes) + ")");
  if (iequals(scheme, "unix") || iequals(scheme, "unixgram")) return parse_unix(scheme, rest, out);
  if (iequals(scheme, "tls+unix")) {
    out.tls = true;
    return parse_unix(scheme, rest, out);
  }
  if (iequals(scheme, "tcp")) {
    out.transport = Transport::tcp;
  } else if (iequals(scheme, "tls")) {
    out.transport = Transport::tcp;
    out.tls = true;
  } else if (iequals(scheme, "udp")) {
    out.transport = Transport::udp;
  } else {
    return fail("unknown scheme " + quote(scheme) + " (" + std::string(kSchemes) + ")");
  }
  if (rest.empty()) return fail("missing host and port after " + quote(url));
  return parse_host_port(rest, out);
}

// Whitespace and control bytes are never part of an address; they are usually a paste or
// quoting accident, so name them and their position rather than failing further in.
bool Parser::check_bytes(std::string_view url) {
  for (std::size_t i = 0; i < url.size(); ++i) {
    const char c = url[i];
    const auto b = static_cast<unsigned char>(c);
    if (b == 0) return fail("url contains a nul byte" + offset(i));
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      return fail("url contains whitespace (" + hex_byte(b) + ")" + offset(i));
    }
    if (b < 0x20 || b == 0x7f) {
      return fail("url contains control character " + hex_byte(b) + offset(i));
    }
  }
  return true;
}

// A URL without "://" is HOST:PORT. Catch the near misses of a scheme first ("unix:/tmp/x",
// "tcp:localhost:80", "http:/x"), which would otherwise get a confusing host or port error.
bool Parser::parse_schemeless_prefix(std::string_view url) {
  const std::size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return true;
  const std::string_view prefix = url.substr(0, colon);
  const std::string_view rest = url.substr(colon + 1);
  if (iequals(prefix, "unix") || iequals(prefix, "unixgram") || iequals(prefix, "tls+unix")) {
    const std::string example = to_lower_copy(prefix) + ":///abs/path";
    if (rest.empty()) return fail("unix socket path is empty (write " + example + ")");
    if (rest.starts_with('/')) {
      return fail("missing '//' after " + quote(url.substr(0, colon + 1)) + " (write " + example +
                  ", with three slashes)");
    }
    return fail("unix socket path must be absolute (write " + example + ")");
  }
  for (char c : prefix) {
    if (!is_alpha(c)) return true;  // a host name with a digit, '-' or '.': not a scheme
  }
  if (iequals(prefix, "tcp") || iequals(prefix, "udp") || iequals(prefix, "tls")) {
    if (all_digits(rest)) return true;  // "tcp:80" is the host named tcp, port 80
    return fail("missing '//' after " + quote(url.substr(0, colon + 1)) + " (write " +
                std::string(prefix) + "://HOST:PORT)");
  }
  if (rest.starts_with('/')) {
    return fail("unknown scheme " + quote(prefix) + " (" + std::string(kSchemes) + ")");
  }
  return true;
}

bool Parser::parse_unix(std::string_view scheme, std::string_view rest, Endpoint& out) {
  out.transport = iequals(scheme, "unixgram") ? Transport::unix_dgram : Transport::unix_stream;
  const std::string_view example = out.tls ? "tls+unix:///abs/path" : "unix:///abs/path";
  if (rest.empty()) return fail("unix socket path is empty (write " + std::string(example) + ")");
  if (!rest.starts_with('/')) {
    return fail("unix socket path must be absolute, got " + quote(rest) + " (write " +
                std::string(example) + ")");
  }
  if (rest.ends_with('/')) {
    return fail("unix socket path " + quote(rest) + " ends with '/' (it names a directory)");
  }
  if (rest.size() > kMaxUnixPath) {
    return fail("unix socket path is " + std::to_string(rest.size()) + " bytes long (at most " +
                std::to_string(kMaxUnixPath) + " fit in sun_path)");
  }
  out.path = std::string(rest);
  return true;
}

bool Parser::parse_host_port(std::string_view authority, Endpoint& out) {
  // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'; what follows is a path,
  // query or fragment, which no socket address has.
  const std::size_t slash = authority.find_first_of("/?#");
  const std::string_view host_port = authority.substr(0, slash);
  if (const std::size_t at = host_port.find('@'); at != std::string_view::npos) {
    return fail("userinfo " + quote(host_port.substr(0, at + 1)) +
                " is not supported (write HOST:PORT without a user name)");
  }
  if (authority.starts_with('[')) return parse_bracketed(authority, out);

  // A path or query right after the host ("h/x:1") is reported like one after the port.
  const std::size_t colon = host_port.find(':');
  if (slash != std::string_view::npos && colon == std::string_view::npos) {
    if (slash == 0) return fail("missing host in " + quote(authority));
    return fail("unexpected " + quote(authority.substr(slash)) + " after the host " +
                quote(authority.substr(0, slash)) + " (urls take no path or query)");
  }
  if (colon == std::string_view::npos) {
    return fail("missing port in " + quote(authority) + " (write HOST:PORT, e.g. " +
                "127.0.0.1:8080)");
  }
  if (host_port.find(':', colon + 1) != std::string_view::npos) {
    // More than one ':' without brackets: an IPv6 literal, ambiguous with the port separator
    // (RFC 3986 §3.2.2 requires the brackets). Suggest the exact fix when we can see it.
    const std::size_t last = host_port.rfind(':');
    const std::string_view addr = host_port.substr(0, last);
    const std::string_view port = host_port.substr(last + 1);
    std::string v6;
    if (all_digits(port) && parse_ipv6(addr, v6)) {
      return fail("ipv6 address " + quote(addr) + " must be in brackets: write [" +
                  std::string(addr) + "]:" + std::string(port));
    }
    return fail("too many ':' in " + quote(host_port) +
                " (an ipv6 address must be in brackets, e.g. [::1]:8080)");
  }

  const std::string_view host = authority.substr(0, colon);
  if (host.empty()) return fail("missing host in " + quote(authority));
  if (!parse_port(authority.substr(colon + 1), authority, out)) return false;

  // RFC 1123 §2.1: a name may start with a digit, so "only digits and dots" is the test for
  // an IPv4 literal; such a host must be a valid one rather than fall through to DNS.
  bool digits_and_dots = true;
  for (char c : host)
    digits_and_dots = digits_and_dots && (is_digit(c) || c == '.');
  if (digits_and_dots ? !check_ipv4(host) : !check_host_name(host)) return false;
  out.host = std::string(host);
  return true;
}

bool Parser::parse_bracketed(std::string_view authority, Endpoint& out) {
  const std::size_t close = authority.find(']');
  if (close == std::string_view::npos) return fail("unterminated '[' in " + quote(authority));
  const std::string_view literal = authority.substr(1, close - 1);
  const std::string_view after = authority.substr(close + 1);
  if (literal.empty()) return fail("empty ipv6 address in " + quote(authority));
  if (after.empty()) {
    return fail("missing port after " + quote(authority) + " (write [" + std::string(literal) +
                "]:PORT)");
  }
  if (!after.starts_with(':')) {
    return fail("unexpected " + quote(after) + " after ']' in " + quote(authority) +
                " (expected ':PORT')");
  }
  if (!parse_port(after.substr(1), authority, out)) return false;
  return parse_ipv6(literal, out.host);
}

bool Parser::parse_port(std::string_view port, std::string_view authority, Endpoint& out) {
  if (port.empty()) return fail("missing port after " + quote(authority));
  std::size_t end = 0;
  while (end < port.size() && is_digit(port[end]))
    ++end;
  if (end < port.size()) {
    const char c = port[end];
    if (c == '/' || c == '?' || c == '#') {
      if (end == 0) return fail("missing port before " + quote(port) + " in " + quote(authority));
      return fail("unexpected " + quote(port.substr(end)) + " after the port in " +
                  quote(authority) + " (urls take no path or query)");
    }
    return fail("port " + quote(port) + " is not a decimal number (0-65535)");
  }
  unsigned long value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value > 65535) {
    return fail("port " + std::string(port.substr(0, kMaxQuoted)) +
                (port.size() > kMaxQuoted ? "..." : "") + " is out of range (0-65535)");
  }
  out.port = static_cast<std::uint16_t>(value);
  return true;
}

// inet_pton(3) accepts exactly the RFC 4291 §2.2 text forms. Zone ids (RFC 4007 §11,
// "fe80::1%eth0") are not part of that, so split them off and check them by hand.
// The stored host is inet_ntop's canonical text (RFC 5952), so "[0:0::1]" compares equal to
// "[::1]" and url() prints the form people expect.
bool Parser::parse_ipv6(std::string_view literal, std::string& host) {
  std::string_view addr = literal;
  std::string_view zone;
  bool has_zone = false;
  if (const std::size_t pct = literal.find('%'); pct != std::string_view::npos) {
    addr = literal.substr(0, pct);
    zone = literal.substr(pct + 1);
    has_zone = true;
  }
  const std::string addr_z(addr);  // inet_pton wants a NUL-terminated string
  std::array<unsigned char, 16> bytes{};
  if (addr.empty() || ::inet_pton(AF_INET6, addr_z.c_str(), bytes.data()) != 1) {
    std::array<unsigned char, 4> v4{};
    if (::inet_pton(AF_INET, addr_z.c_str(), v4.data()) == 1) {
      return fail(quote(addr) + " is not an ipv6 address (brackets are for ipv6 only: write " +
                  addr_z + ":PORT)");
    }
    return fail("invalid ipv6 address " + quote(addr));
  }
  if (has_zone) {
    if (zone.empty()) return fail("empty zone id after '%' in " + quote(literal));
    if (zone.size() > kMaxZoneId) return fail("zone id " + quote(zone) + " is too long");
    for (char c : zone) {
      if (!is_alnum(c) && c != '-' && c != '_' && c != '.') {
        return fail("invalid character '" + show_char(c) + "' in zone id " + quote(zone));
      }
    }
  }
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (::inet_ntop(AF_INET6, bytes.data(), text.data(), text.size()) == nullptr) {
    return fail("invalid ipv6 address " + quote(addr));
  }
  host = text.data();
  if (has_zone) {
    host += '%';
    host += zone;
  }
  return true;
}

// inet_pton(3) decides: dotted decimal, exactly four parts, no leading zeros (octal to
// inet_aton(3), so refused rather than guessed). Only a refusal is taken apart, to name the rule.
// The caller has checked that `host` holds only digits and dots.
bool Parser::check_ipv4(std::string_view host) {
  std::array<unsigned char, 4> bytes{};
  if (::inet_pton(AF_INET, std::string(host).c_str(), bytes.data()) == 1) return true;
  const auto parts = static_cast<std::size_t>(std::count(host.begin(), host.end(), '.')) + 1;
  std::string_view rest = host;
  for (std::size_t i = 0; i < std::min<std::size_t>(parts, 4); ++i) {
    const std::size_t dot = rest.find('.');
    const std::string_view octet = rest.substr(0, dot);
    rest.remove_prefix(dot == std::string_view::npos ? rest.size() : dot + 1);
    if (octet.empty()) return fail("empty octet in ipv4 address " + quote(host));
    if (octet.size() > 1 && octet[0] == '0') {
      return fail("octet " + quote(octet) + " in ipv4 address " + quote(host) +
                  " has a leading zero");
    }
    // Digits only and no leading zero: comparing the text compares the numbers.
    if (octet.size() > 3 || (octet.size() == 3 && octet > "255")) {
      return fail("octet " + quote(octet) + " in ipv4 address " + quote(host) +
                  " is out of range (0-255)");
    }
  }
  if (parts != 4) {
    return fail("ipv4 address " + quote(host) + " must have 4 parts, not " + std::to_string(parts));
  }
  return fail("invalid ipv4 address " + quote(host));
}

bool Parser::check_host_name(std::string_view host) {
  if (host.size() > kMaxHostName) {
    return fail("host name is " + std::to_string(host.size()) + " characters long (at most " +
                std::to_string(kMaxHostName) + ")");
  }
  for (char c : host) {
    if (!is_alnum(c) && c != '-' && c != '.') {
      if (c == '[' || c == ']') {
        return fail("stray '" + std::string(1, c) + "' in host " + quote(host) +
                    " (an ipv6 address is written [ADDR]:PORT)");
      }
      return fail("invalid character '" + show_char(c) + "' in host name " + quote(host) +
                  " (letters, digits, '-' and '.' only)");
    }
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = host.find('.', start);
    const std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return fail("empty label in host name " + quote(host));
    if (label.size() > kMaxLabel) {
      return fail("label " + quote(label) + " in host name is " + std::to_string(label.size()) +
                  " characters long (at most " + std::to_string(kMaxLabel) + ")");
    }
    if (label.front() == '-' || label.back() == '-') {
      return fail("label " + quote(label) + " in host name " + quote(host) +
                  " starts or ends with '-'");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

/// True for a dotted quad in 127.0.0.0/8 (inet_pton's strict form, as the parser accepts).
bool is_ipv4_loopback(const std::string& host) noexcept {
  std::array<unsigned char, 4> bytes{};
  if (host.find('\0') != std::string::npos) return false;  // c_str() would stop early
  return ::inet_pton(AF_INET, host.c_str(), bytes.data()) == 1 && bytes[0] == 127;
}

/// True for ::1 in any spelling (hosts built by hand need not be canonical).
bool is_ipv6_loopback(const std::string& host) noexcept {
  std::array<unsigned char, 16> bytes{};
  if (host.find('\0') != std::string::npos) return false;  // c_str() would stop early
  if (::inet_pton(AF_INET6, host.c_str(), bytes.data()) != 1) return false;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[15] == 1;
}

// TLS is spelled only on the stream transports, the only ones the parser gives it to.
std::string_view scheme_of(Transport t, bool tls) noexcept {
  switch (t) {
    case Transport::tcp: return tls ? "tls" : "tcp";
    case Transport::udp: return "udp";
    case Transport::unix_stream: return tls ? "tls+unix" : "unix";
    case Transport::unix_dgram: return "unixgram";
  }
  return "tcp";
}

}  // namespace

bool Endpoint::is_loopback() const noexcept {
  if (is_unix()) return true;
  if (iequals(host, "localhost")) return true;
  if (is_ipv6()) return is_ipv6_loopback(host);
  return is_ipv4_loopback(host);
}

std::string Endpoint::url() const {
  std::string out(scheme_of(transport, tls));
  out += "://";
  if (is_unix()) {
    out += path;
    return out;
  }
  if (is_ipv6()) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

Result<Endpoint> parse_endpoint(std::string_view url) {
  Endpoint ep;
  Parser parser;
  if (!parser.parse(url, ep)) return fail(errc::bad_url, std::move(parser.why()));
  return ep;
}

}  // namespace duplex::net
