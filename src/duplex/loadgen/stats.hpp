// Stats: what one loadgen thread counted (messages, bytes, errors by kind, latencies); merged
// into one after the run. A thread writes only its own; the live counter is read by the progress
// line.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "duplex/loadgen/histogram.hpp"

namespace duplex::loadgen {

/// Why an exchange failed. connect: could not connect (or the handshake/authentication failed);
/// reset: the connection was lost or closed mid-exchange; timeout: no reply in time (a lost
/// datagram too); verify: the reply was not the one expected; protocol: the server answered
/// with an ERROR, a frame of the wrong type, or (exec) a command that did not exit 0.
enum class ErrorKind { connect, reset, timeout, verify, protocol };
inline constexpr std::size_t kErrorKinds = 5;
std::string_view name_of(ErrorKind k) noexcept;

struct Stats {
  std::uint64_t messages = 0;         // completed exchanges within the measured window
  std::uint64_t bytes_sent = 0;       // payload bytes, within the window
  std::uint64_t bytes_received = 0;   // payload bytes, within the window
  std::uint64_t connects = 0;         // connections made (any time, warm-up included)
  std::uint64_t window_connects = 0;  // connections made within the measured window
  std::array<std::uint64_t, kErrorKinds> errors{};
  Histogram latency;  // nanoseconds
  /// Exchanges done so far, warm-up included, for the live progress line only.
  std::atomic<std::uint64_t> live{0};

  void error(ErrorKind k) noexcept { ++errors[static_cast<std::size_t>(k)]; }
  std::uint64_t error_total() const noexcept;
  void merge(const Stats& o) noexcept;
};

}  // namespace duplex::loadgen
