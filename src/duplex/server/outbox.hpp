// Outbox: the single writer of a session, with a bounded queue of frames in front of it. Asio
// forbids overlapping writes on one stream; producers (the reader, service pumps) queue here,
// and wait when the queue is full — that wait is what bounds a slow client's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/services/frame_sink.hpp"

namespace duplex::server {

class Outbox final : public services::FrameSink {
 public:
  Outbox(const asio::any_io_executor& ex, std::size_t capacity) : ch_(ex, capacity) {}

  /// Queues one frame; waits while the queue is full. False when the writer has stopped (peer
  /// gone, or after finish()): the producer should stop too.
  awaitable<bool> send(wire::MsgType type, services::Payload payload) override;
  /// Queues the end: the writer flushes what precedes it, half-closes, and returns.
  awaitable<void> finish() override;
  /// Stops the writer now, dropping what is queued (for a dead peer or shutdown).
  void abort() noexcept;

  /// Called once if a write fails (the peer is gone), before run() returns.
  void on_broken(std::function<void()> f) { on_broken_ = std::move(f); }

  /// The writer loop. Gathers queued frames into one write and adds what it wrote to
  /// `bytes_out`. On a write error it closes the stream so that the session's reader wakes up.
  awaitable<void> run(net::Stream& stream, std::uint64_t& bytes_out);

 private:
  // Each message is a sealed frame; the error code asio::error::eof marks finish().
  asio::experimental::channel<void(std::error_code, Bytes)> ch_;
  std::function<void()> on_broken_;
};

}  // namespace duplex::server
