// UpperPipeline: many upper requests in flight on one connection, replies handed on in order.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "duplex/client/connection.hpp"
#include "duplex/core/byte_buffer.hpp"
#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::client {

/// Requests are written ahead of their replies (one round trip per window, not per message) and
/// the replies are read as they come, beside the writing. Memory is bounded by the window: a
/// sender waits while `max_messages` requests or `max_bytes` of them are unanswered.
///
/// On a framed connection each message is one UPPER_REQUEST. On a raw one (the seed's protocol)
/// the messages go out back to back and the replies are cut by length: the reply to N bytes is
/// N bytes. An empty message is never sent (the raw protocol cannot say it): its reply, the empty
/// string, is handed on in its turn.
///
/// Use: run receive() beside the code that calls send() / flush() / drain(), e.g.
/// `co_await (produce() || pipeline.receive())`: receive() returns only when the connection fails,
/// and the connection's end while replies are owed, or any bytes nobody asked for, are failures.
/// One thread (the connection's executor).
class UpperPipeline {
 public:
  struct Window {
    std::size_t max_messages = 4096;
    std::size_t max_bytes = 1u << 20;
    /// Longest silence from the server while replies are owed; zero waits forever.
    std::chrono::milliseconds timeout{0};
  };
  struct Sink {
    /// Called with each reply in order; false stops the pipeline (our stdout went away).
    std::function<bool(std::string_view)> reply;
    /// Called when nothing is owed any more (a good moment to flush buffered output).
    std::function<bool()> idle;
  };

  UpperPipeline(Connection& conn, Sink sink, Window window);
  UpperPipeline(Connection& conn, Sink sink) : UpperPipeline(conn, std::move(sink), Window{}) {}

  /// Queues one request; writes what is queued when enough has gathered, and waits while the
  /// window is full. A message above the server's frame limit is a failure (errc::frame_too_large).
  awaitable<Status> send(std::string_view msg);
  /// Writes whatever send() has queued.
  awaitable<Status> flush();
  /// flush(), then waits until every reply has been handed to the sink.
  awaitable<Status> drain();
  /// Reads and hands on replies until the connection fails (its Failure) or it is cancelled.
  awaitable<Status> receive();

  /// Requests sent whose replies have not all been handed on.
  std::size_t owed() const noexcept { return pending_.size(); }

 private:
  struct Pending {
    std::size_t size;  // bytes of the request (= of the reply, raw)
    bool sent;         // false: empty, answered locally
  };
  Status hand_on_ready();
  Status take_replies();
  Status stopped(Failure f);
  void notify() noexcept;
  awaitable<Status> wait_progress();

  Connection& conn_;
  Sink sink_;
  Window window_;
  std::deque<Pending> pending_;
  std::size_t owed_bytes_ = 0;  // of sent requests not yet answered
  Bytes out_;                   // requests queued, not yet written
  ByteBuffer in_;               // replies read, not yet handed on
  std::optional<Failure> failed_;
  // Wakes a sender waiting for room in the window (capacity 1: a wake-up, not a queue). The bool
  // carries nothing: Asio 1.22 cannot instantiate a channel of void(error_code) alone.
  asio::experimental::channel<void(std::error_code, bool)> progress_;
};

}  // namespace duplex::client
