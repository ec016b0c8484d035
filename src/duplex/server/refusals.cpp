// Refusals implementation: one line at once, then at most one summary line per kind per period.
#include "duplex/server/refusals.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace duplex::server {

Refusals::Refusals(asio::io_context& control, std::size_t max_connections,
                   std::chrono::milliseconds period)
    : timer_(control), max_connections_(max_connections), period_(period) {}

std::string Refusals::standard_over(Refusal kind) const {
  switch (kind) {
    case Refusal::server_full: return fmt::format("over --max-connections {}", max_connections_);
    case Refusal::address_full: return "over --max-connections-per-address";
    case Refusal::penalised: return "from addresses in the penalty box";
  }
  return {};
}

void Refusals::refused(Refusal kind, const std::string& peer, std::string why) {
  const auto now = Clock::now();
  bool quiet = now - last_line_ >= period_;
  for (const auto& c : counted_)
    quiet = quiet && c.pending == 0;
  if (why.empty()) why = fmt::format("--max-connections {} reached", max_connections_);
  if (quiet) {
    spdlog::warn("refused a connection from {}: {}", peer, why);
    last_line_ = now;
    return;
  }
  auto& c = counted_[static_cast<std::size_t>(kind)];
  ++c.pending;
  c.latest_peer = peer;
  // The summary names the limit as the first line did ("... reached" dropped).
  constexpr std::string_view kReached = " reached";
  if (why.size() > kReached.size() && why.ends_with(kReached) && why.starts_with("--"))
    c.over = "over " + why.substr(0, why.size() - kReached.size());
  else
    c.over = standard_over(kind);
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
  const auto now = Clock::now();
  const std::chrono::duration<double> over = now - last_line_;
  bool logged = false;
  for (auto& c : counted_) {
    if (c.pending == 0) continue;
    spdlog::warn("refused {} more connection{} {} in the last {:.1f} s (latest from {})", c.pending,
                 c.pending == 1 ? "" : "s", c.over, over.count(), c.latest_peer);
    c.pending = 0;
    logged = true;
  }
  if (logged) last_line_ = now;
}

bool Refusals::begin_reply() noexcept {
  // Only the accepting thread adds, so a load then an add cannot overshoot.
  if (replying_.load() >= kMaxReplying) return false;
  replying_.fetch_add(1);
  return true;
}

void Refusals::end_reply() noexcept {
  replying_.fetch_sub(1);
}

}  // namespace duplex::server
