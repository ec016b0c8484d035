// Outbox implementation.
#include "duplex/server/outbox.hpp"

#include <vector>

namespace duplex::server {

awaitable<bool> Outbox::send(wire::MsgType type, services::Payload payload) {
  auto [ec] =
      co_await ch_.async_send(std::error_code{}, std::move(payload).seal(type), net::use_tuple);
  co_return !ec;
}

awaitable<void> Outbox::finish() {
  co_await ch_.async_send(make_error_code(asio::error::eof), Bytes{}, net::use_tuple);
}

void Outbox::abort() noexcept {
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
      for (auto& b : batch)
        bufs.emplace_back(b.data(), b.size());
      auto [wec, n] = co_await stream.write(bufs);
      bytes_out += n;
      batch.clear();
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
