// Refusals: connections turned away at accept (over --max-connections, over the per-address cap,
// or from an address in the penalty box). Bounds the refusals in flight and logs them so that a
// flood of refused connections cannot become a flood of log lines.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "duplex/net/asio.hpp"

namespace duplex::server {

/// Why a connection was turned away at accept.
enum class Refusal : std::uint8_t { server_full, address_full, penalised };

class Refusals {
 public:
  /// Past this many refusals still telling their client why, a refused connection is closed
  /// without a word: the work spent on refusals is bounded too.
  static constexpr std::size_t kMaxReplying = 256;

  Refusals(asio::io_context& control, std::size_t max_connections,
           std::chrono::milliseconds period = std::chrono::seconds(1));

  /// Logs one refusal of `peer` over --max-connections (control thread).
  void refused(const std::string& peer) { refused(Refusal::server_full, peer, {}); }
  /// Logs one refusal of `peer` (control thread). After a quiet `period` it is logged at once
  /// with the peer's address and `why` (the first line's reason, "--max-connections 5 reached");
  /// refusals within a period of the last line are counted by kind and summed into one line per
  /// kind when the period ends ("refused 37 more connections over --max-connections 5 in the
  /// last 1.0 s (latest from ...)"). An empty `why` says the kind's standard reason.
  void refused(Refusal kind, const std::string& peer, std::string why);
  /// Logs what is counted but not yet logged, and stops the timer (control thread, at stop).
  void flush();
  /// The --max-connections the lines name, after a reload (control thread).
  void set_max_connections(std::size_t n) noexcept { max_connections_ = n; }

  /// Takes a place for a refusal that replies (false when kMaxReplying already do). The
  /// accepting thread (one per server: the control thread, or the only worker).
  bool begin_reply() noexcept;
  /// Gives the place back. Any thread.
  void end_reply() noexcept;

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kKinds = 3;
  struct Counted {
    std::uint64_t pending = 0;  // refusals since the last line, not yet logged
    std::string latest_peer;
    std::string over;  // "over --max-connections 5", for the summary line
  };
  void report();
  std::string standard_over(Refusal kind) const;

  asio::steady_timer timer_;
  std::size_t max_connections_;
  std::chrono::milliseconds period_;
  Clock::time_point last_line_{};  // when a refusal line was last written (epoch: never)
  std::array<Counted, kKinds> counted_;
  bool timer_armed_ = false;
  std::atomic<std::size_t> replying_{0};
};

}  // namespace duplex::server
