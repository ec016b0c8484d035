// Refusals: connections turned away over --max-connections. Bounds the refusals in flight and
// logs them so that a flood of refused connections cannot become a flood of log lines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "duplex/net/asio.hpp"

namespace duplex::server {

class Refusals {
 public:
  /// Past this many refusals still telling their client why, a refused connection is closed
  /// without a word: the work spent on refusals is bounded too.
  static constexpr std::size_t kMaxReplying = 256;

  Refusals(asio::io_context& control, std::size_t max_connections,
           std::chrono::milliseconds period = std::chrono::seconds(1));

  /// Logs one refusal of `peer` (control thread). After a quiet `period` it is logged at once with
  /// the peer's address; refusals within a period of the last line are counted and summed into
  /// one line when the period ends ("refused 37 more connections ... (latest from ...)").
  void refused(const std::string& peer);
  /// Logs what is counted but not yet logged, and stops the timer (control thread, at stop).
  void flush();

  /// Takes a place for a refusal that replies (false when kMaxReplying already do). Control
  /// thread.
  bool begin_reply() noexcept;
  /// Gives the place back. Any thread.
  void end_reply() noexcept;

 private:
  using Clock = std::chrono::steady_clock;
  void report();

  asio::steady_timer timer_;
  std::size_t max_connections_;
  std::chrono::milliseconds period_;
  Clock::time_point last_line_{};  // when a refusal line was last written (epoch: never)
  std::uint64_t pending_ = 0;      // refusals since then, not yet logged
  std::string latest_peer_;
  bool timer_armed_ = false;
  std::atomic<std::size_t> replying_{0};
};

}  // namespace duplex::server
