// StdinReader: reads a file descriptor on a thread of its own and hands chunks to an io_context.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <semaphore>
#include <thread>

#include <asio/experimental/concurrent_channel.hpp>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::client {

/// Reads `fd` once when that cannot wait (poll(2) says it is readable now): nullopt when nothing
/// is ready; an empty chunk at end of file or after a read error; else up to `chunk` bytes.
/// Stdin already at its end (</dev/null, an empty file) then needs no reader thread.
std::optional<Bytes> read_if_ready(int fd, std::size_t chunk);

/// Why a thread: epoll(7) refuses regular files, and `duplex exec ... < file` must work; a plain
/// blocking read(2) works on every kind of fd. The thread runs at most `depth` chunks ahead of
/// the consumer, so a fast stdin and a slow server cannot fill our memory. It also polls a
/// wake-up pipe, so that it can be stopped while stdin is silent (a terminal nobody types on).
/// Every signal is blocked in the thread: signals reach the io_context's thread (signal_set).
class StdinReader {
 public:
  /// Starts reading `fd` (not owned) in chunks of at most `chunk` bytes. Fails when the thread or
  /// its wake-up pipe cannot be made.
  static Result<std::unique_ptr<StdinReader>> start(const asio::any_io_executor& ex, int fd,
                                                    std::size_t chunk, std::ptrdiff_t depth = 4);
  /// Stops and joins the thread (it never waits for stdin to become readable).
  ~StdinReader();
  StdinReader(const StdinReader&) = delete;
  StdinReader& operator=(const StdinReader&) = delete;

  /// The next chunk; empty at end of file or after a read error (both end our stdin). Fails only
  /// when the wait is cancelled.
  awaitable<Result<Bytes>> next();

 private:
  StdinReader(const asio::any_io_executor& ex, int fd, std::size_t chunk, std::ptrdiff_t depth);
  void run() noexcept;
  void close_pipe() noexcept;

  asio::experimental::concurrent_channel<void(std::error_code, Bytes)> ch_;
  std::counting_semaphore<> credits_;
  std::atomic<bool> stop_{false};
  int fd_;
  std::size_t chunk_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace duplex::client
