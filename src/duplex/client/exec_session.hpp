// Exec session: runs one remote command over a framed connection until it ends.
// AUTH, EXEC_START, then stdin, signals and window size out, stdout/stderr in, until EXIT.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "duplex/client/connection.hpp"
#include "duplex/client/exec_result.hpp"
#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

/// What to run, where, and how the local side behaves meanwhile.
struct ExecRequest {
  net::Endpoint endpoint;
  std::string token;  // proved (never sent) when the server asks; empty: the transport must do
  std::string token_source;  // where the token came from (ResolvedToken::source), for -v and
                             // for naming it when authentication fails
  wire::ExecStart start;     // sent as is (checked against the server's max_frame first)
  int stdin_fd = 0;  // forwarded as STDIN_DATA then STDIN_EOF; -1: STDIN_EOF at once (ssh -n)
  std::chrono::milliseconds connect_timeout{10'000};  // dial + handshake + AUTH; zero: no limit
  std::vector<int> forward_signals;  // each delivery is sent as SIGNAL{signo}; the session goes on
  std::vector<int> stop_signals;     // each ends the session here at once: we disconnect, the
                                     // server kills the command
  bool double_interrupt_stops = false;  // a SIGINT within 2 s of a forwarded one ends the session
  bool escapes = false;  // ssh's escapes on stdin (~. ends the session; client/escape.hpp): for a
                         // PTY session typed on a terminal
  std::string agent = "duplex";  // HELLO's agent string
  bool tls = false;              // --tls (or the endpoint is tls://)
  TrustOptions trust;            // for TLS: known_hosts, --fingerprint, client key
};

/// Where the command's output goes and how the local terminal is consulted. All hooks run on
/// the io_context's thread, one at a time; a hook may block (a blocking write to a slow stdout
/// stops us reading the socket, which is the backpressure the server relies on).
struct ExecHooks {
  /// Bytes from STDOUT_DATA. Returns false when they can no longer be written (EPIPE): the
  /// session then ends as a local SIGPIPE would end a local command (exit 141).
  std::function<bool(ByteView)> on_stdout;
  std::function<void(ByteView)> on_stderr;
  /// Our stdout when it is a pipe, else -1. Set, bulk STDOUT_DATA payloads on a plain socket go
  /// into it by splice(2), without passing through on_stdout (which still gets the others); a
  /// pipe whose reader has gone ends the session as on_stdout's false does.
  int stdout_pipe = -1;
  /// Called once EXEC_START is sent, before any output arrives (the shell enters raw mode here).
  std::function<void()> on_started;
  /// Set to send WINDOW_SIZE on SIGWINCH: returns the terminal's new size (nullopt: not sent).
  std::function<std::optional<wire::WindowSize>()> window_size;
};

/// A `window_size` hook that reads the size of the terminal on `fd` (for `shell` and `exec -t`).
std::function<std::optional<wire::WindowSize>()> window_size_of(int fd);

/// A framed connection past authentication, as exec and stats use it.
struct Authenticated {
  Connection conn;
  std::string identity;         // AUTH_OK's: how the server knows us
  std::uint32_t max_frame = 0;  // AUTH_OK's: the frame limit now we are authenticated
};

/// Dials req.endpoint (req.tls, req.trust) and authenticates: AUTH_START, then, when the server
/// asks, the token's challenge-response with req.token. On a Unix socket a server that is
/// neither us nor root is refused first. The rest of `req` is not used; there is no deadline
/// here (race one). Failures as run_exec reports them (auth_failed says only that).
awaitable<Result<Authenticated>> connect_and_authenticate(const ExecRequest& req);

/// Runs one command to its end. A session failure is a value (ExecResult::end); throws only
/// what it cannot turn into a result (bad_alloc, a signal number signal_set refuses).
/// Signals are never stuck behind stdin: STDIN_DATA is sent only within the server's STDIN_WINDOW
/// grants (so the server always has room to read what follows), SIGNAL frames go ahead of queued
/// STDIN_DATA, and a stop
/// signal or a second SIGINT ends the session at once, however full the connection is.
/// `req` and `hooks` must outlive the coroutine.
awaitable<ExecResult> run_exec(const ExecRequest& req, const ExecHooks& hooks);

}  // namespace duplex::client
