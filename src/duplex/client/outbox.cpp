// Outbox implementation: control frames first, then data in order.
#include "duplex/client/outbox.hpp"

#include <utility>

namespace duplex::client {

Outbox::Outbox(const asio::any_io_executor& ex, std::size_t data_depth) : data_(ex, data_depth) {}

awaitable<void> Outbox::send_data(Bytes frame) {
  co_await data_.async_send(std::error_code{}, std::move(frame), net::use_tuple);
}

bool Outbox::send_signal(Bytes frame) {
  if (signals_.size() >= kMaxSignals) return false;
  signals_.push_back(std::move(frame));
  wake();
  return true;
}

void Outbox::send_window_size(Bytes frame) {
  window_size_ = std::move(frame);
  wake();
}

void Outbox::wake() noexcept {
  // The writer waits on the data lane only while it is empty; then this marker reaches it at
  // once. When the lane is full the writer is busy writing and looks at the control lane before
  // it takes the next data frame, so a failed try_send loses nothing.
  data_.try_send(std::error_code{}, Bytes{});
}

std::optional<Bytes> Outbox::next_control() {
  if (!signals_.empty()) {
    Bytes f = std::move(signals_.front());
    signals_.pop_front();
    return f;
  }
  if (window_size_) return std::exchange(window_size_, std::nullopt);
  return std::nullopt;
}

awaitable<void> Outbox::run(net::Stream& out) {
  bool broken = false;
  for (;;) {
    std::optional<Bytes> f = next_control();
    if (!f) {
      auto [ec, data] = co_await data_.async_receive(net::use_tuple);
      if (ec) co_return;
      if (data.empty()) continue;  // a wake-up: look at the control lane again
      f = std::move(data);
    }
    if (broken) continue;
    auto [ec, n] = co_await out.write(asio::buffer(*f));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) broken = true;
  }
}

}  // namespace duplex::client
