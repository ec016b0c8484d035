// MemoryStream: two connected in-memory Streams, for testing sessions and clients without
// sockets (the way Asio's own tests use in-memory streams).
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "duplex/net/stream.hpp"

namespace duplex::net {

class MemoryStream;

/// Two ends of one in-memory connection, both on `ex` (one thread). What one end writes the
/// other reads; each direction holds at most `capacity` unread bytes, so a writer waits for its
/// reader as it would on a socket (backpressure is testable). `a_sees` is end a's view of its
/// peer (address, uid...), `b_sees` end b's.
struct MemoryPair {
  std::unique_ptr<MemoryStream> a, b;
};
MemoryPair make_memory_pair(const asio::any_io_executor& ex, Peer a_sees = {}, Peer b_sees = {},
                            std::size_t capacity = 64 * 1024);

class MemoryStream final : public Stream {
 public:
  struct Pipe;  // one direction: bytes, EOF, and who waits on it

  MemoryStream(asio::any_io_executor ex, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out,
               Peer peer);
  ~MemoryStream() override;

  asio::any_io_executor get_executor() override { return ex_; }
  awaitable<std::tuple<std::error_code>> wait_readable() override;
  awaitable<IoResult> read_some(asio::mutable_buffer into) override;
  IoResult try_read_some(asio::mutable_buffer into) noexcept override;
  awaitable<std::error_code> wait_hangup() override;
  awaitable<void> shutdown_send() override;
  void cancel() noexcept override;
  void close() noexcept override;
  bool is_open() const noexcept override { return open_; }

  /// Ends the connection like a reset: the peer's reads fail with connection_reset.
  void abort() noexcept override;

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override;

 private:
  awaitable<std::error_code> wait_on(bool reading);
  std::error_code aborted() const noexcept;

  asio::any_io_executor ex_;
  std::shared_ptr<Pipe> in_, out_;
  bool open_ = true;
  std::size_t cancels_ = 0;  // bumped by cancel(): operations started before it end aborted
};

}  // namespace duplex::net
