// PING -> PONG.
#include "duplex/services/ping.hpp"

namespace duplex::services {

awaitable<Handled> PingService::handle(wire::MsgType, ByteView payload) {
  auto reply = Payload::copy_of(payload);
  const bool sent = co_await out_.send(wire::MsgType::pong, std::move(reply));
  co_return after_send(sent);
}

}  // namespace duplex::services
