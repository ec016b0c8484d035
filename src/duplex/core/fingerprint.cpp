// Fingerprint text validation: prefix, base64 alphabet, length, canonical last character.
#include "duplex/core/fingerprint.hpp"

#include <fmt/format.h>

namespace duplex {
namespace {

// RFC 4648 §4 alphabet index, or -1.
int base64_index(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (char c : text.substr(0, kMax))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';  // a one-line message whatever the input holds
  if (text.size() > kMax) out += "...";
  return out;
}

}  // namespace

Status check_fingerprint(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail(std::errc::invalid_argument,
                fmt::format("'{}' is not a key fingerprint ({})", quoted(text), why));
  };
  if (!text.starts_with(kFingerprintPrefix)) return bad("it must start with SHA256:");
  const std::string_view b64 = text.substr(kFingerprintPrefix.size());
  if (b64.size() != kFingerprintBase64Size)
    return bad(fmt::format("SHA256: is followed by {} base64 characters, not {}",
                           kFingerprintBase64Size, b64.size()));
  for (char c : b64)
    if (base64_index(c) < 0) return bad("a character is not base64");
  // 43 characters carry 258 bits for 256: the last character's two low bits are padding.
  if ((base64_index(b64.back()) & 3) != 0) return bad("its last character is not canonical");
  return {};
}

}  // namespace duplex
