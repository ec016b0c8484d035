// libFuzzer target: the frame decoder, and each frame's payload through its typed decoder.
// Asio-free: links only duplex_core and duplex_wire. Aborts on a broken decoder invariant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "duplex/core/limits.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace {

using namespace duplex;
using namespace duplex::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

void decode_payload(MsgType type, ByteView p) {
  switch (type) {
    case MsgType::hello: (void)decode_hello(p); break;
    case MsgType::welcome: (void)decode_welcome(p); break;
    case MsgType::error: (void)decode_error(p); break;
    case MsgType::auth: (void)decode_auth(p); break;
    case MsgType::auth_ok: (void)decode_auth_ok(p); break;
    case MsgType::exec_start: (void)decode_exec_start(p); break;
    case MsgType::signal: (void)decode_signal(p); break;
    case MsgType::window_size: (void)decode_window_size(p); break;
    case MsgType::exit: (void)decode_exit(p); break;
    default: break;  // data messages: the payload is the bytes
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in = std::as_bytes(std::span(data, size));
  // A connection may start with the preface; the decoder must cope either way.
  if (check_preface(in) == PrefaceStatus::ok) in = in.subspan(kPreface.size());

  const std::uint32_t max_payload = Limits{}.max_frame;
  while (!in.empty()) {
    const Decoded d = decode_frame(in, max_payload);
    if (d.status != DecodeStatus::frame) {
      check(d.consumed == 0);
      check((d.status == DecodeStatus::error) == static_cast<bool>(d.error));
      break;
    }
    check(d.consumed == kHeaderSize + d.payload.size() && d.consumed <= in.size());
    check(d.payload.size() <= max_payload);
    check(d.payload.data() == in.data() + kHeaderSize);
    decode_payload(d.type, d.payload);
    in = in.subspan(d.consumed);
  }
  return 0;
}
