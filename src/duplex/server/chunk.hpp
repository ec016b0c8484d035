// Reading a connection's next chunk: the read waits with a small buffer, and a pooled one is taken
// only for what overflows it.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "duplex/net/stream.hpp"
#include "duplex/server/buffer_pool.hpp"

namespace duplex::server {

/// What a connection waits for its next bytes with. A read waiting in Asio's reactor holds its
/// buffer, but costs no system call of its own (a readiness wait re-arms the descriptor with
/// epoll_ctl before every message, and the read after it is a second call): so the buffer is
/// small, for idle connections stay cheap (docs/BENCHMARKS.md), yet holds a typed line or a small
/// request whole.
inline constexpr std::size_t kWaitBufferSize = 128;
using WaitBuffer = std::array<std::byte, kWaitBufferSize>;

/// Bytes just read: in the caller's wait buffer, or in `pooled` when they did not fit there.
struct Chunk {
  PooledBuffer pooled;
  std::span<std::byte> bytes;
};

/// After a read of `n` bytes into `wait`: when it filled, the bytes move to a pooled buffer of
/// `chunk` bytes and what else has already arrived is read behind them, without waiting (an
/// error or EOF there is left for the next read to report).
Chunk take_chunk(net::Stream& stream, std::span<std::byte> wait, std::size_t n, std::size_t chunk);

}  // namespace duplex::server
