// CommandSlots: counts and a fair queue under one lock; waiters are woken on their own executor.
#include "duplex/services/command_slots.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"

namespace duplex::services {
namespace {

// One command waiting for a slot. Its timer runs on the waiting coroutine's executor: it fires at
// the wait limit, and a grant from another thread cancels it (posted to that executor) to wake
// the coroutine early.
struct Waiter {
  Waiter(std::uint64_t s, const SlotLimits& l, const asio::any_io_executor& ex)
      : seq(s), limits(l), timer(ex) {}
  std::uint64_t seq;
  SlotLimits limits;
  asio::steady_timer timer;
  bool granted = false;  // under Shared::mu: a slot was taken on its behalf
};
using WaiterPtr = std::shared_ptr<Waiter>;

// A wait limit longer than this is "no limit" (and keeps the timer's arithmetic in range).
constexpr std::chrono::milliseconds kLongestWait = std::chrono::hours(24 * 365);

std::string seconds_text(std::chrono::milliseconds d) {
  return fmt::format("{:g} s", static_cast<double>(d.count()) / 1000.0);
}

std::string commands_text(std::size_t n) {
  return fmt::format("{} command{}", n, n == 1 ? "" : "s");
}

}  // namespace

struct CommandSlot::Client {
  explicit Client(std::string k) : key(std::move(k)) {}
  std::string key;
  std::size_t running = 0;
  std::deque<WaiterPtr> queue;            // oldest first
  std::optional<std::uint64_t> ready_at;  // its key in Shared::ready, if it is there
};

// Everything behind the lock. Held by CommandSlots and by every slot and waiter, so a slot
// released late (another thread, after the server's state is gone) still has somewhere to go.
struct CommandSlot::Shared {
  std::mutex mu;
  std::size_t total = 0;    // running
  std::size_t waiting = 0;  // queued
  std::uint64_t next_seq = 0;
  std::unordered_map<std::string, std::unique_ptr<Client>> clients;
  // Clients whose oldest waiter is under its client's share, by that waiter's arrival: the
  // first one gets the next server-wide slot. Invariant (outside grant()): nobody in here could
  // run now, so a newcomer with an empty queue may take a free slot without overtaking anyone.
  std::map<std::uint64_t, Client*> ready;

  Client& client(const std::string& key) {
    auto& c = clients[key];
    if (!c) c = std::make_unique<Client>(key);
    return *c;
  }

  void forget_if_idle(Client& c) {
    if (c.running == 0 && c.queue.empty()) clients.erase(c.key);  // destroys c
  }

  // Puts `c` in `ready` exactly when its oldest waiter may run as far as its client is concerned.
  void refresh(Client& c) {
    if (c.ready_at) ready.erase(*c.ready_at);
    c.ready_at.reset();
    if (!c.queue.empty() && c.running < c.queue.front()->limits.max_commands_per_client) {
      c.ready_at = c.queue.front()->seq;
      ready.emplace(*c.ready_at, &c);
    }
  }

  // Hands free slots to the oldest ready waiters; returns them, to be woken outside the lock.
  std::vector<WaiterPtr> grant() {
    std::vector<WaiterPtr> woken;
    while (!ready.empty()) {
      Client& c = *ready.begin()->second;
      WaiterPtr w = c.queue.front();
      if (total >= w->limits.max_commands) break;
      c.queue.pop_front();
      --waiting;
      ++c.running;
      ++total;
      w->granted = true;
      refresh(c);
      woken.push_back(std::move(w));
    }
    return woken;
  }

  void release(Client& c) {
    --c.running;
    --total;
    refresh(c);
    forget_if_idle(c);
  }

  void remove(Client& c, const WaiterPtr& w) {
    auto it = std::find(c.queue.begin(), c.queue.end(), w);
    if (it == c.queue.end()) return;
    c.queue.erase(it);
    --waiting;
    refresh(c);
    forget_if_idle(c);
  }
};

namespace {

// Wakes each granted waiter on its own executor (its timer is only touched there).
void wake(std::vector<WaiterPtr> woken) {
  for (auto& w : woken) {
    auto ex = w->timer.get_executor();
    asio::post(ex, [w = std::move(w)] { w->timer.cancel(); });
  }
}

// Why a command is refused at once: with queueing off, the limit it ran into (the words used
// before there was a queue); else the full queue.
std::string refusal(std::size_t running, std::size_t queued, const SlotLimits& limits) {
  if (limits.max_queued_per_client > 0)
    return fmt::format(
        "command queue full: {} running and {} waiting for this client "
        "(queue limit {})",
        commands_text(running), queued, limits.max_queued_per_client);
  if (running >= limits.max_commands_per_client)
    return fmt::format("too many commands running for this client (limit {})",
                       limits.max_commands_per_client);
  return fmt::format("too many commands running on this server (limit {})", limits.max_commands);
}

}  // namespace

CommandSlot& CommandSlot::operator=(CommandSlot&& o) noexcept {
  if (this != &o) {
    release();
    shared_ = std::move(o.shared_);
    client_ = std::exchange(o.client_, nullptr);
  }
  return *this;
}

void CommandSlot::release() noexcept {
  if (!client_) return;
  std::vector<WaiterPtr> woken;
  {
    std::lock_guard lock(shared_->mu);
    shared_->release(*client_);
    woken = shared_->grant();
  }
  client_ = nullptr;
  shared_.reset();
  wake(std::move(woken));
}

CommandSlots::CommandSlots() : shared_(std::make_shared<CommandSlot::Shared>()) {}
CommandSlots::~CommandSlots() = default;

std::optional<CommandSlot> CommandSlots::try_acquire(const std::string& client_key,
                                                     const ExecSettings& s) {
  return try_acquire(client_key, SlotLimits{s.max_commands, s.max_commands_per_client,
                                            s.max_queued_per_client, s.max_queue_wait});
}

std::optional<CommandSlot> CommandSlots::try_acquire(const std::string& client_key,
                                                     SlotLimits limits) {
  std::lock_guard lock(shared_->mu);
  CommandSlot::Client& c = shared_->client(client_key);
  // As in acquire: nobody ready is waiting (see Shared::ready), so this overtakes no one.
  if (c.queue.empty() && c.running < limits.max_commands_per_client &&
      shared_->total < limits.max_commands) {
    ++c.running;
    ++shared_->total;
    return CommandSlot(shared_, &c);
  }
  shared_->forget_if_idle(c);
  return std::nullopt;
}

std::size_t CommandSlots::running() const {
  std::lock_guard lock(shared_->mu);
  return shared_->total;
}

std::size_t CommandSlots::queued() const {
  std::lock_guard lock(shared_->mu);
  return shared_->waiting;
}

awaitable<Result<CommandSlot>> CommandSlots::acquire(std::string client_key,
                                                     const ExecSettings& s) {
  return acquire(std::move(client_key), SlotLimits{s.max_commands, s.max_commands_per_client,
                                                   s.max_queued_per_client, s.max_queue_wait});
}

awaitable<Result<CommandSlot>> CommandSlots::acquire(std::string client_key, SlotLimits limits) {
  using Client = CommandSlot::Client;
  auto shared = shared_;
  auto ex = co_await asio::this_coro::executor;
  WaiterPtr w;
  Client* c = nullptr;
  {
    std::lock_guard lock(shared->mu);
    c = &shared->client(client_key);
    // Nobody ready is waiting (see Shared::ready), so taking a free slot overtakes no one.
    if (c->queue.empty() && c->running < limits.max_commands_per_client &&
        shared->total < limits.max_commands) {
      ++c->running;
      ++shared->total;
      co_return CommandSlot(shared, c);
    }
    if (c->queue.size() >= limits.max_queued_per_client) {
      auto f = fail(errc::limit_exceeded, refusal(c->running, c->queue.size(), limits));
      shared->forget_if_idle(*c);
      co_return f;
    }
    w = std::make_shared<Waiter>(shared->next_seq++, limits, ex);
    w->timer.expires_after(std::min(limits.max_queue_wait, kLongestWait));
    c->queue.push_back(w);
    ++shared->waiting;
    shared->refresh(*c);
  }

  // If this coroutine is destroyed while it waits, leave the queue or give back what was granted.
  struct Ticket {
    std::shared_ptr<CommandSlot::Shared> shared;
    WaiterPtr w;
    Client* c;
    bool settled = false;
    ~Ticket() {
      if (settled) return;
      std::vector<WaiterPtr> woken;
      {
        std::lock_guard lock(shared->mu);
        if (w->granted)
          shared->release(*c);
        else
          shared->remove(*c, w);
        woken = shared->grant();
      }
      wake(std::move(woken));
    }
  } ticket{shared, w, c};

  auto [ec] = co_await w->timer.async_wait(net::use_tuple);

  std::vector<WaiterPtr> woken;
  Result<CommandSlot> result = CommandSlot();
  {
    std::lock_guard lock(shared->mu);
    ticket.settled = true;
    if (w->granted) {
      result = CommandSlot(shared, c);  // even if cancelled meanwhile: the caller drops it
    } else {
      const std::size_t running = c->running;
      const bool client_full = running >= limits.max_commands_per_client;
      const std::size_t server_running = shared->total;
      shared->remove(*c, w);
      woken = shared->grant();
      if (ec) {
        result = fail(asio::error::operation_aborted, "cancelled while waiting for a command slot");
      } else {
        const std::string where =
            client_full ? fmt::format("{} running for this client", commands_text(running))
                        : fmt::format("{} running on this server (limit {})",
                                      commands_text(server_running), limits.max_commands);
        result =
            fail(errc::limit_exceeded, fmt::format("command queue wait limit ({}) reached; {}",
                                                   seconds_text(limits.max_queue_wait), where));
      }
    }
  }
  wake(std::move(woken));
  co_return result;
}

}  // namespace duplex::services
