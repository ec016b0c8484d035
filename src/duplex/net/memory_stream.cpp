// MemoryStream: a byte queue per direction, and a wake-up for whoever waits on it.
#include "duplex/net/memory_stream.hpp"

#include "duplex/core/bytes.hpp"

#include <algorithm>
#include <cstring>

namespace duplex::net {

// A timer that never expires, used as a condition variable: waiters wait on it, notify()
// cancels it, which wakes every waiter to re-check its condition. Single-threaded by design.
class Wakeup {
 public:
  // Set once: expires_at() would cancel the other waiters, cancel() leaves the expiry alone.
  explicit Wakeup(const asio::any_io_executor& ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  awaitable<void> wait() { co_await timer_.async_wait(use_tuple); }
  void notify() noexcept { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

struct MemoryStream::Pipe {
  explicit Pipe(const asio::any_io_executor& ex, std::size_t cap)
      : capacity(cap), readable(ex), writable(ex) {}
  Bytes data;                 // written, not yet read
  std::size_t capacity;       // the writer waits while data holds this much
  bool eof = false;           // the writer shut its side down (or closed)
  bool reset = false;         // the writer's end was reset: reads fail
  bool reader_gone = false;   // the reader's end closed: writes fail with broken_pipe
  Wakeup readable, writable;  // data/eof arrived; room or reader_gone
  void notify_all() noexcept {
    readable.notify();
    writable.notify();
  }
};

MemoryPair make_memory_pair(const asio::any_io_executor& ex, Peer a_sees, Peer b_sees,
                            std::size_t capacity) {
  auto ab = std::make_shared<MemoryStream::Pipe>(ex, capacity);
  auto ba = std::make_shared<MemoryStream::Pipe>(ex, capacity);
  if (a_sees.address.empty()) a_sees.address = a_sees.client_key = "memory";
  if (b_sees.address.empty()) b_sees.address = b_sees.client_key = "memory";
  return {std::make_unique<MemoryStream>(ex, ba, ab, std::move(a_sees)),
          std::make_unique<MemoryStream>(ex, ab, ba, std::move(b_sees))};
}

MemoryStream::MemoryStream(asio::any_io_executor ex, std::shared_ptr<Pipe> in,
                           std::shared_ptr<Pipe> out, Peer peer)
    : ex_(std::move(ex)), in_(std::move(in)), out_(std::move(out)) {
  peer_ = std::move(peer);
}

MemoryStream::~MemoryStream() {
  close();
}

std::error_code MemoryStream::aborted() const noexcept {
  return make_error_code(asio::error::operation_aborted);
}

// Waits for the next change on one direction. Returns operation_aborted when this end was
// closed or cancelled meanwhile, or when the awaiting coroutine itself was cancelled (e.g. the
// losing side of `a || b`).
awaitable<std::error_code> MemoryStream::wait_on(bool reading) {
  const std::size_t gen = cancels_;
  co_await (reading ? in_->readable : out_->writable).wait();
  auto cs = co_await asio::this_coro::cancellation_state;
  if (!open_ || gen != cancels_ || cs.cancelled() != asio::cancellation_type::none)
    co_return aborted();
  co_return std::error_code{};
}

awaitable<std::tuple<std::error_code>> MemoryStream::wait_readable() {
  for (;;) {
    if (!open_) co_return std::tuple{aborted()};
    if (!in_->data.empty() || in_->eof || in_->reset) co_return std::tuple{std::error_code{}};
    if (auto ec = co_await wait_on(true)) co_return std::tuple{ec};
  }
}

awaitable<IoResult> MemoryStream::read_some(asio::mutable_buffer into) {
  if (auto [ec] = co_await wait_readable(); ec) co_return IoResult{ec, 0};
  co_return try_read_some(into);
}

IoResult MemoryStream::try_read_some(asio::mutable_buffer into) noexcept {
  if (!open_) return {aborted(), 0};
  if (in_->data.empty()) {
    if (in_->reset) return {make_error_code(asio::error::connection_reset), 0};
    if (in_->eof) return {make_error_code(asio::error::eof), 0};
    return {make_error_code(asio::error::would_block), 0};
  }
  const std::size_t n = std::min(into.size(), in_->data.size());
  std::memcpy(into.data(), in_->data.data(), n);
  in_->data.erase(in_->data.begin(), in_->data.begin() + static_cast<std::ptrdiff_t>(n));
  in_->writable.notify();
  return {{}, n};
}

awaitable<IoResult> MemoryStream::write_all(std::span<const asio::const_buffer> bufs) {
  std::size_t total = 0;
  for (const auto& b : bufs) {
    const auto* p = static_cast<const std::byte*>(b.data());
    std::size_t left = b.size();
    while (left > 0) {
      if (!open_) co_return IoResult{aborted(), total};
      if (out_->reader_gone || out_->eof)
        co_return IoResult{make_error_code(asio::error::broken_pipe), total};
      const std::size_t room =
          out_->capacity > out_->data.size() ? out_->capacity - out_->data.size() : 0;
      if (room == 0) {
        if (auto ec = co_await wait_on(false)) co_return IoResult{ec, total};
        continue;
      }
      const std::size_t n = std::min(room, left);
      out_->data.insert(out_->data.end(), p, p + n);
      out_->readable.notify();
      p += n;
      left -= n;
      total += n;
    }
  }
  co_return IoResult{{}, total};
}

awaitable<std::error_code> MemoryStream::wait_hangup() {
  for (;;) {
    if (!open_) co_return aborted();
    if (in_->reset) co_return make_error_code(asio::error::connection_reset);
    if (in_->eof || out_->reader_gone) co_return make_error_code(asio::error::eof);
    if (auto ec = co_await wait_on(true)) co_return ec;
  }
}

awaitable<void> MemoryStream::shutdown_send() {
  out_->eof = true;
  out_->readable.notify();
  co_return;
}

void MemoryStream::cancel() noexcept {
  ++cancels_;
  in_->readable.notify();
  out_->writable.notify();
}

void MemoryStream::close() noexcept {
  if (!open_) return;
  open_ = false;
  out_->eof = true;         // the peer reads EOF after what we wrote
  in_->reader_gone = true;  // the peer's writes now fail
  in_->data.clear();
  in_->notify_all();
  out_->notify_all();
}

void MemoryStream::abort() noexcept {
  out_->reset = true;
  out_->data.clear();
  close();
}

}  // namespace duplex::net
