// Text and encodings for showing a command's output: UTF-8 checking, base64, --encoding (iconv).
#pragma once

#include <string>
#include <string_view>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"

namespace duplex::client {

/// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// `s` as hex byte pairs separated by spaces ("48 49 00"): for --show hex.
std::string show_hex(std::string_view s);

/// `s` on one line with every byte visible: printable ASCII and well-formed UTF-8 as they are,
/// backslash as \\, \n \r \t \0 by name, any other byte as \xNN: for --show escaped.
std::string show_escaped(std::string_view s);

/// Standard base64 (RFC 4648, with padding) of any bytes.
std::string base64(std::string_view s);

/// Converts a byte stream from one character set to UTF-8 (iconv(3)) chunk by chunk: a
/// multibyte sequence split across chunks is carried to the next one; an invalid sequence
/// becomes U+FFFD. Not thread-safe.
class Transcoder {
 public:
  /// A converter from `from` ("gbk", "latin1", ...); fails (EINVAL, one line) when iconv does not
  /// know it.
  static Result<Transcoder> open(const std::string& from);
  ~Transcoder();
  Transcoder(Transcoder&& o) noexcept;
  Transcoder& operator=(Transcoder&&) = delete;
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

  /// Converts what it can of `carry + in`; keeps an incomplete trailing sequence for later.
  std::string feed(ByteView in);
  /// End of stream: an incomplete sequence left over becomes U+FFFD.
  std::string finish();

 private:
  explicit Transcoder(void* cd) noexcept : cd_(cd) {}
  void* cd_;  // iconv_t; null once moved from
  std::string carry_;
};

}  // namespace duplex::client
