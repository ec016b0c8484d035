// Pacing: when each exchange of an open-loop run is due (wrk2's constant rate). Latency counts
// from the due time, not from when the exchange could start, so a stalled server is charged for
// every message it delayed (no coordinated omission). Pure; no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace duplex::loadgen {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  /// `rate` messages/s in total over `connections`; this is connection `index`'s schedule,
  /// starting at `start`. Each connection sends every connections/rate seconds, the connections
  /// offset from each other by 1/rate so that the sends are spread evenly.
  Pacer(Clock::time_point start, double rate, std::size_t connections, std::size_t index) noexcept;

  /// The due time of exchange number k (0-based) of this connection.
  Clock::time_point due(std::uint64_t k) const noexcept;
  /// The due time of the next exchange, and move on to the one after it.
  Clock::time_point next() noexcept { return due(k_++); }
  std::chrono::nanoseconds interval() const noexcept { return interval_; }

 private:
  Clock::time_point first_;
  std::chrono::nanoseconds interval_;
  std::uint64_t k_ = 0;
};

}  // namespace duplex::loadgen
