// Pending sessions: connections whose protocol is not settled yet (before the first byte, in the
// TLS handshake, before WELCOME, during AUTH), capped at Limits::max_unauthenticated with early
// drop: when one more arrives at the cap, the oldest pending one is closed, never the new one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace duplex::server {

struct Worker;  // session.hpp

/// Shared by every worker; every member function may be called from any thread.
class PendingSessions {
 public:
  /// `count` mirrors size() for readers that take no lock (ServerState::unauthenticated).
  explicit PendingSessions(std::atomic<std::size_t>& count) noexcept : count_(count) {}
  PendingSessions(const PendingSessions&) = delete;
  PendingSessions& operator=(const PendingSessions&) = delete;

  /// `cap`: Limits::max_unauthenticated (zero: no cap, only counted).
  void set_cap(std::size_t cap) {
    std::lock_guard lock(mu_);  // a reload changes it while workers add
    cap_ = cap;
  }

  /// Session `id` of `worker` (peer `peer`, for the log) becomes pending. At the cap, the oldest
  /// pending session (the one pending longest, on whatever worker) leaves the set and is closed on
  /// its own worker. Returns the key to give to remove().
  std::uint64_t add(Worker& worker, std::uint64_t id, std::string_view peer);
  /// The session settled (or ended): it leaves the set. No-op when already gone (dropped).
  void remove(std::uint64_t key) noexcept;

  std::size_t size() const;
  /// Sessions closed by the early drop since start.
  std::uint64_t dropped() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Item {
    Worker* worker;
    std::uint64_t id;
    std::string peer;
  };
  void log_drop(std::uint64_t id, const std::string& peer);  // holds mu_

  std::atomic<std::size_t>& count_;
  std::size_t cap_ = 0;
  mutable std::mutex mu_;
  std::map<std::uint64_t, Item> items_;  // by key, which grows: begin() is the oldest
  std::uint64_t next_key_ = 1;
  std::uint64_t dropped_ = 0;
  // Rate-limited log, as Refusals does: one line at once, then a count at most once a second.
  Clock::time_point last_line_{};
  std::uint64_t unlogged_ = 0;
};

}  // namespace duplex::server
