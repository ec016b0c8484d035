// CommandSlots: limits, FIFO and cross-client fairness, cancellation, and releases across threads.
#include "duplex/services/command_slots.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "duplex/core/errors.hpp"

namespace duplex::services {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

SlotLimits limits(std::size_t total, std::size_t per_client, std::size_t queue = 64,
                  std::chrono::milliseconds wait = 30s) {
  return SlotLimits{total, per_client, queue, wait};
}

// Runs every handler that is ready, including the ones those post, without blocking.
void drain(asio::io_context& io) {
  for (int i = 0; i < 1000; ++i) {
    io.restart();
    if (io.poll() == 0) return;
  }
  FAIL() << "the io_context never went idle";
}

// One acquire, started on `io`; `result` is set when it completes.
struct Probe {
  std::optional<Result<CommandSlot>> result;
  bool done() const { return result.has_value(); }
  bool granted() const { return done() && result->ok(); }
};

void start(asio::io_context& io, CommandSlots& slots, std::string key, SlotLimits l, Probe& p,
           std::vector<std::string>* order = nullptr, std::string name = {}) {
  asio::co_spawn(
      io,
      [&slots, key, l, &p, order, name]() -> awaitable<void> {
        auto r = co_await slots.acquire(key, l);
        if (order && r) order->push_back(name);
        p.result.emplace(std::move(r));
      },
      asio::detached);
}

CommandSlot take_now(asio::io_context& io, CommandSlots& slots, const std::string& key,
                     SlotLimits l) {
  Probe p;
  start(io, slots, key, l, p);
  drain(io);
  EXPECT_TRUE(p.granted()) << (p.done() ? p.result->message() : "still waiting");
  return p.granted() ? std::move(**p.result) : CommandSlot();
}

TEST(CommandSlots, TakesAFreeSlotAtOnceAndGivesItBackOnDestruction) {
  asio::io_context io;
  CommandSlots slots;
  {
    CommandSlot a = take_now(io, slots, "uid:1", limits(4, 2));
    EXPECT_TRUE(a);
    EXPECT_EQ(slots.running(), 1u);
    CommandSlot moved = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): a moved-from slot is empty by contract
    EXPECT_EQ(slots.running(), 1u);
  }
  EXPECT_EQ(slots.running(), 0u);
  EXPECT_EQ(slots.queued(), 0u);
}

// The session's fast path: a free slot without a coroutine; nothing over a share, and nothing
// ahead of a client's own queue (the waiter gets the freed slot, the newcomer waits its turn).
TEST(CommandSlots, TryAcquireTakesOnlyAFreeSlotAndOvertakesNoWaiter) {
  asio::io_context io;
  CommandSlots slots;
  auto a = slots.try_acquire("uid:1", limits(4, 1));
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(*a);
  EXPECT_EQ(slots.running(), 1u);
  EXPECT_FALSE(slots.try_acquire("uid:1", limits(4, 1)).has_value()) << "over its share";
  EXPECT_EQ(slots.running(), 1u);

  Probe waiter;
  start(io, slots, "uid:1", limits(4, 1), waiter);
  drain(io);
  EXPECT_FALSE(waiter.done());
  EXPECT_EQ(slots.queued(), 1u);
  a.reset();  // the freed slot goes to the waiter, not to whoever asks next
  EXPECT_FALSE(slots.try_acquire("uid:1", limits(4, 1)).has_value());
  drain(io);
  EXPECT_TRUE(waiter.granted());

  auto b = slots.try_acquire("uid:2", limits(2, 2));
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(slots.try_acquire("uid:3", limits(2, 2)).has_value()) << "the server is full";
  EXPECT_EQ(slots.running(), 2u);
  EXPECT_EQ(slots.queued(), 0u);
}

TEST(CommandSlots, WaitersOfOneClientRunInArrivalOrder) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(64, 1);
  CommandSlot held = take_now(io, slots, "c", l);
  std::vector<std::string> order;
  std::array<Probe, 4> probes;
  for (std::size_t i = 0; i < probes.size(); ++i)
    start(io, slots, "c", l, probes[i], &order, std::to_string(i));
  drain(io);
  EXPECT_EQ(slots.queued(), 4u);
  for (auto& p : probes)
    EXPECT_FALSE(p.done());

  held.release();
  for (std::size_t i = 0; i < probes.size(); ++i) {
    drain(io);
    ASSERT_TRUE(probes[i].granted()) << i;
    for (std::size_t j = i + 1; j < probes.size(); ++j)
      EXPECT_FALSE(probes[j].done()) << j;
    EXPECT_EQ(slots.running(), 1u);
    (*probes[i].result)->release();
  }
  drain(io);
  EXPECT_EQ(order, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(slots.running(), 0u);
  EXPECT_EQ(slots.queued(), 0u);
}

TEST(CommandSlots, FreedServerSlotGoesToOldestWaiterUnderItsOwnShare) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(2, 1);
  CommandSlot a0 = take_now(io, slots, "a", l);
  CommandSlot b0 = take_now(io, slots, "b", l);
  std::vector<std::string> order;
  Probe a1, a2, c1;
  start(io, slots, "a", l, a1, &order, "a1");  // "a" is at its share
  start(io, slots, "a", l, a2, &order, "a2");
  start(io, slots, "c", l, c1, &order, "c1");  // "c" is under its share; the server is full
  drain(io);
  EXPECT_EQ(slots.queued(), 3u);

  // A server-wide slot frees up: a1 and a2 are older but "a" still runs its share, so c1 runs.
  b0.release();
  drain(io);
  EXPECT_TRUE(c1.granted());
  EXPECT_FALSE(a1.done());
  EXPECT_FALSE(a2.done());

  // "a" frees its own slot: its oldest waiter runs next, then the one after it.
  a0.release();
  drain(io);
  EXPECT_TRUE(a1.granted());
  EXPECT_FALSE(a2.done());
  (*a1.result)->release();
  drain(io);
  EXPECT_TRUE(a2.granted());
  EXPECT_EQ(order, (std::vector<std::string>{"c1", "a1", "a2"}));
  EXPECT_EQ(slots.running(), 2u);
}

TEST(CommandSlots, NewcomerDoesNotOvertakeItsOwnClientsQueue) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(1, 1);
  CommandSlot held = take_now(io, slots, "a", l);
  std::vector<std::string> order;
  Probe first, second;
  start(io, slots, "a", l, first, &order, "first");
  drain(io);
  held.release();  // grants `first`; its wake-up is posted but has not run yet
  start(io, slots, "a", l, second, &order, "second");
  drain(io);
  EXPECT_TRUE(first.granted());
  EXPECT_FALSE(second.done());
  EXPECT_EQ(slots.queued(), 1u);
}

TEST(CommandSlots, QueueLimitRefusesAtOnceWithTheReason) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(64, 1, 2);
  CommandSlot held = take_now(io, slots, "uid:7", l);
  Probe w1, w2, refused;
  start(io, slots, "uid:7", l, w1);
  start(io, slots, "uid:7", l, w2);
  start(io, slots, "uid:7", l, refused);
  drain(io);
  EXPECT_FALSE(w1.done());
  EXPECT_FALSE(w2.done());
  ASSERT_TRUE(refused.done());
  ASSERT_FALSE(refused.result->ok());
  EXPECT_EQ(refused.result->error(), make_error_code(errc::limit_exceeded));
  EXPECT_EQ(refused.result->message(),
            "command queue full: 1 command running and 2 waiting for this client (queue limit 2)");
  // Another client is not affected by this one's queue.
  CommandSlot other = take_now(io, slots, "uid:8", l);
  EXPECT_TRUE(other);
}

TEST(CommandSlots, ZeroQueueRefusesOverTheShareAtOnce) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(2, 1, 0);
  CommandSlot held = take_now(io, slots, "k", l);
  Probe client_full;
  start(io, slots, "k", l, client_full);
  drain(io);
  ASSERT_TRUE(client_full.done());
  EXPECT_EQ(client_full.result->error(), make_error_code(errc::limit_exceeded));
  EXPECT_EQ(client_full.result->message(), "too many commands running for this client (limit 1)");

  CommandSlot other = take_now(io, slots, "other", l);
  Probe server_full;
  start(io, slots, "third", l, server_full);
  drain(io);
  ASSERT_TRUE(server_full.done());
  EXPECT_EQ(server_full.result->message(), "too many commands running on this server (limit 2)");
  EXPECT_EQ(slots.queued(), 0u);
}

TEST(CommandSlots, WaitLimitRefusesWithHowLongItWaited) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(64, 2, 64, 50ms);
  CommandSlot h1 = take_now(io, slots, "k", l);
  CommandSlot h2 = take_now(io, slots, "k", l);
  Probe late;
  const auto t0 = std::chrono::steady_clock::now();
  start(io, slots, "k", l, late);
  io.restart();
  while (!late.done() && std::chrono::steady_clock::now() - t0 < 5s)
    io.run_one_for(100ms);
  ASSERT_TRUE(late.done());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  ASSERT_FALSE(late.result->ok());
  EXPECT_EQ(late.result->error(), make_error_code(errc::limit_exceeded));
  EXPECT_EQ(late.result->message(),
            "command queue wait limit (0.05 s) reached; 2 commands running for this client");
  EXPECT_EQ(slots.queued(), 0u);
  EXPECT_EQ(slots.running(), 2u);
}

TEST(CommandSlots, WaitLimitOnAFullServerSaysSo) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(1, 8, 64, 20ms);
  CommandSlot other = take_now(io, slots, "other", l);
  Probe late;
  start(io, slots, "me", l, late);
  io.restart();
  const auto t0 = std::chrono::steady_clock::now();
  while (!late.done() && std::chrono::steady_clock::now() - t0 < 5s)
    io.run_one_for(100ms);
  ASSERT_TRUE(late.done());
  EXPECT_EQ(late.result->message(),
            "command queue wait limit (0.02 s) reached; 1 command running on this server "
            "(limit 1)");
}

TEST(CommandSlots, CancelledWaiterLeavesTheQueueAndHoldsNothing) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(64, 1);
  CommandSlot held = take_now(io, slots, "k", l);
  bool timer_won = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 10ms);
        auto r = co_await (slots.acquire("k", l) || t.async_wait(asio::use_awaitable));
        timer_won = r.index() == 1;
      },
      asio::detached);
  io.restart();
  const auto t0 = std::chrono::steady_clock::now();
  while (!timer_won && std::chrono::steady_clock::now() - t0 < 5s)
    io.run_one_for(100ms);
  ASSERT_TRUE(timer_won);
  drain(io);
  EXPECT_EQ(slots.queued(), 0u);
  EXPECT_EQ(slots.running(), 1u);
  held.release();
  drain(io);
  EXPECT_EQ(slots.running(), 0u);
  // Nobody phantom stands in the queue: the next command of this client runs at once.
  CommandSlot next = take_now(io, slots, "k", l);
  EXPECT_TRUE(next);
}

TEST(CommandSlots, GrantRacingACancelIsGivenBack) {
  asio::io_context io;
  CommandSlots slots;
  const auto l = limits(64, 1);
  CommandSlot held = take_now(io, slots, "k", l);
  asio::cancellation_signal cancel;
  Probe p;
  asio::co_spawn(
      io, [&]() -> awaitable<void> { p.result.emplace(co_await slots.acquire("k", l)); },
      asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  drain(io);
  EXPECT_EQ(slots.queued(), 1u);
  held.release();                                  // the slot is granted to the waiter...
  cancel.emit(asio::cancellation_type::terminal);  // ...which is cancelled before it wakes
  drain(io);
  ASSERT_TRUE(p.done());
  if (p.result->ok()) p.result.reset();  // the caller drops a slot it no longer wants
  EXPECT_EQ(slots.running(), 0u);
  EXPECT_EQ(slots.queued(), 0u);
}

TEST(CommandSlots, WaiterDestroyedWithItsIoContextLeavesNothingBehind) {
  CommandSlots slots;
  const auto l = limits(64, 1);
  CommandSlot held;
  {
    asio::io_context io;
    held = take_now(io, slots, "k", l);
    Probe p1, p2;
    start(io, slots, "k", l, p1);
    start(io, slots, "k", l, p2);
    drain(io);
    EXPECT_EQ(slots.queued(), 2u);
    held.release();  // p1 is granted; its wake-up is never run
    EXPECT_EQ(slots.running(), 1u);
  }  // the io_context destroys both suspended coroutines
  EXPECT_EQ(slots.queued(), 0u);
  EXPECT_EQ(slots.running(), 0u);
}

TEST(CommandSlots, ReleaseOnOneThreadWakesAWaiterOnAnother) {
  CommandSlots slots;
  const auto l = limits(64, 1);
  asio::io_context a, b;
  auto wa = asio::make_work_guard(a);
  auto wb = asio::make_work_guard(b);
  std::thread ta([&] { a.run(); });
  std::thread tb([&] { b.run(); });

  std::promise<CommandSlot> held;
  asio::co_spawn(
      a,
      [&]() -> awaitable<void> {
        auto r = co_await slots.acquire("k", l);
        held.set_value(r ? std::move(*r) : CommandSlot());
      },
      asio::detached);
  CommandSlot slot = held.get_future().get();
  ASSERT_TRUE(slot);

  std::promise<std::thread::id> woke_on;
  asio::co_spawn(
      b,
      [&]() -> awaitable<void> {
        auto r = co_await slots.acquire("k", l);
        woke_on.set_value(r ? std::this_thread::get_id() : std::thread::id());
      },
      asio::detached);
  const auto t0 = std::chrono::steady_clock::now();
  while (slots.queued() == 0 && std::chrono::steady_clock::now() - t0 < 5s)
    std::this_thread::yield();
  ASSERT_EQ(slots.queued(), 1u);

  asio::post(a, [&] { slot.release(); });
  auto f = woke_on.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), tb.get_id());
  wa.reset();
  wb.reset();
  ta.join();
  tb.join();
  EXPECT_EQ(slots.running(), 0u);  // the woken coroutine's slot went with its frame
}

TEST(CommandSlots, ManyWaitersOnTwoThreadsNeverExceedTheShares) {
  CommandSlots slots;
  const auto l = limits(3, 2, 1000);
  constexpr int kPerThread = 40;
  constexpr int kRounds = 10;
  std::atomic<int> total{0}, max_total{0}, granted{0}, refused{0};
  std::map<std::string, std::atomic<int>> per_client;
  std::map<std::string, std::atomic<int>> max_per_client;
  for (const char* k : {"x", "y"}) {
    per_client[k] = 0;
    max_per_client[k] = 0;
  }
  auto bump_max = [](std::atomic<int>& m, int v) {
    for (int cur = m.load(); v > cur && !m.compare_exchange_weak(cur, v);) {
    }
  };
  auto worker = [&](std::string key) -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < kRounds; ++i) {
      auto r = co_await slots.acquire(key, l);
      if (!r) {
        ++refused;
        continue;
      }
      ++granted;
      bump_max(max_total, ++total);
      bump_max(max_per_client.at(key), ++per_client.at(key));
      co_await asio::post(ex, asio::use_awaitable);  // hold it across a yield
      --per_client.at(key);
      --total;
    }
  };
  asio::io_context a, b;
  for (int i = 0; i < kPerThread; ++i) {
    asio::co_spawn(a, worker(i % 2 ? "x" : "y"), asio::detached);
    asio::co_spawn(b, worker(i % 2 ? "y" : "x"), asio::detached);
  }
  std::thread ta([&] { a.run_for(20s); });
  std::thread tb([&] { b.run_for(20s); });
  ta.join();
  tb.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(granted.load(), 2 * kPerThread * kRounds);
  EXPECT_LE(max_total.load(), 3);
  EXPECT_LE(max_per_client["x"].load(), 2);
  EXPECT_LE(max_per_client["y"].load(), 2);
  EXPECT_EQ(slots.running(), 0u);
  EXPECT_EQ(slots.queued(), 0u);
}

}  // namespace
}  // namespace duplex::services
