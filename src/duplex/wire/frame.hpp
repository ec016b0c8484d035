// Frame codec: the preface and length-prefixed frames of docs/PROTOCOL.md. Pure functions; no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>

#include "duplex/core/bytes.hpp"

namespace duplex::wire {

/// What a framed client sends first. Its first byte is NUL, which typed text never starts with,
/// so one port can tell framed clients from raw (seed protocol) ones by the first byte alone.
inline constexpr std::array<std::byte, 4> kPreface{std::byte{0x00}, std::byte{'D'}, std::byte{'P'},
                                                   std::byte{'X'}};
/// u32 payload length (big-endian), u8 type, u8 flags.
inline constexpr std::size_t kHeaderSize = 6;
inline constexpr std::uint16_t kProtocolVersion = 1;

/// Message types. Values are on the wire: never renumber, only add.
enum class MsgType : std::uint8_t {
  hello = 0x01,    // client -> server: Hello
  welcome = 0x02,  // server -> client: Welcome
  error = 0x03,    // either way: Error (then the sender closes)
  ping = 0x04,     // either way: opaque payload, answered by pong with the same payload
  pong = 0x05,
  auth = 0x08,            // client -> server: Auth
  auth_ok = 0x09,         // server -> client: AuthOk
  auth_start = 0x0A,      // client -> server: AuthStart (the client's nonce)
  auth_challenge = 0x0B,  // server -> client: AuthChallenge (server nonce + server proof)
  auth_proof = 0x0C,      // client -> server: AuthProof (the client's proof)
  upper_request = 0x10,   // client -> server: raw bytes
  upper_reply = 0x11,     // server -> client: raw bytes, upper-cased
  exec_start = 0x20,      // client -> server: ExecStart
  stdin_data = 0x21,      // client -> server: raw bytes
  stdin_eof = 0x22,       // client -> server: empty
  stdout_data = 0x23,     // server -> client: raw bytes
  stderr_data = 0x24,     // server -> client: raw bytes
  signal = 0x25,          // client -> server: Signal
  window_size = 0x26,     // client -> server: WindowSize
  exit = 0x27,            // server -> client: Exit, the last frame of a command
  stdin_window = 0x28,    // server -> client: StdinWindow (stdin credit)
  stats_request = 0x30,   // client -> server: empty
  stats_reply = 0x31,     // server -> client: JSON text
};

/// True for the types listed above.
bool is_known_type(std::uint8_t t) noexcept;
/// The payload length a frame header announces, once `in` holds a whole header (so a reader
/// can size its next read); nullopt before that. Not validated: decode_frame() does that.
std::optional<std::uint32_t> announced_length(ByteView in) noexcept;
/// Lower-case name for logs ("upper_request"), or "unknown".
const char* type_name(MsgType t) noexcept;

enum class DecodeStatus { need_more, frame, error };

struct Decoded {
  DecodeStatus status = DecodeStatus::need_more;
  MsgType type{};
  ByteView payload;          // points into the input span
  std::size_t consumed = 0;  // bytes of input this frame used (header + payload)
  std::error_code error;     // set when status == error
};

/// Decodes one frame from the front of `in`. Never reads past `in`, never allocates, never throws.
/// need_more: `in` holds a strict prefix of a valid frame (consumed == 0).
/// error: frame_too_large (payload above max_payload) or bad_frame (non-zero flags); the stream
/// cannot be resynchronised after an error. Unknown types are not an error here (see messages).
Decoded decode_frame(ByteView in, std::uint32_t max_payload) noexcept;

enum class PrefaceStatus { need_more, ok, bad };
/// Checks the first bytes of a connection against kPreface.
PrefaceStatus check_preface(ByteView in) noexcept;

/// Appends header + payload to `out`. The caller keeps payload.size() within the peer's limit.
void encode_frame(MsgType type, ByteView payload, Bytes& out);
/// Appends a header for a payload the caller will append itself (avoids a copy).
void encode_header(MsgType type, std::uint32_t payload_size, Bytes& out);

}  // namespace duplex::wire
