// The exec session: the protocol around one connection's commands (docs/PROTOCOL.md, exec).
#include "duplex/services/exec_session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/errors.hpp"
#include "duplex/services/auth.hpp"

namespace duplex::services {
namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

awaitable<Handled> refuse(errc code, std::string detail) {
  co_return duplex::fail(code, std::move(detail));
}

std::string audit_argv(const wire::ExecStart& r) {
  if (r.login) return "<login shell>";
  std::string out;
  for (const auto& a : r.argv) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{:?}", a.size() > 200 ? a.substr(0, 200) + "..." : a);
  }
  return r.shell ? "sh -c " + out : out;
}

}  // namespace

ExecSession::ExecSession(ExecContext ctx, SessionContext& session)
    : ctx_(ctx), session_(session), started_(session.get_executor(), 1) {}

ExecSession::~ExecSession() = default;

awaitable<Handled> ExecSession::handle(wire::MsgType type, ByteView payload) {
  using wire::MsgType;
  switch (type) {
    case MsgType::auth:
    case MsgType::exec_start:
      if (!ctx_.settings.enabled)
        return refuse(errc::service_disabled,
                      "the exec service is not enabled on this server (start it with --exec)");
      return type == MsgType::auth ? on_auth(payload) : on_exec_start(payload);
    case MsgType::stdin_data: return on_stdin(payload);
    case MsgType::stdin_eof: return on_stdin_eof(payload);
    case MsgType::signal: return on_signal(payload);
    case MsgType::window_size: return on_window_size(payload);
    default: break;
  }
  return refuse(errc::unexpected_message,
                fmt::format("{} is not an exec message", wire::type_name(type)));
}

awaitable<Handled> ExecSession::on_auth(ByteView payload) {
  auto m = wire::decode_auth(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed AUTH");
  auto who = authenticate(ctx_.settings.auth, m->token, session_.peer());
  if (!who) {
    spdlog::warn("exec: authentication failed for {}", session_.peer().address);
    // The client learns only that it failed, never why (no oracle for guessing).
    co_return duplex::fail(errc::auth_failed, "authentication failed");
  }
  identity_ = std::move(*who);
  // From here on a command may run for long without a byte from the client: notice a host
  // that vanished (no FIN, no reset) instead of keeping its command forever.
  session_.enable_keepalive(kKeepaliveIdle, kKeepaliveInterval);
  auto ok = Payload::of(wire::AuthOk{identity_});
  const bool sent = co_await session_.sink().send(wire::MsgType::auth_ok, std::move(ok));
  co_return after_send(sent);
}

awaitable<Handled> ExecSession::on_exec_start(ByteView payload) {
  if (identity_.empty()) co_return duplex::fail(errc::auth_required, "send AUTH before EXEC_START");
  auto req = wire::decode_exec_start(payload);
  if (!req) co_return duplex::fail(errc::bad_message, "malformed EXEC_START");
  if (cmd_) co_return duplex::fail(errc::limit_exceeded, "one command at a time per connection");
  // A variable the server does not let through refuses the request (ERROR, one line naming it)
  // before it waits for a slot.
  if (auto allowed = check_client_env(*req, ctx_.settings.policy); !allowed)
    co_return std::move(allowed).failure();

  // Waiting for a slot is not idleness; a client that leaves meanwhile leaves the queue.
  session_.set_busy(true);
  auto got = co_await (ctx_.slots.acquire(session_.peer().client_key, ctx_.settings) ||
                       session_.client_gone());
  if (got.index() == 1) {
    session_.set_busy(false);
    co_return Next::end;
  }
  auto& slot = std::get<0>(got);
  if (!slot) {
    session_.set_busy(false);
    co_return std::move(slot).failure();
  }

  audit_argv_ = audit_argv(*req);
  const auto ex = co_await asio::this_coro::executor;
  auto started = ExecCommand::start(ex, *req, ctx_.settings.policy,
                                    ExecOrigin::of(session_.peer(), identity_));
  if (!started) {
    spdlog::info("exec: peer={} identity={} argv=[{}] not started: {}", session_.peer().address,
                 identity_, audit_argv_, started.message());
    slot->release();  // before the EXIT: the client may try again at once
    session_.set_busy(false);
    co_return co_await send_exit(not_started_exit(started.error()));
  }
  ctx_.commands_started.fetch_add(1, std::memory_order_relaxed);
  cmd_ = std::move(*started);
  slot_ = std::move(*slot);
  auto [ec] = co_await started_.async_send(std::error_code{}, cmd_, use_tuple);
  co_return ec ? Next::end : Next::read_on;
}

awaitable<Handled> ExecSession::on_stdin(ByteView payload) {
  if (!cmd_) co_return Next::read_on;  // input for a command that already ended is dropped
  auto cmd = cmd_;                     // the command may end while we wait on its input queue
  const std::size_t queued = cmd->try_write_stdin(payload);
  if (queued == payload.size()) co_return Next::read_on;
  // Only a client that sends beyond its STDIN_WINDOW gets here: the command has not read what it
  // was given, so read nothing more from the client either (backpressure), but notice a client
  // that hangs up meanwhile (bug: a FIN is not an error).
  auto r = co_await (cmd->write_stdin(payload.subspan(queued)) || session_.client_gone());
  co_return r.index() == 1 ? Next::end : Next::read_on;
}

awaitable<Handled> ExecSession::on_stdin_eof(ByteView payload) {
  if (!payload.empty()) co_return duplex::fail(errc::bad_message, "STDIN_EOF carries no payload");
  if (!cmd_) co_return Next::read_on;
  auto cmd = cmd_;
  if (cmd->try_close_stdin()) co_return Next::read_on;
  auto r = co_await (cmd->close_stdin() || session_.client_gone());
  co_return r.index() == 1 ? Next::end : Next::read_on;
}

awaitable<Handled> ExecSession::on_signal(ByteView payload) {
  auto m = wire::decode_signal(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed SIGNAL");
  if (cmd_) cmd_->signal(m->signo);  // at once, ahead of any input still queued
  co_return Next::read_on;
}

awaitable<Handled> ExecSession::on_window_size(ByteView payload) {
  auto m = wire::decode_window_size(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed WINDOW_SIZE");
  if (cmd_) cmd_->resize(m->rows, m->cols);
  co_return Next::read_on;
}

awaitable<Next> ExecSession::send_exit(const wire::Exit& exit) {
  auto p = Payload::of(exit);
  const bool sent = co_await session_.sink().send(wire::MsgType::exit, std::move(p));
  co_return after_send(sent);
}

awaitable<void> ExecSession::run() {
  for (;;) {
    auto [ec, cmd] = co_await started_.async_receive(use_tuple);
    if (ec) co_return;
    const auto exit = co_await cmd->run(session_.sink());
    session_.set_busy(false);
    spdlog::info("exec: peer={} identity={} argv=[{}] exit={}{} duration={:.3f}s out={} err={}{}",
                 session_.peer().address, identity_, audit_argv_,
                 exit.how == wire::Exit::How::signaled ? "signal " : "", exit.code,
                 static_cast<double>(exit.duration_us) / 1e6, cmd->bytes_out(), cmd->bytes_err(),
                 exit.limit == wire::Exit::Limit::none
                     ? ""
                     : fmt::format(" limit={}", wire::limit_name(exit.limit)));
    // Free the command's slot before EXIT goes out: the client may start the next one at once.
    if (cmd_ == cmd) cmd_.reset();
    cmd.reset();  // closes its pipes and pidfd now
    slot_.release();
    co_await send_exit(exit);  // end: the client is gone; the reader ends the loop
  }
}

void ExecSession::end(wire::Exit::Limit why) noexcept {
  if (cmd_) cmd_->terminate(why);
  started_.close();
}

}  // namespace duplex::services
