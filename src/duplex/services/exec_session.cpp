// The exec session: the protocol around one connection's commands (docs/PROTOCOL.md, exec).
#include "duplex/services/exec_session.hpp"

#include <openssl/sha.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "duplex/core/errors.hpp"
#include "duplex/services/auth.hpp"
#include "duplex/wire/auth_proof.hpp"

namespace duplex::services {
namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

awaitable<Handled> refuse(errc code, std::string detail) {
  co_return duplex::fail(code, std::move(detail));
}

// The audit line's " via=BALANCER" for a client a load balancer carried (the PROXY protocol).
std::string via(const net::Peer& peer) {
  return peer.proxied_by.empty() ? std::string() : " via=" + peer.proxied_by;
}

// Requests longer than this are logged as their length, SHA-256 and first kAuditHead bytes.
constexpr std::size_t kAuditWhole = 1024;
constexpr std::size_t kAuditHead = 256;

// fmt's debug form: quoted, with C-style escapes for quotes, backslashes and control bytes, so a
// request can neither end its log line early nor paint the operator's terminal.
std::string quoted(std::string_view s) {
  return fmt::format("{:?}", s);
}

// The command as asked, every byte of it (argv strings each ended by NUL, as /proc/PID/cmdline).
std::string command_bytes(const wire::ExecStart& r) {
  std::string out;
  for (const auto& a : r.argv) {
    out += a;
    out += '\0';
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return fmt::format("{:02x}", fmt::join(d, d + sizeof d, ""));
}

// The audit description of a request: the whole argv escaped, or when long its length, hash and
// head, so that nothing can hide past a cut; env keys (never values: they may be secrets), cwd,
// pty, and the forced command that replaced the request, if any.
std::string audit_request(const wire::ExecStart& r, const std::optional<std::string>& forced) {
  std::string argv;
  if (r.login) {
    argv = "<login shell>";
  } else {
    std::string list;
    for (const auto& a : r.argv) {
      if (!list.empty()) list += ", ";
      list += quoted(a);
    }
    if (list.size() > kAuditWhole) {
      const std::string raw = command_bytes(r);
      list = fmt::format("<{} bytes, sha256 {}, begins {}>", raw.size(), sha256_hex(raw),
                         quoted(std::string_view(raw).substr(0, kAuditHead)));
    }
    argv = (r.shell ? "sh -c [" : "[") + list + "]";
  }
  std::string keys;
  for (const auto& [k, v] : r.env) {
    if (!keys.empty()) keys += ",";
    keys += quoted(k);
  }
  std::string out = fmt::format("argv={} env=[{}] cwd={} pty={}", argv, keys,
                                r.cwd.empty() ? "default" : quoted(r.cwd), r.pty ? "yes" : "no");
  if (forced) out += fmt::format(" forced={}", quoted(*forced));
  return out;
}

// The command as a stats table shows it: the argv as typed in a shell, cut short (a table row,
// not the audit line: that one keeps every byte).
std::string shown_command(const wire::ExecStart& r) {
  constexpr std::size_t kShown = 200;
  std::string out;
  if (r.login) {
    out = "<login shell>";
  } else {
    if (r.shell) out = "sh -c ";
    for (const auto& a : r.argv) {
      if (!out.empty() && out.back() != ' ') out += ' ';
      const bool plain =
          !a.empty() && a.find_first_of(" \t\n\"'\\$`;|&<>()*?[]#~") == std::string::npos &&
          std::none_of(a.begin(), a.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
      out += plain ? a : quoted(a);
      if (out.size() > kShown) break;
    }
  }
  if (out.size() > kShown) out = out.substr(0, kShown - 3) + "...";
  return out;
}

// sshd's ForceCommand: whatever was asked, the key's command runs with /bin/sh, the request in
// DUPLEX_ORIGINAL_COMMAND. Both go in as argv strings (no quoting to get wrong), and the variable
// is set by the shell rather than in the request's environment, which only the client fills
// (and the server's allow list filters).
wire::ExecStart forced_request(const wire::ExecStart& asked, const std::string& forced) {
  std::string original;
  if (!asked.login) {
    for (const auto& a : asked.argv) {
      if (!original.empty()) original += ' ';
      original += a;
    }
  }
  wire::ExecStart r = asked;
  r.login = false;
  r.shell = false;
  r.argv = {"/bin/sh",
            "-c",
            "DUPLEX_ORIGINAL_COMMAND=$1; export DUPLEX_ORIGINAL_COMMAND; eval \"$2\"",
            "duplex-forced-command",
            original,
            forced};
  return r;
}

}  // namespace

ExecSession::ExecSession(ExecContext ctx, SessionContext& session)
    : ctx_(ctx), session_(session), started_(session.get_executor(), 1) {}

ExecSession::~ExecSession() = default;

awaitable<Handled> ExecSession::handle(wire::MsgType type, ByteView payload) {
  using wire::MsgType;
  switch (type) {
    case MsgType::auth:
    case MsgType::auth_start:
    case MsgType::auth_proof:
    case MsgType::exec_start: {
      if (!ctx_.settings.enabled)
        return refuse(errc::service_disabled,
                      "the exec service is not enabled on this server (start it with --exec)");
      // Protected mode: on a network listener exec runs only over TLS, so that neither the
      // authentication nor the command's bytes travel in clear.
      if (!session_.channel_protected())
        return refuse(errc::insecure_channel,
                      "exec needs TLS on this listener; connect with tls://HOST:PORT");
      if (type == MsgType::auth) return on_auth(payload);
      if (type == MsgType::auth_start) return on_auth_start(payload);
      if (type == MsgType::auth_proof) return on_auth_proof(payload);
      return on_exec_start(payload);
    }
    case MsgType::stdin_data: return on_stdin(payload);
    case MsgType::stdin_eof: return on_stdin_eof(payload);
    case MsgType::signal: return on_signal(payload);
    case MsgType::window_size: return on_window_size(payload);
    default: break;
  }
  return refuse(errc::unexpected_message,
                fmt::format("{} is not an exec message", wire::type_name(type)));
}

Failure ExecSession::auth_failure(std::string_view why) {
  const auto& peer = session_.peer();
  ctx_.auth_failures.fetch_add(1, std::memory_order_relaxed);
  const bool boxed = ctx_.penalties.record_failure(peer.client_key);
  spdlog::warn(
      "[c{}] exec: authentication failed for {}: {}{}", session_.connection_id(), peer.address, why,
      boxed ? fmt::format("; {} is refused for a while (too many failures)", peer.client_key) : "");
  // The client learns only that it failed, never why (no oracle for guessing).
  return duplex::fail(errc::auth_failed, "authentication failed");
}

Result<Next> ExecSession::may_authenticate(wire::MsgType type) {
  if (identity_ || expected_proof_)
    return duplex::fail(errc::unexpected_message,
                        fmt::format("{} after authentication began", wire::type_name(type)));
  // The accept check refuses a penalised address; this catches a connection accepted before its
  // address's penalty began.
  const auto& peer = session_.peer();
  if (const auto left = ctx_.penalties.refused_for(peer.client_key); left.count() > 0) {
    ctx_.auth_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("[c{}] exec: authentication refused for {}: penalised for {} s more",
                 session_.connection_id(), peer.address, (left.count() + 999) / 1000);
    return duplex::fail(errc::penalised,
                        fmt::format("too many failed authentications from {}; try again in {} s",
                                    peer.client_key, (left.count() + 999) / 1000));
  }
  return Next::read_on;
}

awaitable<Handled> ExecSession::authenticated(Identity who) {
  const auto& peer = session_.peer();
  ctx_.penalties.record_success(peer.client_key);
  spdlog::info(
      "[c{}] exec: {} authenticated as {}{}", session_.connection_id(), peer.address, who.name,
      who.forced_command ? fmt::format(" (forced command {})", quoted(*who.forced_command)) : "");
  session_.set_authenticated(who.name);
  session_.set_service("exec");
  identity_ = std::move(who);
  // From here on a command may run for long without a byte from the client: notice a host
  // that vanished (no FIN, no reset) instead of keeping its command forever.
  session_.enable_keepalive(kKeepaliveIdle, kKeepaliveInterval);
  auto ok = Payload::of(wire::AuthOk{identity_->name, ctx_.max_frame});
  const bool sent = co_await session_.sink().send(wire::MsgType::auth_ok, std::move(ok));
  co_return after_send(sent);
}

// AUTH: the transport's identity alone. A token in it comes from an old client that sends the
// token in clear: refused and never compared, so that such a client fails loudly instead of
// working while it hands the token to whoever listens.
awaitable<Handled> ExecSession::on_auth(ByteView payload) {
  if (auto ok = may_authenticate(wire::MsgType::auth); !ok) co_return std::move(ok).failure();
  auto m = wire::decode_auth(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed AUTH");
  if (!m->token.empty()) co_return auth_failure("a token sent in clear (an old client?)");
  auto t = check_transport(ctx_.settings.auth, session_.peer());
  if (!t.identity)
    co_return auth_failure(t.refusal.empty() ? "no transport identity (no Unix peer uid, no key)"
                                             : t.refusal);
  co_return co_await authenticated(std::move(*t.identity));
}

awaitable<Handled> ExecSession::on_auth_start(ByteView payload) {
  if (auto ok = may_authenticate(wire::MsgType::auth_start); !ok) co_return std::move(ok).failure();
  auto m = wire::decode_auth_start(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed AUTH_START");
  auto t = check_transport(ctx_.settings.auth, session_.peer());
  if (t.identity) co_return co_await authenticated(std::move(*t.identity));
  const auto& key = ctx_.settings.auth.token_key;
  if (!key) {
    co_return auth_failure(t.refusal.empty() ? "no token configured"
                                             : t.refusal + ", and no token configured");
  }
  if (!t.refusal.empty())
    spdlog::info("[c{}] exec: {}: {}; asking for the token", session_.connection_id(),
                 session_.peer().address, t.refusal);
  // Bound to this connection's TLS secrets where there are some: a relay that forwards our
  // challenge to the real client over another connection gets a proof for the wrong channel.
  wire::AuthBlock binding{};
  if (auto b = session_.channel_binding(wire::kAuthBindingLabel)) binding = *b;
  auto ns = wire::make_nonce();
  if (!ns) co_return std::move(ns).failure();
  wire::AuthChallenge c;
  c.server_nonce = *ns;
  c.server_proof = wire::auth_proof(wire::ProofRole::server, *key, binding, m->client_nonce, *ns);
  expected_proof_ = wire::auth_proof(wire::ProofRole::client, *key, binding, m->client_nonce, *ns);
  auto p = Payload::of(c);
  const bool sent = co_await session_.sink().send(wire::MsgType::auth_challenge, std::move(p));
  co_return after_send(sent);
}

awaitable<Handled> ExecSession::on_auth_proof(ByteView payload) {
  if (!expected_proof_ || identity_)
    co_return duplex::fail(errc::unexpected_message, "AUTH_PROOF without an AUTH_CHALLENGE");
  auto m = wire::decode_auth_proof(payload);
  if (!m) co_return duplex::fail(errc::bad_message, "malformed AUTH_PROOF");
  const bool right = wire::same_proof(m->client_proof, *expected_proof_);
  expected_proof_.reset();
  if (!right) co_return auth_failure("wrong proof (a wrong token, or a relay)");
  // Named: GCC 12 destroys a braced temporary inside a co_await expression twice.
  Identity who{"token", std::nullopt};
  co_return co_await authenticated(std::move(who));
}

awaitable<Handled> ExecSession::on_exec_start(ByteView payload) {
  if (!identity_) co_return duplex::fail(errc::auth_required, "send AUTH before EXEC_START");
  auto asked = wire::decode_exec_start(payload);
  if (!asked) co_return duplex::fail(errc::bad_message, "malformed EXEC_START");
  audit_argv_ = audit_request(*asked, identity_->forced_command);
  const auto req = identity_->forced_command ? forced_request(*asked, *identity_->forced_command)
                                             : std::move(*asked);
  if (cmd_) co_return duplex::fail(errc::limit_exceeded, "one command at a time per connection");
  // A variable the server does not let through refuses the request (ERROR, one line naming it)
  // before it waits for a slot.
  if (auto allowed = check_client_env(req, ctx_.settings.policy); !allowed)
    co_return std::move(allowed).failure();

  // Waiting for a slot is not idleness; a client that leaves meanwhile leaves the queue. A free
  // slot is taken at once, without the race (two coroutines and a turn of the loop).
  session_.set_busy(true);
  Result<CommandSlot> slot = CommandSlot{};
  if (auto free = ctx_.slots.try_acquire(session_.peer().client_key, ctx_.settings)) {
    slot = std::move(*free);
  } else {
    auto got = co_await (ctx_.slots.acquire(session_.peer().client_key, ctx_.settings) ||
                         session_.client_gone());
    if (got.index() == 1) {
      session_.set_busy(false);
      co_return Next::end;
    }
    slot = std::move(std::get<0>(got));
  }
  if (!slot) {
    session_.set_busy(false);
    co_return std::move(slot).failure();
  }

  const auto ex = co_await asio::this_coro::executor;
  auto started = ExecCommand::start(ex, req, ctx_.settings.policy,
                                    ExecOrigin::of(session_.peer(), identity_->name));
  if (!started) {
    count_failure();
    spdlog::info("[c{}] exec: peer={}{} identity={} {} not started: {}", session_.connection_id(),
                 session_.peer().address, via(session_.peer()), quoted(identity_->name),
                 audit_argv_, started.message());
    slot->release();  // before the EXIT: the client may try again at once
    session_.set_busy(false);
    co_return co_await send_exit(not_started_exit(started.error()));
  }
  ctx_.commands_started.fetch_add(1, std::memory_order_relaxed);
  cmd_ = std::move(*started);
  slot_ = std::move(*slot);
  shown_ = shown_command(req);
  session_.set_command(shown_);
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
    const auto exit = co_await cmd->run(session_.sink(), ctx_.max_frame);
    session_.set_busy(false);
    if (ctx_.command_duration != nullptr)
      ctx_.command_duration->observe(std::chrono::microseconds(exit.duration_us));
    session_.set_command({});
    if (exit.how != wire::Exit::How::exited || exit.code != 0 ||
        exit.limit != wire::Exit::Limit::none)
      count_failure();
    spdlog::info("[c{}] exec: peer={}{} identity={} {} exit={}{} duration={:.3f}s out={} err={}{}",
                 session_.connection_id(), session_.peer().address, via(session_.peer()),
                 quoted(identity_->name), audit_argv_,
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

void ExecSession::count_failure() noexcept {
  if (ctx_.commands_failed != nullptr)
    ctx_.commands_failed->fetch_add(1, std::memory_order_relaxed);
}

void ExecSession::end(wire::Exit::Limit why) noexcept {
  if (cmd_) cmd_->terminate(why);
  started_.close();
  // Gone after our challenge without a proof: our duplex client does that when our proof does
  // not match its token (a wrong token, or a relay between us). It counts as a failure, or
  // wrong tokens from real clients would never reach the penalty box or the log.
  if (expected_proof_ && !identity_) {
    expected_proof_.reset();
    if (why == wire::Exit::Limit::shutdown) return;  // we ended it, not the client
    try {
      (void)auth_failure("left after the challenge without a proof (a wrong token, or a relay)");
    } catch (...) {  // logging or the box's memory: nothing to do about either here
    }
  }
}

}  // namespace duplex::services
