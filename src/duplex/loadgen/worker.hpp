// Worker: one loadgen thread — its own io_context, the connections it drives as coroutines, its
// own Stats — plus what its workloads share: connecting, counting, the run's end, and a watchdog
// that gives up on a reply that takes longer than the timeout.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "duplex/client/connection.hpp"
#include "duplex/loadgen/options.hpp"
#include "duplex/loadgen/stats.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::loadgen {

using Clock = std::chrono::steady_clock;

/// What every worker of one run shares; read-only while the run goes on.
struct Plan {
  const BenchOptions* opt = nullptr;
  bool framed = false;               // the protocol the probe settled on
  client::ClientOptions client;      // for every connection
  Clock::time_point measure_from;    // warm-up ends
  Clock::time_point end;             // the run ends (idle: far away; the engine stops it)
  std::function<void()> idle_ready;  // idle: called once per connection that is open or failed
  /// What each connection does until the run ends (workloads.hpp).
  std::function<awaitable<void>(class Worker&, struct Slot&)> workload;
};

/// One connection's place in its worker: what the watchdog and the end of the run may cancel.
struct Slot {
  std::size_t index = 0;                      // 0..connections-1 over the whole run
  net::Stream* stream = nullptr;              // while connected
  Clock::time_point busy_since{};             // waiting for a reply since; {} when not waiting
  bool timed_out = false;                     // the watchdog cancelled the wait
  std::unique_ptr<asio::steady_timer> timer;  // pacing, holding, backing off
};

class Worker {
 public:
  Worker(const Plan& plan, std::size_t connections_hint);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Assigns connection `index` of the run to this worker (before start()).
  void add(std::size_t index) { indexes_.push_back(index); }
  /// Starts the thread: every connection's workload, the watchdog, the end timer.
  void start();
  void join();
  /// Ends the run on this worker (any thread): waits in progress are cancelled, connections close.
  void stop();

  const Stats& stats() const noexcept { return stats_; }
  std::uint64_t live() const noexcept { return stats_.live.load(std::memory_order_relaxed); }
  const std::array<std::string, kErrorKinds>& first_errors() const noexcept { return first_; }
  Clock::time_point finished_at() const noexcept { return finished_at_; }

  // For the workloads (on this worker's thread only).
  const Plan& plan() const noexcept { return plan_; }
  const BenchOptions& opt() const noexcept { return *plan_.opt; }
  bool stopping() const noexcept { return stopping_; }
  /// Dials and shakes hands (counted as a connect, or a connect error unless the run ended).
  awaitable<Result<client::Connection>> connect(Slot& s);
  /// Counts one finished exchange that was due at `due`.
  void done(Clock::time_point due, Clock::time_point finished, std::size_t payload_bytes);
  void error(ErrorKind k, std::string_view detail);
  /// Waits on the slot's timer until `t` (or until stop()). False when the run is ending.
  awaitable<bool> sleep_until(Slot& s, Clock::time_point t);
  /// Marks the slot busy (a reply awaited) until finished() is called.
  void busy(Slot& s, net::Stream* stream);
  void idle(Slot& s);
  /// Idle mode: waits until fewer than kMaxOpening of this worker's connections are between
  /// their dial and their first reply; leave_opening() when one is through. Thousands opened at
  /// once would trip the server's cap on unauthenticated connections (1024 by default), which
  /// drops the oldest.
  awaitable<void> enter_opening();
  void leave_opening();
  static constexpr std::size_t kMaxOpening = 128;

 private:
  void stop_here();
  awaitable<void> watchdog();

  const Plan& plan_;
  asio::io_context ctx_{1};
  std::vector<std::size_t> indexes_;
  std::deque<Slot> slots_;  // stable addresses: the coroutines hold references
  Stats stats_;
  std::array<std::string, kErrorKinds> first_;
  bool stopping_ = false;
  Clock::time_point stop_at_{};
  Clock::time_point finished_at_{};
  asio::steady_timer end_timer_{ctx_};
  std::size_t opening_ = 0;
  // Used as a condition variable: waiters sleep on it "forever", leave_opening() wakes one with
  // cancel_one(). Single-threaded, so no lost wake-up.
  asio::steady_timer opening_gate_{ctx_, Clock::time_point::max()};
  std::thread thread_;
};

}  // namespace duplex::loadgen
