// The exec service: one remote command — spawn, stream stdin/stdout/stderr, signals, limits, exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/proc/child.hpp"
#include "duplex/services/service.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::services {

/// Server-side rules for every command (from `duplex serve` flags).
struct ExecPolicy {
  std::chrono::milliseconds max_timeout{0};    // cap on a command's run time; 0: none
  std::uint64_t max_output = 0;                // stdout + stderr bytes; 0: unlimited
  std::chrono::milliseconds kill_grace{1000};  // SIGTERM to SIGKILL
  std::string default_cwd;                     // empty: the account's home directory
};

/// One running command. Created by start() (which spawns), driven by run() (which streams its
/// output to a FrameSink and ends with the EXIT frame), fed by the session's reader through
/// write_stdin()/close_stdin()/signal()/resize(). All on one executor.
///
/// Memory per command is bounded: one 64 KiB read buffer per output stream, and what the
/// session's outbox holds (out_queue_frames frames); a command that writes faster than its client
/// reads blocks on its full pipe.
class ExecCommand : public std::enable_shared_from_this<ExecCommand> {
 public:
  /// Spawns the command. On failure `not_started` is filled with the EXIT to send (code = the
  /// errno of the failed start) and nullptr is returned.
  static std::shared_ptr<ExecCommand> start(const asio::any_io_executor& ex,
                                            const wire::ExecStart& req, const ExecPolicy& policy,
                                            wire::Exit& not_started, std::string& why);
  ~ExecCommand();

  /// Streams output until both streams end and the leader has exited; returns the EXIT for the
  /// caller to send once its own bookkeeping is done (so a client that starts its next command
  /// as soon as it reads EXIT never races it).
  awaitable<wire::Exit> run(FrameSink& out);

  /// Writes client input to the command's stdin; waits while its pipe is full.
  awaitable<void> write_stdin(Bytes data);
  /// EOF on the command's stdin (for a pty: the terminal's EOF character).
  void close_stdin() noexcept;
  /// Delivers a signal to the command's process group.
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
                       std::uint64_t& count, FrameSink& out);
  awaitable<void> wait_exit();
  awaitable<void> watch_deadline(std::chrono::milliseconds timeout);
  void count_output(std::size_t n) noexcept;

  asio::any_io_executor ex_;
  proc::Child child_;
  bool pty_;
  ExecPolicy policy_;
  std::chrono::milliseconds timeout_;
  asio::posix::stream_descriptor stdin_, stdout_, stderr_, pidfd_;
  asio::steady_timer kill_timer_;
  proc::ExitStatus status_{};
  wire::Exit::Limit limit_ = wire::Exit::Limit::none;
  bool terminating_ = false;
  std::uint64_t out_bytes_ = 0, err_bytes_ = 0;
  std::chrono::steady_clock::time_point started_;
};

/// The seed's remote_server.py protocol for one received chunk: run it with /bin/sh -c, and
/// return its stdout followed by its stderr. A command with no output at all returns the line
/// "[no output; exit status N]\n", so that the seed's client (which waits for a reply) never hangs.
awaitable<Bytes> run_raw_command(std::string command, const ExecPolicy& policy);

}  // namespace duplex::services
