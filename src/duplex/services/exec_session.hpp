// The exec protocol of one framed session: authentication (AUTH, AUTH_START/AUTH_PROOF),
// EXEC_START, the command's input (STDIN_DATA, STDIN_EOF, SIGNAL, WINDOW_SIZE), its command slot,
// and one audit line per command.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "duplex/core/latency_histogram.hpp"
#include "duplex/core/limits.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/services/auth.hpp"
#include "duplex/services/command_slots.hpp"
#include "duplex/services/exec.hpp"
#include "duplex/services/exec_settings.hpp"
#include "duplex/services/penalty_box.hpp"
#include "duplex/services/service.hpp"

namespace duplex::services {

/// What every exec session of one server shares (every worker thread): read-only settings, the
/// command slots, a counter. The server owns them; they outlive every session.
struct ExecContext {
  const ExecSettings& settings;
  CommandSlots& slots;
  std::atomic<std::uint64_t>& commands_started;
  PenaltyBox& penalties;                      // failed authentications, per source address
  std::atomic<std::uint64_t>& auth_failures;  // counted for stats
  /// The frame limit once a client is authenticated (Limits::max_frame), told in AUTH_OK.
  std::uint32_t max_frame = Limits{}.max_frame;
  /// --metrics: each command's run time (null: not recorded).
  LatencyHistogram* command_duration = nullptr;
  /// Counted for stats: commands not started, or ended by a signal, a limit or a non-zero status.
  std::atomic<std::uint64_t>* commands_failed = nullptr;
};

/// One connection's exec service. handle() runs on the session's reader; run() runs beside it
/// for the session's life and takes each started command to its EXIT, one at a time.
class ExecSession final : public Service {
 public:
  /// A peer that goes silent this long after AUTH is probed (TCP keepalive) every
  /// kKeepaliveInterval; three unanswered probes end the session and its command.
  static constexpr std::chrono::seconds kKeepaliveIdle{10}, kKeepaliveInterval{5};

  ExecSession(ExecContext ctx, SessionContext& session);
  ~ExecSession() override;

  awaitable<Handled> handle(wire::MsgType type, ByteView payload) override;
  /// Runs the commands EXEC_START starts, each to its EXIT frame; returns after end().
  awaitable<void> run();
  /// The session is over (client gone, breach, shutdown): a running command is ended (SIGTERM,
  /// SIGKILL after the grace period) and reported with `why`. Idempotent.
  void end(wire::Exit::Limit why) noexcept;

 private:
  awaitable<Handled> on_auth(ByteView payload);
  awaitable<Handled> on_auth_start(ByteView payload);
  awaitable<Handled> on_auth_proof(ByteView payload);
  /// Refusals before any authentication: exec disabled, an unprotected channel, a penalised
  /// address, authentication already done or under way.
  Result<Next> may_authenticate(wire::MsgType type);
  awaitable<Handled> authenticated(Identity who);
  /// Logs the failure (never the token, K or a proof), counts it, feeds the penalty box, and
  /// returns the one answer every refused client gets.
  Failure auth_failure(std::string_view why);
  awaitable<Handled> on_exec_start(ByteView payload);
  awaitable<Handled> on_stdin(ByteView payload);
  awaitable<Handled> on_stdin_eof(ByteView payload);
  awaitable<Handled> on_signal(ByteView payload);
  awaitable<Handled> on_window_size(ByteView payload);
  awaitable<Next> send_exit(const wire::Exit& exit);
  void count_failure() noexcept;

  ExecContext ctx_;
  SessionContext& session_;
  std::optional<Identity> identity_;  // set by a successful authentication
  /// Between AUTH_CHALLENGE and AUTH_PROOF: the proof we expect.
  std::optional<wire::AuthBlock> expected_proof_;
  std::string audit_argv_;
  std::string shown_;  // the running command as stats show it (SessionContext::set_command)
  std::shared_ptr<ExecCommand> cmd_;  // the running command, if any
  CommandSlot slot_;                  // its slot
  asio::experimental::channel<void(std::error_code, std::shared_ptr<ExecCommand>)> started_;
};

}  // namespace duplex::services
