// Exchange: one request and its whole reply over a Stream, raw or framed, checked against what
// was expected. The hot path of pingpong, storm and idle: nothing here allocates per message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "duplex/core/bytes.hpp"
#include "duplex/loadgen/payload.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/wire/frame.hpp"

namespace duplex::loadgen {

/// A request encoded once, and the reply it should get.
struct Message {
  Bytes request;         // the bytes written: the payload, or one frame holding it
  std::string expected;  // the reply's payload (empty with Verify::none)
  std::size_t payload_size = 0;
  bool framed = false;
  wire::MsgType reply_type = wire::MsgType::upper_reply;
  Verify verify = Verify::upper;
};

/// Raw: the payload itself. Framed: UPPER_REQUEST (PING with Verify::echo: the framed service that
/// echoes), answered by UPPER_REPLY (PONG).
Message make_message(std::size_t size, std::uint32_t seed, Verify v, bool framed);

enum class Outcome {
  ok,
  aborted,   // cancelled (the run's end, or the watchdog's timeout)
  lost,      // the connection failed or the server closed it
  verify,    // a reply of the right shape but not the expected bytes
  protocol,  // a frame that is not the reply (ERROR, another type, another length)
};

/// Runs exchanges on one connection, reusing its buffer.
class Exchanger {
 public:
  awaitable<Outcome> run(net::Stream& s, const Message& m);
  /// What went wrong in the last exchange that was not ok (one line, no URL).
  const std::string& detail() const noexcept { return detail_; }

 private:
  awaitable<Outcome> read_raw(net::Stream& s, const Message& m);
  awaitable<Outcome> read_framed(net::Stream& s, const Message& m);
  awaitable<Outcome> fill(net::Stream& s, std::size_t want);
  Outcome io_failed(std::error_code ec);

  std::vector<std::byte> buf_;
  std::size_t have_ = 0;
  std::string detail_;
};

}  // namespace duplex::loadgen
