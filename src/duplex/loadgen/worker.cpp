// Worker: the thread, the end of the run, the watchdog.
#include "duplex/loadgen/worker.hpp"

#include <exception>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace duplex::loadgen {
namespace {

using net::use_tuple;

// How often the watchdog looks for replies past the timeout: a tenth of a second is fine grained
// enough for timeouts of seconds, and costs nothing per message.
constexpr auto kWatchdogTick = std::chrono::milliseconds(100);
// After the end, connections still connecting (a dial has no timeout of its own) get this long.
constexpr auto kStopGrace = std::chrono::seconds(2);

}  // namespace

Worker::Worker(const Plan& plan, std::size_t connections_hint) : plan_(plan) {
  indexes_.reserve(connections_hint);
}

void Worker::start() {
  for (auto i : indexes_) {
    auto& s = slots_.emplace_back();
    s.index = i;
    s.timer = std::make_unique<asio::steady_timer>(ctx_);
    asio::co_spawn(ctx_, plan_.workload(*this, s), [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        error(ErrorKind::protocol, x.what());
      }
    });
  }
  asio::co_spawn(ctx_, watchdog(), asio::detached);
  end_timer_.expires_at(plan_.end);
  end_timer_.async_wait([this](std::error_code ec) {
    if (!ec) stop_here();
  });
  thread_ = std::thread([this] {
    ctx_.run();
    finished_at_ = Clock::now();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::stop() {
  asio::post(ctx_, [this] { stop_here(); });
}

void Worker::stop_here() {
  if (stopping_) return;
  stopping_ = true;
  stop_at_ = Clock::now();
  end_timer_.cancel();
  opening_gate_.cancel();
  for (auto& s : slots_) {
    s.timer->cancel();
    if (s.stream) s.stream->cancel();
  }
}

awaitable<void> Worker::watchdog() {
  asio::steady_timer tick(ctx_);
  const auto limit = std::chrono::duration_cast<Clock::duration>(opt().timeout);
  for (;;) {
    tick.expires_after(kWatchdogTick);
    co_await tick.async_wait(use_tuple);
    const auto now = Clock::now();
    if (stopping_) {
      // Whatever still runs after the grace (a dial that hangs) is abandoned with the loop.
      if (now - stop_at_ > kStopGrace) ctx_.stop();
      bool any = false;
      for (auto& s : slots_)
        any = any || s.stream || s.busy_since != Clock::time_point{};
      if (!any) co_return;
      continue;
    }
    for (auto& s : slots_) {
      if (s.busy_since == Clock::time_point{} || now - s.busy_since <= limit) continue;
      s.timed_out = true;
      s.busy_since = {};
      if (s.stream) s.stream->cancel();
    }
  }
}

awaitable<Result<client::Connection>> Worker::connect(Slot& s) {
  s.busy_since = Clock::now();
  auto c = co_await client::Connection::open(opt().endpoint, plan_.client);
  s.busy_since = {};
  if (c) {
    ++stats_.connects;
    const auto now = Clock::now();
    if (now >= plan_.measure_from && now <= plan_.end) ++stats_.window_connects;
  } else if (!stopping_) {
    error(ErrorKind::connect, c.message());
  }
  co_return c;
}

void Worker::busy(Slot& s, net::Stream* stream) {
  s.stream = stream;
  s.timed_out = false;
  s.busy_since = Clock::now();
}

void Worker::idle(Slot& s) {
  s.busy_since = {};
}

void Worker::done(Clock::time_point due, Clock::time_point finished, std::size_t payload_bytes) {
  stats_.live.fetch_add(1, std::memory_order_relaxed);
  if (due < plan_.measure_from || finished > plan_.end) return;
  ++stats_.messages;
  stats_.bytes_sent += payload_bytes;
  stats_.bytes_received += payload_bytes;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(finished - due).count();
  stats_.latency.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
}

void Worker::error(ErrorKind k, std::string_view detail) {
  stats_.error(k);
  auto& first = first_[static_cast<std::size_t>(k)];
  if (first.empty()) first = std::string(detail);
  spdlog::debug("{} error: {}", name_of(k), detail);
}

awaitable<void> Worker::enter_opening() {
  while (opening_ >= kMaxOpening && !stopping_)
    co_await opening_gate_.async_wait(use_tuple);
  ++opening_;
}

void Worker::leave_opening() {
  --opening_;
  opening_gate_.cancel_one();
}

awaitable<bool> Worker::sleep_until(Slot& s, Clock::time_point t) {
  if (stopping_) co_return false;
  s.timer->expires_at(t);
  co_await s.timer->async_wait(use_tuple);
  co_return !stopping_;
}

}  // namespace duplex::loadgen
