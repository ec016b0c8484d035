// Outbox: the single writer of a session, with a queue in front of it bounded in frames and in
// bytes. Asio forbids overlapping writes on one stream; producers (the reader, service pumps)
// queue here, and wait when either bound is reached — that wait is what bounds a slow client's
// memory (the reader stops reading: backpressure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/proc/unique_fd.hpp"
#include "duplex/services/frame_sink.hpp"

namespace duplex::server {

class Outbox final : public services::FrameSink {
 public:
  /// At most `frames` queued frames, and producers wait while `bytes` or more are queued or being
  /// written (so the memory held is below `bytes` plus one frame).
  Outbox(const asio::any_io_executor& ex, std::size_t frames, std::size_t bytes)
      : ch_(ex, frames), spliced_(ex), room_(ex), max_bytes_(bytes) {
    room_.expires_at(asio::steady_timer::time_point::max());
    spliced_.expires_at(asio::steady_timer::time_point::max());
  }

  /// Queues one frame; waits while the queue is full. False when the writer has stopped (peer
  /// gone, or after finish()): the producer should stop too.
  awaitable<bool> send(wire::MsgType type, services::Payload payload) override;
  /// Queues the end: the writer flushes what precedes it, half-closes, and returns.
  awaitable<void> finish() override;
  /// On a plain socket the payload goes from the pipe to the socket by splice(2), behind its
  /// header and after every frame queued before it; waits until it is written.
  bool splices() const noexcept override { return splices_; }
  awaitable<bool> send_spliced(wire::MsgType type, int pipe_fd, std::size_t n) override;
  /// Stops the writer now, dropping what is queued (for a dead peer or shutdown).
  void abort() noexcept;

  /// Called once if a write fails (the peer is gone), before run() returns.
  void on_broken(std::function<void()> f) { on_broken_ = std::move(f); }

  /// The writer loop. Gathers queued frames into one write and adds what it wrote to
  /// `bytes_out`. On a write error it closes the stream so that the session's reader wakes up.
  awaitable<void> run(net::Stream& stream, std::uint64_t& bytes_out);

 private:
  // A sealed frame, or a header whose payload waits in a pipe (our own duplicate of the pipe's
  // descriptor: the producer may be gone by the time the writer gets to it).
  struct Queued {
    Bytes frame;
    proc::UniqueFd pipe = proc::UniqueFd();
    std::size_t spliced = 0;  // payload bytes in `pipe`
  };
  // The error code asio::error::eof marks finish().
  asio::experimental::channel<void(std::error_code, Queued)> ch_;
  // Spliced frames are numbered as queued; their producers wait on this timer (as on room_) until
  // the writer has written theirs.
  asio::steady_timer spliced_;
  std::uint64_t splices_queued_ = 0;
  std::uint64_t splices_written_ = 0;
  bool splices_ = false;  // the stream can splice (known once run() starts)
  // Producers waiting for bytes to drain wait on this timer, which never expires: the writer
  // cancels it to wake them all (each then checks again). A channel cannot wake many waiters.
  asio::steady_timer room_;
  std::size_t max_bytes_;
  std::size_t queued_bytes_ = 0;  // sealed frames queued or being written
  bool stopped_ = false;
  std::function<void()> on_broken_;
};

}  // namespace duplex::server
