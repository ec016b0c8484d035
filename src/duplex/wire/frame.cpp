// Frame codec implementation. Everything here is bounds-checked against the input span.
#include "duplex/wire/frame.hpp"

#include <algorithm>
#include <optional>

#include "duplex/core/errors.hpp"

namespace duplex::wire {

bool is_known_type(std::uint8_t t) noexcept {
  switch (static_cast<MsgType>(t)) {
    case MsgType::hello:
    case MsgType::welcome:
    case MsgType::error:
    case MsgType::ping:
    case MsgType::pong:
    case MsgType::auth:
    case MsgType::auth_ok:
    case MsgType::auth_start:
    case MsgType::auth_challenge:
    case MsgType::auth_proof:
    case MsgType::upper_request:
    case MsgType::upper_reply:
    case MsgType::exec_start:
    case MsgType::stdin_data:
    case MsgType::stdin_eof:
    case MsgType::stdout_data:
    case MsgType::stderr_data:
    case MsgType::signal:
    case MsgType::window_size:
    case MsgType::exit:
    case MsgType::stdin_window:
    case MsgType::stats_request:
    case MsgType::stats_reply: return true;
  }
  return false;
}

std::optional<std::uint32_t> announced_length(ByteView in) noexcept {
  if (in.size() < kHeaderSize) return std::nullopt;
  return ByteReader(in.first(4)).u32();
}

const char* type_name(MsgType t) noexcept {
  switch (t) {
    case MsgType::hello: return "hello";
    case MsgType::welcome: return "welcome";
    case MsgType::error: return "error";
    case MsgType::ping: return "ping";
    case MsgType::pong: return "pong";
    case MsgType::auth: return "auth";
    case MsgType::auth_ok: return "auth_ok";
    case MsgType::auth_start: return "auth_start";
    case MsgType::auth_challenge: return "auth_challenge";
    case MsgType::auth_proof: return "auth_proof";
    case MsgType::upper_request: return "upper_request";
    case MsgType::upper_reply: return "upper_reply";
    case MsgType::exec_start: return "exec_start";
    case MsgType::stdin_data: return "stdin_data";
    case MsgType::stdin_eof: return "stdin_eof";
    case MsgType::stdout_data: return "stdout_data";
    case MsgType::stderr_data: return "stderr_data";
    case MsgType::signal: return "signal";
    case MsgType::window_size: return "window_size";
    case MsgType::exit: return "exit";
    case MsgType::stdin_window: return "stdin_window";
    case MsgType::stats_request: return "stats_request";
    case MsgType::stats_reply: return "stats_reply";
  }
  return "unknown";
}

Decoded decode_frame(ByteView in, std::uint32_t max_payload) noexcept {
  Decoded d;
  if (in.size() < kHeaderSize) return d;
  ByteReader r(in.first(kHeaderSize));
  const std::uint32_t len = r.u32();  // announced_length(), read with the rest of the header
  const std::uint8_t type = r.u8();
  const std::uint8_t flags = r.u8();
  // Reject before waiting for the payload: a peer announcing 4 GiB must not make us buffer it.
  if (len > max_payload) {
    d.status = DecodeStatus::error;
    d.error = errc::frame_too_large;
    return d;
  }
  if (flags != 0) {  // reserved in v1, so that a later version can give them meaning
    d.status = DecodeStatus::error;
    d.error = errc::bad_frame;
    return d;
  }
  if (in.size() - kHeaderSize < len) return d;
  d.status = DecodeStatus::frame;
  d.type = static_cast<MsgType>(type);
  d.payload = in.subspan(kHeaderSize, len);
  d.consumed = kHeaderSize + len;
  return d;
}

PrefaceStatus check_preface(ByteView in) noexcept {
  const std::size_t n = std::min(in.size(), kPreface.size());
  if (!std::equal(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n), kPreface.begin()))
    return PrefaceStatus::bad;
  return n == kPreface.size() ? PrefaceStatus::ok : PrefaceStatus::need_more;
}

void encode_header(MsgType type, std::uint32_t payload_size, Bytes& out) {
  ByteWriter w(out);
  w.u32(payload_size);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(0);
}

void encode_frame(MsgType type, ByteView payload, Bytes& out) {
  out.reserve(out.size() + kHeaderSize + payload.size());
  encode_header(type, static_cast<std::uint32_t>(payload.size()), out);
  out.insert(out.end(), payload.begin(), payload.end());
}

}  // namespace duplex::wire
