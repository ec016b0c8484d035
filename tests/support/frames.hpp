// Reading and building framed-protocol bytes by hand (docs/PROTOCOL.md), independent of src/wire,
// so that black-box tests check the wire format rather than trust the code under test.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "support/socket_client.hpp"

namespace duplex::test {

/// One frame as it arrived: header fields and payload bytes.
struct RawFrame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::string payload;
};

/// Protocol constants used by the tests (docs/PROTOCOL.md §5).
namespace msg {
inline constexpr std::uint8_t hello = 0x01;
inline constexpr std::uint8_t welcome = 0x02;
inline constexpr std::uint8_t error = 0x03;
inline constexpr std::uint8_t ping = 0x04;
inline constexpr std::uint8_t pong = 0x05;
inline constexpr std::uint8_t upper_request = 0x10;
inline constexpr std::uint8_t upper_reply = 0x11;
inline constexpr std::uint8_t auth = 0x08;
inline constexpr std::uint8_t auth_ok = 0x09;
inline constexpr std::uint8_t exec_start = 0x20;
inline constexpr std::uint8_t stdin_data = 0x21;
inline constexpr std::uint8_t stdin_eof = 0x22;
inline constexpr std::uint8_t stdout_data = 0x23;
inline constexpr std::uint8_t stderr_data = 0x24;
inline constexpr std::uint8_t signal = 0x25;
inline constexpr std::uint8_t window_size = 0x26;
inline constexpr std::uint8_t exit = 0x27;
}  // namespace msg

inline std::uint16_t get_be16(std::string_view s, std::size_t off) {
  return static_cast<std::uint16_t>(
      (static_cast<unsigned>(static_cast<unsigned char>(s[off])) << 8) |
      static_cast<unsigned>(static_cast<unsigned char>(s[off + 1])));
}

inline std::uint32_t get_be32(std::string_view s, std::size_t off) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(s[off + i]);
  return v;
}

inline void put_be16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

inline void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

/// A frame header announcing `length` payload bytes (the payload itself not included).
inline std::string frame_header(std::uint8_t type, std::uint32_t length, std::uint8_t flags = 0) {
  std::string h;
  put_be32(h, length);
  h.push_back(static_cast<char>(type));
  h.push_back(static_cast<char>(flags));
  return h;
}

/// A whole frame with arbitrary flags (support's frame() always sends flags 0).
inline std::string frame_with_flags(std::uint8_t type, std::uint8_t flags,
                                    std::string_view payload) {
  return frame_header(type, static_cast<std::uint32_t>(payload.size()), flags) +
         std::string(payload);
}

/// The preface followed by a HELLO with any version range.
inline std::string preface_and_hello_range(std::uint16_t min_version, std::uint16_t max_version,
                                           std::string_view agent = "test") {
  std::string hello;
  put_be16(hello, min_version);
  put_be16(hello, max_version);
  put_be32(hello, static_cast<std::uint32_t>(agent.size()));
  hello.append(agent);
  return std::string("\0DPX", 4) +
         frame_header(msg::hello, static_cast<std::uint32_t>(hello.size())) + hello;
}

/// Reads one whole frame; throws (failing the test) on EOF or timeout.
inline RawFrame read_frame(SocketClient& c,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const std::string head = c.recv_exact(6, timeout);
  RawFrame f;
  f.type = static_cast<std::uint8_t>(head[4]);
  f.flags = static_cast<std::uint8_t>(head[5]);
  const std::uint32_t n = get_be32(head, 0);
  if (n > 0) f.payload = c.recv_exact(n, timeout);
  return f;
}

struct ErrorPayload {
  std::uint16_t code = 0;
  std::string text;
};

/// Strict decode of an ERROR payload (u16 code, str text); nullopt when malformed.
inline std::optional<ErrorPayload> parse_error(std::string_view p) {
  if (p.size() < 6) return std::nullopt;
  const std::uint32_t n = get_be32(p, 2);
  if (p.size() != 6 + static_cast<std::size_t>(n)) return std::nullopt;
  return ErrorPayload{get_be16(p, 0), std::string(p.substr(6))};
}

struct WelcomePayload {
  std::uint16_t version = 0;
  std::uint32_t max_frame = 0;
  std::string agent;
};

/// Strict decode of a WELCOME payload (u16 version, u32 max_frame, str agent).
inline std::optional<WelcomePayload> parse_welcome(std::string_view p) {
  if (p.size() < 10) return std::nullopt;
  const std::uint32_t n = get_be32(p, 6);
  if (p.size() != 10 + static_cast<std::size_t>(n)) return std::nullopt;
  return WelcomePayload{get_be16(p, 0), get_be32(p, 2), std::string(p.substr(10))};
}

}  // namespace duplex::test
