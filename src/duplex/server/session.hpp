// Session: one client connection, from the first byte to close. Sniffs raw vs framed, then reads
// like the tutorial's loop: read -> decode -> service -> encode -> (outbox) -> write.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "duplex/core/limits.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/auth.hpp"
#include "duplex/services/exec.hpp"

namespace duplex::server {

/// The exec service's settings (`duplex serve --exec ...`).
struct ExecSettings {
  bool enabled = false;            // framed EXEC_START after AUTH
  bool raw = false;                // --raw-exec: raw connections run each chunk as a command
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
  std::string agent;                        // sent in Welcome
  std::atomic<std::size_t> live{0};         // open client connections
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};   // refused over max_connections
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopping{false};
  ExecSettings exec;
  CommandSlots commands;
  std::atomic<std::uint64_t> commands_started{0};
  /// Called from a worker thread when `stopping` is set and the last session ended.
  std::function<void()> on_drained;
};

/// What the server knows of one open connection; lives in the session's coroutine frame.
struct SessionEntry {
  std::uint64_t id = 0;
  std::string peer;
  std::string mode = "new";                 // new | raw | framed
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point last_read;  // pushed forward by every read
  bool idle_expired = false;                         // set by the worker's idle sweep
  bool busy = false;                                 // a command runs: not idle while it does
  std::uint64_t bytes_in = 0, bytes_out = 0;
  net::AnyStream* stream = nullptr;
};

/// One event-loop thread and the sessions it runs. `sessions` is touched only on that thread.
struct Worker {
  asio::io_context* ctx = nullptr;
  std::list<SessionEntry*> sessions;
  /// Closes every session's socket; their coroutines then end on their own. Run on this thread.
  void close_all() noexcept;
  /// Every `period`, ends sessions that have read nothing for `timeout`: their pending read is
  /// cancelled (a framed client is then told why); one still there a period later is closed.
  /// One sweep per thread instead of a timer per connection keeps idle connections cheap.
  awaitable<void> idle_sweep(std::chrono::milliseconds timeout);
};

/// Serves one accepted connection until it ends. Never throws for anything a peer can do.
awaitable<void> run_session(net::AnyStream stream, ServerState& state, Worker& worker);

/// Refuses a connection over the limit: a framed client (first byte NUL) gets an ERROR frame
/// (too_many_connections), anyone else is closed at once.
awaitable<void> reject_session(net::AnyStream stream);

}  // namespace duplex::server
