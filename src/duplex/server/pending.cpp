// Pending sessions: the set behind the early drop, and its rate-limited log.
#include "duplex/server/pending.hpp"

#include <spdlog/spdlog.h>

#include "duplex/net/asio.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

std::uint64_t PendingSessions::add(Worker& worker, std::uint64_t id, std::string_view peer) {
  std::lock_guard lock(mu_);
  if (cap_ != 0 && items_.size() >= cap_) {
    auto oldest = items_.begin();
    Worker* w = oldest->second.worker;
    const std::uint64_t victim = oldest->second.id;
    log_drop(victim, oldest->second.peer);
    items_.erase(oldest);
    ++dropped_;
    // The victim's entry is touched only on its own thread, and may be gone by the time this
    // runs: look it up there by id rather than keep a pointer to it.
    asio::post(*w->ctx, [w, victim] {
      for (SessionEntry* s : w->sessions) {
        if (s->id != victim) continue;
        s->stream->close();
        return;
      }
    });
  }
  const std::uint64_t key = next_key_++;
  items_.emplace(key, Item{&worker, id, std::string(peer)});
  count_.store(items_.size(), std::memory_order_relaxed);
  return key;
}

void PendingSessions::remove(std::uint64_t key) noexcept {
  std::lock_guard lock(mu_);
  items_.erase(key);
  count_.store(items_.size(), std::memory_order_relaxed);
}

std::size_t PendingSessions::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

std::uint64_t PendingSessions::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void PendingSessions::log_drop(std::uint64_t id, const std::string& peer) {
  const auto now = Clock::now();
  if (now - last_line_ < std::chrono::seconds(1)) {
    ++unlogged_;
    return;
  }
  if (unlogged_ == 0)
    spdlog::warn(
        "[c{}] {} connections not yet settled (--max-unauthenticated): closed the oldest, from {}",
        id, cap_, peer);
  else
    spdlog::warn(
        "[c{}] {} connections not yet settled (--max-unauthenticated): closed the oldest, from {}, "
        "and {} more before it since the last line",
        id, cap_, peer, unlogged_);
  unlogged_ = 0;
  last_line_ = now;
}

}  // namespace duplex::server
