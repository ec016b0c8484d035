// What every thread of one server shares: limits, exec settings, counters, command slots.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "duplex/core/limits.hpp"
#include "duplex/server/auth.hpp"
#include "duplex/services/exec.hpp"

namespace duplex::server {

/// The exec service's settings (`duplex serve --exec ...`).
struct ExecSettings {
  bool enabled = false;  // framed EXEC_START after AUTH
  bool raw = false;      // --raw-exec: raw connections run each chunk as a command
  AuthPolicy auth;
  services::ExecPolicy policy;
  std::size_t max_commands = 64;            // running at once on this server
  std::size_t max_commands_per_client = 8;  // per peer address (TCP) or uid (Unix socket)
};

/// Counts running commands, per server and per client, so that limits are checked in one place.
class CommandSlots {
 public:
  /// Takes a slot for `client`; false (and nothing taken) when a limit is reached.
  bool acquire(const std::string& client, const ExecSettings& s, std::string& why);
  void release(const std::string& client);
  std::size_t running() const;

 private:
  mutable std::mutex mu_;
  std::size_t total_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;
};

/// State shared by every thread of one server. Everything mutable here is atomic or locked.
struct ServerState {
  Limits limits;
  std::string agent;                 // sent in Welcome
  std::atomic<std::size_t> live{0};  // open client connections
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};  // refused over max_connections
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopping{false};
  ExecSettings exec;
  CommandSlots commands;
  std::atomic<std::uint64_t> commands_started{0};
  /// Called from a worker thread when `stopping` is set and the last session ended.
  std::function<void()> on_drained;
};

}  // namespace duplex::server
