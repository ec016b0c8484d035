// Refusals implementation: one line at once, then at most one summary line per period.
#include "duplex/server/refusals.hpp"

#include <spdlog/spdlog.h>

namespace duplex::server {

Refusals::Refusals(asio::io_context& control, std::size_t max_connections,
                   std::chrono::milliseconds period)
    : timer_(control), max_connections_(max_connections), period_(period) {}

void Refusals::refused(const std::string& peer) {
  const auto now = Clock::now();
  if (pending_ == 0 && now - last_line_ >= period_) {
    spdlog::warn("refused a connection from {}: --max-connections {} reached", peer,
                 max_connections_);
    last_line_ = now;
    return;
  }
  ++pending_;
  latest_peer_ = peer;
  if (timer_armed_) return;
  timer_armed_ = true;
  timer_.expires_at(last_line_ + period_);
  timer_.async_wait([this](std::error_code ec) {
    if (ec) return;  // flush() reported them
    timer_armed_ = false;
    report();
  });
}

void Refusals::flush() {
  timer_armed_ = false;
  timer_.cancel();
  report();
}

void Refusals::report() {
  if (pending_ == 0) return;
  const auto now = Clock::now();
  const std::chrono::duration<double> over = now - last_line_;
  spdlog::warn(
      "refused {} more connection{} over --max-connections {} in the last {:.1f} s "
      "(latest from {})",
      pending_, pending_ == 1 ? "" : "s", max_connections_, over.count(), latest_peer_);
  pending_ = 0;
  last_line_ = now;
}

bool Refusals::begin_reply() noexcept {
  // Only the control thread adds, so a load then an add cannot overshoot.
  if (replying_.load() >= kMaxReplying) return false;
  replying_.fetch_add(1);
  return true;
}

void Refusals::end_reply() noexcept {
  replying_.fetch_sub(1);
}

}  // namespace duplex::server
