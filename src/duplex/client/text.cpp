// UTF-8 checking (utfcpp), base64 (OpenSSL's EVP_EncodeBlock) and iconv transcoding.
#include "duplex/client/text.hpp"

#include <iconv.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <iterator>
#include <utility>

#include <fmt/format.h>
#include <utf8.h>

namespace duplex::client {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

iconv_t as_iconv(void* cd) noexcept {
  return static_cast<iconv_t>(cd);
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
  return utf8::is_valid(s.begin(), s.end());
}

std::string show_hex(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 3);
  for (const char ch : s) {
    if (!out.empty()) out.push_back(' ');
    fmt::format_to(std::back_inserter(out), "{:02x}", static_cast<unsigned char>(ch));
  }
  return out;
}

std::string show_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // A multibyte character is kept when it is well-formed; its length is in its lead byte.
      const std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      if (len > 1 && i + len <= s.size() && is_valid_utf8(s.substr(i, len))) {
        out.append(s.substr(i, len));
        i += len;
        continue;
      }
    }
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += "\\0"; break;
      default:
        if (c < 0x20 || c >= 0x7f)
          fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  return out;
}

std::string base64(std::string_view s) {
  // EVP_EncodeBlock takes an int length: encode in pieces that are a multiple of 3 bytes.
  constexpr std::size_t kPiece = 3 * (1u << 20);
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  std::string buf;
  for (std::size_t at = 0; at < s.size(); at += kPiece) {
    const std::size_t n = std::min(kPiece, s.size() - at);
    buf.resize((n + 2) / 3 * 4 + 1);  // EVP_EncodeBlock writes a NUL after the text
    const int w = ::EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                                    reinterpret_cast<const unsigned char*>(s.data() + at),
                                    static_cast<int>(n));
    out.append(buf.data(), static_cast<std::size_t>(w));
  }
  return out;
}

Result<Transcoder> Transcoder::open(const std::string& from) {
  const iconv_t cd = ::iconv_open("UTF-8", from.c_str());
  if (cd == reinterpret_cast<iconv_t>(static_cast<std::intptr_t>(-1)))
    return fail(std::errc::invalid_argument, fmt::format("unknown encoding '{}'", from));
  return Transcoder(cd);
}

Transcoder::Transcoder(Transcoder&& o) noexcept
    : cd_(std::exchange(o.cd_, nullptr)), carry_(std::move(o.carry_)) {}

Transcoder::~Transcoder() {
  if (cd_) ::iconv_close(as_iconv(cd_));
}

std::string Transcoder::feed(ByteView in) {
  std::string src = std::move(carry_);
  carry_.clear();
  src.append(as_chars(in));
  std::string out(src.size() * 2 + 16, '\0');
  char* ip = src.data();
  std::size_t il = src.size();
  std::size_t used = 0;
  while (il > 0) {
    char* op = out.data() + used;
    std::size_t ol = out.size() - used;
    const std::size_t r = ::iconv(as_iconv(cd_), &ip, &il, &op, &ol);
    used = out.size() - ol;
    if (r != static_cast<std::size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
    } else if (errno == EINVAL) {
      // An incomplete sequence at the end: the rest of it comes with the next chunk.
      carry_.assign(ip, il);
      break;
    } else {
      // EILSEQ: not valid in the source encoding. Show it, skip one byte, go on.
      if (out.size() - used < kReplacement.size()) out.resize(out.size() * 2);
      out.replace(used, kReplacement.size(), kReplacement);
      used += kReplacement.size();
      ++ip;
      --il;
    }
  }
  out.resize(used);
  return out;
}

std::string Transcoder::finish() {
  std::string out;
  if (!carry_.empty()) out.append(kReplacement);
  carry_.clear();
  ::iconv(as_iconv(cd_), nullptr, nullptr, nullptr, nullptr);  // back to the initial shift state
  return out;
}

}  // namespace duplex::client
