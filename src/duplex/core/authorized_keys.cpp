// authorized_keys parsing (options, address patterns) and the per-connection decision; pure
// except load_authorized_keys.
#include "duplex/core/authorized_keys.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "duplex/core/fingerprint.hpp"
#include "duplex/core/glob.hpp"
#include "duplex/core/secure_file.hpp"

namespace duplex {
namespace {

constexpr std::string_view kSpace = " \t";

// Text from the file made fit for a one-line message: printable ASCII, at most 40 bytes.
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 40;
  std::string out;
  for (char c : s.substr(0, kMax))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > kMax) out += "...";
  return out;
}

std::string_view word_at(std::string_view line, std::size_t i) {
  return line.substr(i, line.find_first_of(kSpace, i) - i);
}

struct Ip {
  int family = AF_INET;               // AF_INET: the first 4 bytes are used
  std::array<unsigned char, 16> b{};  // network order
  std::size_t bits() const noexcept { return family == AF_INET ? 32 : 128; }
};

// An address literal, with a v4-mapped IPv6 address ("::ffff:10.0.0.1") taken as its IPv4 form,
// and a zone index ("fe80::1%eth0") dropped: patterns compare addresses.
std::optional<Ip> parse_ip(std::string_view text) {
  text = text.substr(0, text.find('%'));
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string z(text);  // inet_pton wants a NUL-terminated string
  Ip ip;
  if (::inet_pton(AF_INET, z.c_str(), ip.b.data()) == 1) return ip;
  if (::inet_pton(AF_INET6, z.c_str(), ip.b.data()) != 1) return std::nullopt;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.b.data(), kMapped, sizeof kMapped) == 0) {
    std::memmove(ip.b.data(), ip.b.data() + 12, 4);
    std::memset(ip.b.data() + 4, 0, 12);
    return ip;
  }
  ip.family = AF_INET6;
  return ip;
}

std::string ip_text(const Ip& ip) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  ::inet_ntop(ip.family, ip.b.data(), buf.data(), static_cast<socklen_t>(buf.size()));
  return buf.data();
}

bool prefix_equal(const Ip& a, const Ip& b, std::size_t bits) noexcept {
  const std::size_t whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a.b.data(), b.b.data(), whole) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a.b[whole] & mask) == (b.b[whole] & mask);
}

bool is_glob(std::string_view p) noexcept {
  return p.find_first_of("*?") != std::string_view::npos;
}

// Splits "ADDRESS/BITS"; the caller has checked there is a '/'.
struct Cidr {
  Ip net;
  std::size_t bits = 0;
};
Result<Cidr> parse_cidr(std::string_view p, std::string_view what = "from= pattern") {
  const auto slash = p.find('/');
  auto bad = [&](std::string_view why) {
    return fail(std::errc::invalid_argument, fmt::format("{} '{}' {}", what, shown(p), why));
  };
  const auto net = parse_ip(p.substr(0, slash));
  if (!net) return bad("is not ADDRESS/BITS with an IP address");
  const std::string_view digits = p.substr(slash + 1);
  unsigned bits = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      bits > net->bits())
    return bad(fmt::format("needs a prefix length of 0-{}", net->bits()));
  // sshd refuses host bits beyond the prefix too: 10.0.0.1/8 is a typo, not a network.
  for (std::size_t i = bits; i < net->bits(); ++i)
    if ((net->b[i / 8] >> (7 - i % 8)) & 1) return bad("has bits set beyond its prefix length");
  return Cidr{*net, bits};
}

Result<AddressPattern> parse_pattern(std::string_view text,
                                     std::string_view what = "from= pattern") {
  AddressPattern p;
  if (text.starts_with('!')) {
    p.negated = true;
    text.remove_prefix(1);
  }
  p.pattern = ascii_lower(text);
  auto bad = [&](std::string_view why) {
    return fail(std::errc::invalid_argument, fmt::format("{} '{}' {}", what, shown(text), why));
  };
  if (p.pattern.empty()) return bad("is empty");
  if (p.pattern.find('/') != std::string::npos) {
    if (auto c = parse_cidr(p.pattern, what); !c) return std::move(c).failure();
    return p;
  }
  if (is_glob(p.pattern)) {
    if (p.pattern.find_first_not_of("0123456789abcdef.:*?") != std::string::npos)
      return bad("can never match an IP address (host names are not looked up)");
    return p;
  }
  if (!parse_ip(p.pattern))
    return bad("is not an IP address, ADDRESS/BITS or a glob (host names are not looked up)");
  return p;
}

// A double-quoted option value starting at line[i] == '"'; `\"` is a quote, any other backslash
// is kept as written (sshd's rule). Moves i past the closing quote.
Result<std::string> quoted_value(std::string_view line, std::size_t& i, std::string_view name) {
  std::string value;
  for (std::size_t j = i + 1; j < line.size(); ++j) {
    const char c = line[j];
    if (c == '\\' && j + 1 < line.size() && line[j + 1] == '"') {
      value += '"';
      ++j;
    } else if (c == '"') {
      i = j + 1;
      return value;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return fail(std::errc::invalid_argument,
                  fmt::format("{}= holds a control character", shown(name)));
    } else {
      value += c;
    }
  }
  return fail(std::errc::invalid_argument, fmt::format("{}= has no closing quote", shown(name)));
}

Status apply_option(AuthorizedKey& key, std::string_view name, std::string value) {
  const std::string n = ascii_lower(name);
  auto bad = [&](std::string_view why) {
    return fail(std::errc::invalid_argument, fmt::format("{}= {}", shown(n), why));
  };
  if (n == "command") {
    if (key.command) return bad("is given twice");
    if (value.empty()) return bad("is empty");
    key.command = std::move(value);
    return {};
  }
  if (n == "from") {
    if (!key.from.empty()) return bad("is given twice");
    std::string_view list = value;
    for (;;) {
      const auto comma = list.find(',');
      auto p = parse_pattern(list.substr(0, comma));
      if (!p) return std::move(p).failure();
      key.from.push_back(std::move(*p));
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    return {};
  }
  return fail(std::errc::invalid_argument,
              fmt::format("unknown option '{}' (duplex knows command= and from=)", shown(name)));
}

Result<AuthorizedKey> parse_line(std::string_view line) {
  AuthorizedKey key;
  std::size_t i = 0;
  auto bad = [](std::string why) { return fail(std::errc::invalid_argument, std::move(why)); };
  for (;;) {
    i = std::min(line.size(), line.find_first_not_of(kSpace, i));
    if (i == line.size()) return bad("no SHA256:… fingerprint after the options");
    if (line.substr(i).starts_with(kFingerprintPrefix)) break;
    const std::size_t name_begin = i;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) != 0 ||
                               line[i] == '-' || line[i] == '_'))
      ++i;
    if (i == name_begin || i == line.size() || line[i] != '=')
      return bad(fmt::format(
          "'{}' is neither an option (command=\"…\", from=\"…\") nor a SHA256:… fingerprint",
          shown(word_at(line, name_begin))));
    const std::string_view name = line.substr(name_begin, i - name_begin);
    if (++i == line.size() || line[i] != '"')
      return bad(fmt::format("{}= needs a value in double quotes", shown(name)));
    auto value = quoted_value(line, i, name);
    if (!value) return std::move(value).failure();
    if (auto ok = apply_option(key, name, std::move(*value)); !ok) return std::move(ok).failure();
    if (i < line.size() && line[i] == ',') {
      ++i;
    } else if (i < line.size() && kSpace.find(line[i]) == std::string_view::npos) {
      return bad(fmt::format("expected a comma or a blank after {}=\"…\"", shown(name)));
    }
  }
  const std::size_t fp_end = std::min(line.size(), line.find_first_of(kSpace, i));
  key.fingerprint = std::string(line.substr(i, fp_end - i));
  if (auto ok = check_fingerprint(key.fingerprint); !ok) return std::move(ok).failure();
  std::string_view comment = line.substr(fp_end);
  comment.remove_prefix(std::min(comment.size(), comment.find_first_not_of(kSpace)));
  comment = comment.substr(0, comment.find_last_not_of(kSpace) + 1);
  key.comment = std::string(comment);
  return key;
}

}  // namespace

Result<AddressPattern> parse_address_pattern(std::string_view text, std::string_view what) {
  return parse_pattern(text, what);
}

bool address_matches(const AddressPattern& p, std::string_view address) {
  const auto ip = parse_ip(address);
  if (!ip) return false;
  if (p.pattern.find('/') != std::string::npos) {
    const auto cidr = parse_cidr(p.pattern);
    return cidr && cidr->net.family == ip->family && prefix_equal(*ip, cidr->net, cidr->bits);
  }
  if (is_glob(p.pattern)) return glob_match(p.pattern, ip_text(*ip));
  const auto exact = parse_ip(p.pattern);
  return exact && exact->family == ip->family && exact->b == ip->b;
}

bool addresses_allow(std::span<const AddressPattern> patterns, std::string_view address) {
  bool matched = false;
  for (const auto& p : patterns) {
    if (!address_matches(p, address)) continue;
    if (p.negated) return false;  // a negated match refuses, whatever else matches
    matched = true;
  }
  return matched;
}

Result<AuthorizedKeys> AuthorizedKeys::parse(std::string_view text) {
  AuthorizedKeys out;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    const auto begin = line.find_first_not_of(kSpace);
    if (begin == std::string_view::npos || line[begin] == '#') continue;
    auto key = parse_line(line.substr(begin));
    if (!key) return fail(key.error(), fmt::format("line {}: {}", number, key.message()));
    key->line = number;
    out.keys_.push_back(std::move(*key));
  }
  return out;
}

KeyDecision AuthorizedKeys::authorize(std::string_view fingerprint,
                                      std::string_view address) const {
  KeyDecision d;
  for (const auto& k : keys_) {
    if (k.fingerprint != fingerprint) continue;
    if (k.allows_address(address)) return KeyDecision{KeyVerdict::allowed, &k};
    if (d.key == nullptr) d = KeyDecision{KeyVerdict::address_refused, &k};
  }
  return d;
}

Result<AuthorizedKeys> load_authorized_keys(const std::string& path) {
  auto text = read_private_file(path, FileTrust::trusted);
  if (!text) return std::move(text).failure();
  auto parsed = AuthorizedKeys::parse(*text);
  if (!parsed) return fail(parsed.error(), fmt::format("{}: {}", path, parsed.message()));
  return parsed;
}

}  // namespace duplex
