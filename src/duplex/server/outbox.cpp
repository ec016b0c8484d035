// Outbox implementation.
#include "duplex/server/outbox.hpp"

#include <algorithm>
#include <vector>

namespace duplex::server {

awaitable<bool> Outbox::send(wire::MsgType type, services::Payload payload) {
  // One frame may pass the bound (so that a frame larger than it can still be sent): the check
  // and the count below run without a suspension between them, so only one can.
  while (queued_bytes_ >= max_bytes_ && !stopped_)
    co_await room_.async_wait(net::use_tuple);
  if (stopped_) co_return false;
  Bytes frame = std::move(payload).seal(type);
  const std::size_t size = frame.size();
  queued_bytes_ += size;
  auto [ec] = co_await ch_.async_send(std::error_code{}, std::move(frame), net::use_tuple);
  if (ec) queued_bytes_ -= size;
  co_return !ec;
}

awaitable<void> Outbox::finish() {
  co_await ch_.async_send(make_error_code(asio::error::eof), Bytes{}, net::use_tuple);
}

void Outbox::abort() noexcept {
  stopped_ = true;
  room_.cancel();
  // Cancel first: it wakes producers waiting for room; close() alone would leave them waiting
  // (and after close() a cancel cannot tell waiting producers from a waiting writer).
  ch_.cancel();
  ch_.close();
}

awaitable<void> Outbox::run(net::Stream& stream, std::uint64_t& bytes_out) {
  constexpr std::size_t kMaxBatch = 64;
  std::vector<Bytes> batch;
  std::vector<asio::const_buffer> bufs;
  for (;;) {
    auto [ec, first] = co_await ch_.async_receive(net::use_tuple);
    bool end = ec == asio::error::eof;
    if (ec && !end) co_return;
    if (!end) batch.push_back(std::move(first));
    // Take whatever else is already queued: one write syscall for a burst of small frames.
    while (!end && batch.size() < kMaxBatch && ch_.try_receive([&](std::error_code e, Bytes b) {
      if (e == asio::error::eof)
        end = true;
      else
        batch.push_back(std::move(b));
    })) {
    }
    if (!batch.empty()) {
      bufs.clear();
      std::size_t batch_bytes = 0;
      for (auto& b : batch) {
        bufs.emplace_back(b.data(), b.size());
        batch_bytes += b.size();
      }
      auto [wec, n] = co_await stream.write(bufs);
      bytes_out += n;
      batch.clear();
      // Written (or dropped): producers waiting for room may go on.
      const bool was_full = queued_bytes_ >= max_bytes_;
      queued_bytes_ -= std::min(queued_bytes_, batch_bytes);
      if (was_full && queued_bytes_ < max_bytes_) room_.cancel();
      if (wec) {
        abort();
        stream.close();
        if (on_broken_) on_broken_();
        co_return;
      }
    }
    if (end) {
      abort();  // what comes after the end is not sent: its producers learn so at once
      co_await stream.shutdown_send();
      co_return;
    }
  }
}

}  // namespace duplex::server
