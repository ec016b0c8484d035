// Outbox implementation.
#include "duplex/server/outbox.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace duplex::server {

awaitable<bool> Outbox::send(wire::MsgType type, services::Payload payload) {
  // One frame may pass the bound (so that a frame larger than it can still be sent): the check
  // and the count below run without a suspension between them, so only one can.
  while (queued_bytes_ >= max_bytes_ && !stopped_)
    co_await room_.async_wait(net::use_tuple);
  if (stopped_) co_return false;
  Queued q{std::move(payload).seal(type), proc::UniqueFd(), 0};
  const std::size_t size = q.frame.size();
  queued_bytes_ += size;
  auto [ec] = co_await ch_.async_send(std::error_code{}, std::move(q), net::use_tuple);
  if (ec) queued_bytes_ -= size;
  co_return !ec;
}

awaitable<bool> Outbox::send_spliced(wire::MsgType type, int pipe_fd, std::size_t n) {
  if (!splices_ || n > UINT32_MAX) co_return co_await FrameSink::send_spliced(type, pipe_fd, n);
  if (stopped_) co_return false;
  Queued q{{}, proc::UniqueFd(::fcntl(pipe_fd, F_DUPFD_CLOEXEC, 0)), n};
  if (!q.pipe) co_return co_await FrameSink::send_spliced(type, pipe_fd, n);
  wire::encode_header(type, static_cast<std::uint32_t>(n), q.frame);
  // Only the header is held in memory: the payload waits in the pipe, whose size bounds it.
  const std::size_t size = q.frame.size();
  queued_bytes_ += size;
  const std::uint64_t ticket = ++splices_queued_;
  auto [ec] = co_await ch_.async_send(std::error_code{}, std::move(q), net::use_tuple);
  if (ec) {
    queued_bytes_ -= size;
    co_return false;
  }
  while (splices_written_ < ticket && !stopped_) {
    co_await spliced_.async_wait(net::use_tuple);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return false;
  }
  co_return splices_written_ >= ticket;
}

awaitable<void> Outbox::finish() {
  co_await ch_.async_send(make_error_code(asio::error::eof), Queued{}, net::use_tuple);
}

void Outbox::abort() noexcept {
  stopped_ = true;
  room_.cancel();
  spliced_.cancel();
  // Cancel first: it wakes producers waiting for room; close() alone would leave them waiting
  // (and after close() a cancel cannot tell waiting producers from a waiting writer).
  ch_.cancel();
  ch_.close();
}

awaitable<void> Outbox::run(net::Stream& stream, std::uint64_t& bytes_out) {
  constexpr std::size_t kMaxBatch = 64;
  splices_ = stream.splices();
  std::vector<Queued> batch;
  std::vector<asio::const_buffer> bufs;
  for (;;) {
    auto [ec, first] = co_await ch_.async_receive(net::use_tuple);
    bool end = ec == asio::error::eof;
    if (ec && !end) co_return;
    if (!end) batch.push_back(std::move(first));
    // Take whatever else is already queued: one write syscall for a burst of small frames. A
    // spliced frame ends the batch: its payload must follow its header before anything else.
    while (!end && batch.size() < kMaxBatch && !batch.back().pipe &&
           ch_.try_receive([&](std::error_code e, Queued q) {
             if (e == asio::error::eof)
               end = true;
             else
               batch.push_back(std::move(q));
           })) {
    }
    if (!batch.empty()) {
      bufs.clear();
      std::size_t batch_bytes = 0;
      for (auto& q : batch) {
        bufs.emplace_back(q.frame.data(), q.frame.size());
        batch_bytes += q.frame.size();
      }
      Queued& last = batch.back();
      auto [wec, n] = last.pipe ? co_await stream.write_spliced(bufs, last.pipe.get(), last.spliced)
                                : co_await stream.write(bufs);
      bytes_out += n;
      if (last.pipe && !wec) {
        ++splices_written_;
        spliced_.cancel();
      }
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
