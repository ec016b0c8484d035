// Outbox: the exec client's single writer, with a control lane that goes ahead of queued stdin.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>

#include <asio/experimental/channel.hpp>

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::client {

/// Frames for the server, written by one coroutine (Asio forbids overlapping writes).
///
/// Two lanes. The data lane carries STDIN_DATA and STDIN_EOF in order and is bounded: a sender
/// waits while it is full, which bounds memory when the server reads slower than our stdin
/// comes (the session puts STDIN_DATA here only within the server's stdin window). The control lane
/// carries SIGNAL and WINDOW_SIZE: queuing one never waits, and the writer takes it before any
/// queued data, so a Ctrl-C is not stuck behind megabytes of stdin (only behind the one frame being
/// written). A new WINDOW_SIZE replaces one still queued (only the last size matters); beyond
/// kMaxSignals queued signals, more are dropped. All on one thread (the io_context's).
class Outbox {
 public:
  static constexpr std::size_t kMaxSignals = 64;

  Outbox(const asio::any_io_executor& ex, std::size_t data_depth);

  /// Queues a data frame behind the others; waits while `data_depth` are queued.
  awaitable<void> send_data(Bytes frame);
  /// Queues a SIGNAL frame ahead of all data. Never waits. False when it was dropped.
  bool send_signal(Bytes frame);
  /// Queues a WINDOW_SIZE frame ahead of all data, replacing one still queued. Never waits.
  void send_window_size(Bytes frame);

  /// Writes frames to `out` until cancelled. After a write error it writes no more but keeps
  /// taking frames, so that senders never wait on a dead connection (the reader learns why it
  /// died).
  awaitable<void> run(net::Stream& out);

 private:
  std::optional<Bytes> next_control();
  void wake() noexcept;

  // Carries data frames; an empty one only wakes the writer to look at the control lane.
  asio::experimental::channel<void(std::error_code, Bytes)> data_;
  std::deque<Bytes> signals_;
  std::optional<Bytes> window_size_;
};

}  // namespace duplex::client
