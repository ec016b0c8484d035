// libFuzzer target: typed message decoders. Input = one type byte (a MsgType value) + payload.
// Whatever decodes must re-encode to the very same payload (the encoding is canonical).
// Asio-free: links only duplex_core and duplex_wire. Aborts on a broken invariant.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace {

using namespace duplex;
using namespace duplex::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

template <class M>
void round_trip(MsgType type, ByteView payload, Result<M> (*decode)(ByteView) noexcept) {
  const Result<M> r = decode(payload);
  if (!r) {
    check(r.error() == errc::bad_message);
    return;
  }
  Bytes frame;
  encode(*r, frame);
  const Decoded d = decode_frame(frame, static_cast<std::uint32_t>(payload.size()));
  check(d.status == DecodeStatus::frame && d.type == type && d.consumed == frame.size());
  check(std::equal(d.payload.begin(), d.payload.end(), payload.begin(), payload.end()));
  const Result<M> again = decode(d.payload);
  check(again.ok() && *again == *r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto type = static_cast<MsgType>(data[0]);
  const ByteView p = std::as_bytes(std::span(data + 1, size - 1));
  switch (type) {
    case MsgType::hello: round_trip(type, p, &decode_hello); break;
    case MsgType::welcome: round_trip(type, p, &decode_welcome); break;
    case MsgType::error: round_trip(type, p, &decode_error); break;
    case MsgType::auth: round_trip(type, p, &decode_auth); break;
    case MsgType::auth_start: round_trip(type, p, &decode_auth_start); break;
    case MsgType::auth_challenge: round_trip(type, p, &decode_auth_challenge); break;
    case MsgType::auth_proof: round_trip(type, p, &decode_auth_proof); break;
    case MsgType::auth_ok: round_trip(type, p, &decode_auth_ok); break;
    case MsgType::exec_start: round_trip(type, p, &decode_exec_start); break;
    case MsgType::signal: round_trip(type, p, &decode_signal); break;
    case MsgType::window_size: round_trip(type, p, &decode_window_size); break;
    case MsgType::stdin_window: round_trip(type, p, &decode_stdin_window); break;
    case MsgType::exit: round_trip(type, p, &decode_exit); break;
    case MsgType::stats_request: round_trip(type, p, &decode_stats_request); break;
    default: break;  // data messages and unknown types carry no structure
  }
  return 0;
}
