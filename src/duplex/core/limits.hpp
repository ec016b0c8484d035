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
  /// Bytes queued for one client's writer before its producers wait (the outbox's bound in bytes:
  /// a client that sends and never reads holds at most this much of our memory).
  std::size_t out_queue_bytes = 1u << 20;

  // Before authentication (a connection that has not passed AUTH, whatever service it uses).
  /// TLS handshake, HELLO and AUTH must all be done this long after accept; a trickle of bytes
  /// does not extend it. Upper-only sessions are not held to it (they never authenticate) but to
  /// idle_timeout. Zero disables.
  std::chrono::milliseconds auth_deadline = std::chrono::seconds(10);
  /// Largest frame payload accepted from a client that has not authenticated (a header claiming
  /// more is refused from the header alone, before any payload is read). Upper-only clients too.
  std::uint32_t max_frame_unauthenticated = 16 * 1024;
  /// Connections still unauthenticated (TLS handshake or framed, before AUTH_OK) at once; when
  /// one more arrives, the oldest is dropped (early drop: a slow-loris crowd cannot keep an honest
  /// client out, since the honest one authenticates before it becomes the oldest). Zero: no cap.
  std::size_t max_unauthenticated = 1024;
  /// Open connections from one client address (TCP; "uid:N" on Unix sockets). Zero: no cap.
  std::size_t max_connections_per_address = 0;
  /// Of max_connections, slots only a Unix-socket peer whose uid is allowed (or root) may take:
  /// other users filling the server cannot lock its owner out. Zero: none reserved.
  std::size_t reserved_connections = 1;
};

}  // namespace duplex
