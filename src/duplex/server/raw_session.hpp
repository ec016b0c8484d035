// The seed tutorial's raw protocol: each chunk answered with bytes.upper() of it, or with
// --raw-exec run as a shell command whose stdout then stderr is the reply.
#pragma once

#include <cstddef>

#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/buffer_pool.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

/// Answers the first chunk (`buf`, `n` bytes) and every later one with its upper-case form.
awaitable<void> serve_raw(net::Stream& stream, SessionEntry& entry, PooledBuffer buf, std::size_t n,
                          std::size_t chunk);

/// Runs the first chunk and every later one as a command (--raw-exec); loopback/Unix only.
awaitable<void> serve_raw_exec(net::Stream& stream, ServerState& state, SessionEntry& entry,
                               PooledBuffer buf, std::size_t n);

}  // namespace duplex::server
