// The ping service: PING is answered with PONG carrying the same opaque payload.
#pragma once

#include "duplex/services/service.hpp"

namespace duplex::services {

class PingService final : public Service {
 public:
  explicit PingService(FrameSink& out) noexcept : out_(out) {}
  awaitable<Handled> handle(wire::MsgType type, ByteView payload) override;

 private:
  FrameSink& out_;
};

}  // namespace duplex::services
