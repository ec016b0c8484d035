// Reading a connection's next chunk: what overflows the wait buffer.
#include "duplex/server/chunk.hpp"

#include <cstring>

namespace duplex::server {

Chunk take_chunk(net::Stream& stream, std::span<std::byte> wait, std::size_t n, std::size_t chunk) {
  if (n < wait.size() || chunk <= n) return Chunk{PooledBuffer(), wait.first(n)};
  Chunk c{PooledBuffer(chunk), {}};
  std::memcpy(c.pooled.data(), wait.data(), n);
  const auto [ec, more] = stream.try_read_some(asio::buffer(c.pooled.data() + n, chunk - n));
  c.bytes = std::span(c.pooled.data(), n + (ec ? 0 : more));
  return c;
}

}  // namespace duplex::server
