// Session: one client connection, from the first byte to close. Sniffs raw vs framed, then reads
// like the tutorial's loop: read -> decode -> service -> encode -> (outbox) -> write.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "duplex/core/limits.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/chunk.hpp"
#include "duplex/server/state.hpp"

namespace duplex::server {

struct Worker;
class ProxiedClient;

/// What a session knows of the listener that accepted it (decided once, when it was bound).
struct ListenerTraits {
  bool tls_only = false;  // a tls:// listener, or --tls-only: plaintext clients are refused
  /// Bound to 127.0.0.0/8, ::1 or a Unix socket, judged from the bound socket's own address
  /// (never from the name it was given): only such a listener serves exec without TLS.
  bool loopback = false;
  /// This connection comes from a --trusted-proxy (decided at accept from the real peer): it
  /// opens with a PROXY header, read before anything else (server/proxy.hpp).
  bool from_trusted_proxy = false;
  /// The listener's bound URL, for stats (shared: a listener closed by a reload may go first).
  std::shared_ptr<const std::string> url;
};

/// What the server knows of one open connection; lives in its Session.
struct SessionEntry {
  std::uint64_t id = 0;
  /// A string literal: new | [tls+]raw | [tls+]raw-exec | [tls+]framed | tls | tls-refused |
  /// plaintext-refused | proxy-refused.
  std::string_view mode = "new";
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point last_read;  // pushed forward by every read
  bool idle_expired = false;                        // set by the worker's idle sweep
  bool busy = false;                                // a command runs: not idle while it does
  /// From accept until the protocol is settled (raw: the first byte; TLS: the handshake;
  /// framed: WELCOME, and again from AUTH to AUTH_OK): such connections are capped
  /// (Limits::max_unauthenticated, the oldest dropped first) and held to Limits::auth_deadline.
  bool pending = true;
  bool authenticated = false;  // (the bools together: every idle connection keeps an entry)
  std::uint64_t bytes_in = 0, bytes_out = 0;
  net::Stream* stream = nullptr;  // the outermost stream (the TLS one once TLS is up)
  ListenerTraits listener;
  /// The limits and exec settings this session runs under: the snapshot in force when it was
  /// accepted (a reload affects new connections only).
  std::shared_ptr<const Settings> settings;
  /// Where a pending session is counted (null in tests that build an entry by hand), the key it
  /// has there, and its worker (the early drop closes it there).
  PendingSessions* pending_set = nullptr;
  std::uint64_t pending_key = 0;
  Worker* worker = nullptr;
  /// When set (not max), the worker's sweep closes the session at this time: the end of the
  /// TLS handshake / HELLO / AUTH phase (Limits::auth_deadline), cleared once it is done.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::string identity;  // how the client authenticated ("token", "uid 1000", "key SHA256:…")
  /// For stats: the service in use when it is not the mode's own (a string literal: "exec",
  /// "stats"), and the running command as the exec service shows it (owned there; empty: none).
  const char* service = nullptr;
  std::string_view command;

  /// The peer's address, as its stream read it at accept (not copied: every idle connection
  /// would pay for the copy). Empty without a stream (tests that build an entry by hand).
  std::string_view peer() const noexcept {
    return stream != nullptr ? std::string_view(stream->peer().address) : std::string_view();
  }
};

/// One event-loop thread and the sessions it runs. `sessions` is touched only on that thread.
struct Worker {
  asio::io_context* ctx = nullptr;
  std::list<SessionEntry*> sessions;
  /// Closes every session's socket; their coroutines then end on their own. Run on this thread.
  void close_all() noexcept;
  /// Ends sessions that have read nothing for `timeout` (zero: never): their pending read is
  /// cancelled (a framed client is then told why); one still there a sweep later is closed.
  /// Closes sessions past their SessionEntry::deadline. One sweep per thread instead of a timer
  /// per connection keeps idle connections cheap.
  awaitable<void> idle_sweep(std::chrono::milliseconds timeout, std::chrono::milliseconds deadline);
  /// The same, with --idle-timeout and --auth-timeout read from `settings` at every sweep: after
  /// a reload the new idle timeout applies to every connection (a deadline, to new ones only).
  awaitable<void> idle_sweep(const SettingsCell& settings);
  /// One sweep of idle_sweep's at `now` (`timeout` zero: no idle timeout). This thread.
  void sweep(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout);
};

/// The session's protocol is settled (see SessionEntry::pending): it leaves the pending count.
/// Idempotent; called on the session's thread.
void settle(SessionEntry& entry) noexcept;
/// The session is pending again (a framed client began AUTH): counted, and capped, as a new
/// connection is (the newest pending one, so the last to be dropped). Idempotent; the session's
/// thread.
void unsettle(SessionEntry& entry);

/// One connection and all it holds, on the heap: the coroutines serving it refer to it, and a
/// parked raw session owns it outright (raw_session.hpp), so that an idle connection need keep no
/// coroutine frame. Registered with its worker from construction; its destruction ends the
/// session (closes the stream, unregisters, counts its bytes, gives back its address's place).
/// The worker's thread only.
struct Session {
  Session(std::unique_ptr<net::Stream> s, ServerState& st, Worker& w, ListenerTraits listener,
          std::shared_ptr<const Settings> settings);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::unique_ptr<net::Stream> stream;
  SessionEntry entry;
  ServerState& state;
  std::list<SessionEntry*>::iterator registered;
  /// Holds one of its address's --max-connections-per-address places (key: the peer's
  /// client_key, never replaced for such a connection, which is not from a trusted proxy).
  bool counted = false;
  /// Behind a trusted balancer: the place its client holds (server/proxy.hpp).
  std::unique_ptr<ProxiedClient> proxied;
  /// The protocols read into it (chunk.hpp); here, for the whole session.
  WaitBuffer wait;
};

/// Starts serving an accepted connection on `worker`'s thread (as run_session does), the session
/// ending on its own. A raw connection over a plain socket then waits for its next bytes parked,
/// with no coroutine frame (raw_session.hpp). `counted`: see Session::counted.
void start_session(std::unique_ptr<net::Stream> stream, ServerState& state, Worker& worker,
                   ListenerTraits listener, std::shared_ptr<const Settings> settings, bool counted);

/// Serves one accepted connection until it ends (never parked: its end is this coroutine's). Never
/// throws for anything a peer can do. `settings`: the snapshot the connection was admitted under
/// (its trust in a balancer was judged by it, so a reload in between cannot split the two); null:
/// the one in force now.
awaitable<void> run_session(std::unique_ptr<net::Stream> stream, ServerState& state, Worker& worker,
                            ListenerTraits listener,
                            std::shared_ptr<const Settings> settings = nullptr);

}  // namespace duplex::server
