// Outbox implementation.
#include "duplex/server/outbox.hpp"

#include <vector>

namespace duplex::server {

awaitable<bool> Outbox::send(Bytes frame) {
  if (frame.empty()) co_return true;  // empty is the end marker; never queue it by accident
  auto [ec] = co_await ch_.async_send(std::error_code{}, std::move(frame), net::use_tuple);
  co_return !ec;
}

awaitable<void> Outbox::finish() {
  co_await ch_.async_send(std::error_code{}, Bytes{}, net::use_tuple);
}

awaitable<void> Outbox::run(net::Stream& stream) {
  constexpr std::size_t kMaxBatch = 64;
  std::vector<Bytes> batch;
  std::vector<asio::const_buffer> bufs;
  for (;;) {
    auto [ec, first] = co_await ch_.async_receive(net::use_tuple);
    if (ec) co_return;
    bool end = first.empty();
    if (!end) batch.push_back(std::move(first));
    // Take whatever else is already queued: one write syscall for a burst of small frames.
    while (!end && batch.size() < kMaxBatch && ch_.try_receive([&](std::error_code e, Bytes b) {
      if (e) return;
      if (b.empty())
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
      batch.clear();
      if (wec) {
        ch_.close();
        stream.close();
        if (on_broken_) on_broken_();
        co_return;
      }
    }
    if (end) {
      co_await stream.shutdown_send();
      co_return;
    }
  }
}

}  // namespace duplex::server
