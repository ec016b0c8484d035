// The exec service's command: spawn, stream stdin/stdout/stderr, signals, limits, exit. The
// protocol around it (AUTH, EXEC_START...) is the exec session's (exec_session.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/proc/child.hpp"
#include "duplex/services/exec_settings.hpp"
#include "duplex/services/frame_sink.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::services {

/// Who asked for a command, told to it in its environment (as sshd sets SSH_CLIENT).
struct ExecOrigin {
  std::string client;    // DUPLEX_CLIENT: "127.0.0.1:54321", "[::1]:54321", "unix:uid=1000"
  std::string identity;  // DUPLEX_IDENTITY: how it authenticated ("token", "uid 1000", "key …")
  /// The peer's address as DUPLEX_CLIENT spells it, and the identity it authenticated as.
  static ExecOrigin of(const net::Peer& peer, std::string identity = {});
};

/// Whether a client-supplied variable name may reach a command under `allow` (exact names, or
/// prefixes written "LC_*"). LD_*, BASH_ENV, ENV and IFS never may: they make the dynamic
/// loader or the shell run code of the client's choosing before the command.
bool env_allowed(std::string_view name, const std::vector<std::string>& allow) noexcept;
/// The first variable of `req.env` that `policy` does not let through fails the request:
/// duplex::errc::exec_failed, "environment variable FOO is not allowed by this server (its
/// --env-allow)". Checked before a command is queued or started.
Status check_client_env(const wire::ExecStart& req, const ExecPolicy& policy);
/// An --env-allow list that names (or, as a pattern, matches) a variable that is never allowed
/// fails, naming it: refused when the server starts.
Status check_env_allow(const std::vector<std::string>& allow);

/// One running command. Created by start() (which spawns), driven by run() (which feeds its
/// stdin, streams its output to a FrameSink and ends with the EXIT), fed by the session's reader
/// through write_stdin()/close_stdin()/signal()/resize(). All on one executor.
///
/// Memory per command is bounded: one read buffer per output stream (kFirstRead, up to
/// kLargestRead while output comes in bulk), what the session's outbox holds (its byte bound
/// plus one frame), and at most kStdinQueue bytes of input waiting for the command to read it. A
/// command that writes faster than its client reads blocks on its full pipe; a client that writes
/// faster than its command reads waits in write_stdin().
class ExecCommand : public std::enable_shared_from_this<ExecCommand> {
 public:
  /// Client input held for a command that has not read it yet, in bytes. It is also the stdin
  /// window: run() grants it to the client in STDIN_WINDOW, then grants back what the command
  /// reads, so a client that keeps to its window never fills the queue, and the session's reader
  /// never stops: SIGNAL, WINDOW_SIZE and STDIN_EOF are read as soon as they arrive. A client
  /// that sends more than granted is served as before: beyond the queue the reader waits.
  static constexpr std::size_t kStdinQueue = 256 * 1024;

  /// Spawns the command, as policy.run_as when set (a server started as root), in an
  /// environment built from nothing (proc::account_environment, TERM for a pty, the client's
  /// variables that check_client_env lets through, DUPLEX_CLIENT and DUPLEX_IDENTITY from
  /// `origin`), in the account's home unless asked otherwise ("/" when the home cannot be
  /// entered). The error is a refused variable (duplex::errc, check_client_env), or
  /// proc::spawn's: the errno of execve (std::system_category), of chdir
  /// (proc::chdir_error_category()), of the switch to the account
  /// (proc::credentials_error_category()), or of setting up the child.
  static Result<std::shared_ptr<ExecCommand>> start(const asio::any_io_executor& ex,
                                                    const wire::ExecStart& req,
                                                    const ExecPolicy& policy,
                                                    const ExecOrigin& origin = {});
  ~ExecCommand();

  /// Output is read kFirstRead bytes at a time; a read that fills its buffer doubles the next
  /// one, up to the frame limit: bulk output travels in few large frames, a trickle in small ones.
  static constexpr std::size_t kFirstRead = 64 * 1024;
  /// The largest output frame we make, whatever the frame limit allows (and the stdout pipe's
  /// size we ask for): larger reads stop paying once a read costs more than its wake-up.
  static constexpr std::size_t kLargestRead = 1024 * 1024;

  /// Grants the stdin window (STDIN_WINDOW), feeds stdin, grants back what the command read, and
  /// streams output until both output streams end and the leader has exited;
  /// returns the EXIT for the caller to send once its own bookkeeping is done (so a client that
  /// starts its next command as soon as it reads EXIT never races it). No STDOUT_DATA or
  /// STDERR_DATA payload is larger than `max_payload` (the frame limit told to the client).
  awaitable<wire::Exit> run(FrameSink& out, std::size_t max_payload = kFirstRead);

  /// Queues as much of `data` for the command's stdin as fits without waiting; returns how much.
  std::size_t try_write_stdin(ByteView data);
  /// Queues `data` for the command's stdin, waiting while the queue is full. Input that arrives
  /// after the command ended, or after it closed its stdin, is dropped.
  awaitable<void> write_stdin(ByteView data);
  /// Queues the end of input without waiting (no more stdin is granted from here); false when the
  /// queue is closed.
  bool try_close_stdin();
  /// EOF on the command's stdin after the input queued before it (for a pty: the terminal's EOF
  /// character). Waits like write_stdin() when the queue is full.
  awaitable<void> close_stdin();
  /// Delivers a signal to the command's process group at once, ahead of queued input.
  void signal(int signo) noexcept;
  void resize(std::uint16_t rows, std::uint16_t cols) noexcept;
  /// Ends the command: SIGTERM to its group now, SIGKILL after the grace period.
  void terminate(wire::Exit::Limit why) noexcept;

  pid_t pid() const noexcept { return child_.pid(); }
  std::uint64_t bytes_out() const noexcept { return out_bytes_; }
  std::uint64_t bytes_err() const noexcept { return err_bytes_; }

 private:
  struct Private {};

 public:
  ExecCommand(Private, const asio::any_io_executor& ex, proc::Child child,
              const wire::ExecStart& req, const ExecPolicy& policy);

 private:
  awaitable<void> pump(asio::posix::stream_descriptor& from, wire::MsgType type,
                       std::uint64_t& count, FrameSink& out, std::size_t max_payload);
  awaitable<void> feed_stdin(FrameSink& out);
  awaitable<void> grant_stdin(FrameSink& out, std::size_t drained);
  bool stdin_fits(std::size_t n) const noexcept;
  void end_stdin() noexcept;
  awaitable<void> wait_exit();
  awaitable<void> watch_deadline(std::chrono::milliseconds timeout);
  void count_output(std::size_t n) noexcept;

  asio::any_io_executor ex_;
  proc::Child child_;
  bool pty_;
  ExecPolicy policy_;
  std::chrono::milliseconds timeout_;
  asio::posix::stream_descriptor stdin_, stdout_, stderr_, pidfd_;
  // Input in order, in pieces of at most 64 KiB; an eof error code marks the end of input. Bounded
  // in bytes (kStdinQueue, by stdin_fits()), not in pieces: a client may send small frames.
  asio::experimental::channel<void(std::error_code, Bytes)> stdin_queue_;
  std::size_t stdin_pending_ = 0;  // pieces queued and not yet written (or dropped)
  std::size_t stdin_bytes_ = 0;    // their bytes
  std::size_t stdin_freed_ = 0;    // bytes the command read and the client was not granted yet
  bool stdin_ended_ = false;       // STDIN_EOF seen: nothing more is granted
  // A token after each piece leaves the queue, for write_stdin() waiting for room.
  // (void(error_code) alone is ambiguous to Asio's channel_traits: hence the bool.)
  asio::experimental::channel<void(std::error_code, bool)> stdin_drained_;
  asio::steady_timer kill_timer_;
  proc::ExitStatus status_{};
  wire::Exit::Limit limit_ = wire::Exit::Limit::none;
  bool terminating_ = false;
  std::uint64_t out_bytes_ = 0, err_bytes_ = 0;
  std::chrono::steady_clock::time_point started_;
};

/// The EXIT for a command that could not be started: bad_cwd when its working directory failed,
/// else not_started; the code is the errno either way (docs/PROTOCOL.md), EPERM for a refusal
/// of our own (duplex::errc).
wire::Exit not_started_exit(const std::error_code& spawn_error) noexcept;

/// The seed's remote_server.py protocol for one received chunk: run it with /bin/sh -c, and
/// return its stdout followed by its stderr. A command with no output at all returns the line
/// "[no output; exit status N]\n", so that the seed's client (which waits for a reply) never hangs.
awaitable<Bytes> run_raw_command(std::string command, const ExecPolicy& policy,
                                 ExecOrigin origin = {});

}  // namespace duplex::services
