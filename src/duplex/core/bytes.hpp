// Big-endian integers and length-prefixed strings over byte spans. Pure; no I/O, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duplex {

using Bytes = std::vector<std::byte>;
using ByteView = std::span<const std::byte>;

inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// Appends big-endian fields to a byte vector (network byte order, RFC 1700).
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) noexcept : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(std::byte{v}); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void raw(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  /// u32 length, then the bytes.
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(as_bytes(s));
  }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i)
      out_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  }
  Bytes& out_;
};

/// Reads big-endian fields from a span. A read past the end sets failed() and returns zero/empty;
/// check failed() (and done()) once at the end instead of after every field.
class ByteReader {
 public:
  explicit ByteReader(ByteView in) noexcept : in_(in) {}
  std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(get(1)); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(get(2)); }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(get(4)); }
  std::uint64_t u64() noexcept { return get(8); }
  ByteView raw(std::size_t n) noexcept {
    if (failed_ || n > in_.size() - pos_) {
      failed_ = true;
      return {};
    }
    auto r = in_.subspan(pos_, n);
    pos_ += n;
    return r;
  }
  /// u32 length, then that many bytes.
  std::string_view str() noexcept { return as_chars(raw(u32())); }
  ByteView rest() noexcept { return raw(in_.size() - pos_); }

  bool failed() const noexcept { return failed_; }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  /// Everything read, nothing left over, nothing failed.
  bool done() const noexcept { return !failed_ && pos_ == in_.size(); }

 private:
  std::uint64_t get(std::size_t n) noexcept {
    if (failed_ || n > in_.size() - pos_) {
      failed_ = true;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v = (v << 8) | std::to_integer<std::uint64_t>(in_[pos_ + i]);
    pos_ += n;
    return v;
  }
  ByteView in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace duplex
