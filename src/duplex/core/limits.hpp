// Every limit the server enforces, in one struct, with its default. Flags in `duplex serve` map
// 1:1.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace duplex {

struct Limits {
  /// Open client connections per server; one more is refused (framed clients get an ERROR first).
  std::size_t max_connections = 10'000;
  /// Largest frame payload accepted or sent, in bytes.
  std::uint32_t max_frame = 1u << 20;
  /// A connection with no bytes from its peer for this long is closed. Zero disables.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  /// Frames queued for one client's writer before its producers wait (bounds memory per client).
  std::size_t out_queue_frames = 64;
  /// Read buffer taken from the per-thread pool while a connection has bytes to process.
  std::size_t read_chunk = 64 * 1024;
};

}  // namespace duplex
