// What services see of a session: a sink for the frames they produce. They never see a socket.
#pragma once

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::services {

/// Where a service sends encoded frames for its client. `send` waits while the client's queue is
/// full (that wait is the backpressure); false means the client is gone and the producer should
/// stop producing.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual awaitable<bool> send(Bytes frame) = 0;
};

}  // namespace duplex::services
