// The seed tutorial's raw protocol: each chunk answered with bytes.upper() of it, or with
// --raw-exec run as a shell command whose stdout then stderr is the reply.
#pragma once

#include <cstddef>
#include <span>

#include <memory>

#include "duplex/net/asio.hpp"
#include "duplex/net/socket_stream.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/chunk.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

/// Answers the first chunk and every later one with its upper-case form. Later chunks are read
/// into `wait` (the session's wait buffer), or a pooled buffer of `chunk` bytes when they
/// overflow it (chunk.hpp). `round_trip` (--metrics) gets each chunk's time from its read to its
/// reply written.
awaitable<void> serve_raw(net::Stream& stream, SessionEntry& entry, Chunk first,
                          std::span<std::byte> wait, std::size_t chunk,
                          LatencyHistogram* round_trip = nullptr);

/// serve_raw over a plain socket as completion handlers instead of a coroutine: between messages
/// the connection holds its Session and one pending read into Session::wait, no coroutine frame
/// (an idle connection is counted in bytes: docs/BENCHMARKS.md, W5). `session->stream` must be a
/// net::SocketStream. Owns the session from here: it is destroyed, ending the connection, on
/// EOF, an error, cancel() or close().
void serve_raw_parked(std::unique_ptr<Session> session, Chunk first);

/// Runs the first chunk and every later one as a command (--raw-exec); loopback/Unix only.
awaitable<void> serve_raw_exec(net::Stream& stream, ServerState& state, SessionEntry& entry,
                               Chunk first, std::span<std::byte> wait);

}  // namespace duplex::server
