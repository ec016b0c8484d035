// CommandSlots: how many commands run at once, per server and per client, and a fair bounded
// queue for the ones that must wait their turn. Shared by every worker thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::services {

/// The numbers CommandSlots enforces (ExecSettings' four limits).
struct SlotLimits {
  std::size_t max_commands = 64;            // running at once on this server
  std::size_t max_commands_per_client = 8;  // running at once for one client
  std::size_t max_queued_per_client = 64;   // waiting for a slot, per client
  std::chrono::milliseconds max_queue_wait{30'000};
};

class CommandSlots;

/// One running command's place. Releases it when destroyed, from any thread; the oldest waiter
/// that may use it is then woken on its own executor. Movable; a default one holds nothing.
class CommandSlot {
 public:
  CommandSlot() = default;
  CommandSlot(CommandSlot&& o) noexcept
      : shared_(std::move(o.shared_)), client_(std::exchange(o.client_, nullptr)) {}
  CommandSlot& operator=(CommandSlot&& o) noexcept;
  CommandSlot(const CommandSlot&) = delete;
  CommandSlot& operator=(const CommandSlot&) = delete;
  ~CommandSlot() { release(); }

  explicit operator bool() const noexcept { return client_ != nullptr; }
  /// Gives the slot back now (idempotent).
  void release() noexcept;

 private:
  friend class CommandSlots;
  struct Shared;
  struct Client;
  CommandSlot(std::shared_ptr<Shared> shared, Client* client) noexcept
      : shared_(std::move(shared)), client_(client) {}

  std::shared_ptr<Shared> shared_;
  Client* client_ = nullptr;  // owned by shared_, alive while it has a running command
};

/// Counts running commands per server and per client (`net::Peer::client_key`). A command over
/// a share waits in a FIFO queue per client; a freed server-wide slot goes to the oldest waiter
/// whose client is under its own share. Thread-safe.
class CommandSlots {
 public:
  CommandSlots();
  ~CommandSlots();
  CommandSlots(const CommandSlots&) = delete;
  CommandSlots& operator=(const CommandSlots&) = delete;

  /// Takes a slot for `client_key`, waiting in a fair FIFO queue while the client's (or the
  /// server's) share is used; fails with errc::limit_exceeded and a one-line detail past the
  /// queue limit or the wait limit. Completes on the caller's executor, which must not run
  /// handlers on two threads at once (one thread per io_context, or a strand). A cancelled
  /// wait (asio cancellation, or the `||` lost) leaves the queue and fails with
  /// operation_aborted.
  awaitable<Result<CommandSlot>> acquire(std::string client_key, const ExecSettings& s);
  /// The same with the numbers alone.
  awaitable<Result<CommandSlot>> acquire(std::string client_key, SlotLimits limits);

  /// A slot at once when one is free for `client_key` and nobody of its is waiting (acquire's
  /// own first step, without a coroutine); nullopt: wait for one with acquire().
  std::optional<CommandSlot> try_acquire(const std::string& client_key, const ExecSettings& s);
  /// The same with the numbers alone.
  std::optional<CommandSlot> try_acquire(const std::string& client_key, SlotLimits limits);
  /// Commands holding a slot now.
  std::size_t running() const;
  /// Commands waiting for one now.
  std::size_t queued() const;

 private:
  std::shared_ptr<CommandSlot::Shared> shared_;
};

}  // namespace duplex::services
