// run_exec: connect and authenticate, start the command, then the reader, the writer (an Outbox),
// the stdin pump and the signal watcher run together until EXIT, a failure or a local signal.
#include "duplex/client/exec_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/client/connection.hpp"
#include "duplex/client/escape.hpp"
#include "duplex/client/outbox.hpp"
#include "duplex/client/stdin_reader.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/client/token_proof.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/wire/auth_proof.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;
using net::use_tuple;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kStdinChunk = 64 * 1024;  // largest STDIN_DATA payload we send
constexpr std::size_t kDataDepth = 16;          // stdin frames queued in front of the writer
constexpr auto kDoubleInterrupt = std::chrono::seconds(2);

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

template <class M>
Bytes encoded(const M& m) {
  Bytes f;
  wire::encode(m, f);
  return f;
}

// The line for a failure. A refused client prints exactly "authentication failed"
// (docs/PROTOCOL.md), whatever text the server sent with the code.
Failure described(Failure f, bool started) {
  if (f.code == errc::auth_failed)
    f.detail = "authentication failed";
  else if (started && is_connection_failure(f))
    f.detail += " before the command ended";
  return f;
}

// The outcomes of the connect phase, by name: Asio's `a || b` waits for the first to *succeed*
// (an exception does not end the race), so every racer returns its failures as values.
using Connected = Authenticated;
struct ConnectTimedOut {};

// On a Unix socket the kernel tells who serves it (SO_PEERCRED): anyone may take a socket path
// in a shared directory, so we say nothing to a server that is neither us nor root.
Status check_unix_server(const ExecRequest& req, const net::Peer& server) {
  if (req.endpoint.transport != net::Transport::unix_stream) return {};
  const uid_t me = ::geteuid();
  if (!server.uid)
    return fail(errc::auth_failed,
                fmt::format("{}: the kernel did not say who serves it: refusing to authenticate "
                            "to it",
                            req.endpoint.url()));
  if (*server.uid == me || *server.uid == 0) return {};
  return fail(errc::auth_failed,
              fmt::format("{} is served by uid {}, not by you or root: refusing to authenticate "
                          "to it",
                          req.endpoint.url(), *server.uid));
}

template <class M>
awaitable<Result<M>> read_message(Connection& conn, const ExecRequest& req, wire::MsgType want,
                                  Result<M> (*decode)(ByteView) noexcept) {
  auto r = co_await conn.read_frame();
  if (!r) co_return described(std::move(r).failure(), false);
  if (r->type != want)
    co_return fail(errc::unexpected_message,
                   fmt::format("{} answered with {} where {} was due", req.endpoint.url(),
                               wire::type_name(r->type), wire::type_name(want)));
  auto m = decode(r->payload);
  if (!m)
    co_return fail(errc::bad_message, fmt::format("{} sent a malformed {}", req.endpoint.url(),
                                                  wire::type_name(want)));
  co_return std::move(*m);
}

// What identifies us besides a token: the client key over TLS, our uid on a Unix socket. Empty
// when neither; else `lead` and the list.
std::string transport_credentials(const ExecRequest& req, const Connection& conn,
                                  std::string_view lead) {
  std::string out;
  if (!conn.client_key().empty()) out = "client key " + conn.client_key();
  if (req.endpoint.transport == net::Transport::unix_stream)
    out += fmt::format("{}uid {}", out.empty() ? "" : " or ", ::geteuid());
  return out.empty() ? out : std::string(lead) + out;
}

// The credentials a refused authentication used, so that the user knows which one to fix.
std::string credentials_used(const ExecRequest& req, const Connection& conn, bool token_proved) {
  std::string used = transport_credentials(req, conn, "");
  if (token_proved)
    used += fmt::format("{}the token from {}", used.empty() ? "" : ", then ", req.token_source);
  return used.empty() ? "no client key, no uid, no token: nothing to offer this server"
                      : "credentials used: " + used;
}

// The challenge-response (docs/PROTOCOL.md): the server proves it knows the token before we
// prove it, and both proofs are bound to this connection (TLS exporter; zeros on a plain
// stream). The token itself never leaves this process, in any form.
awaitable<Result<wire::AuthOk>> prove_token(Connection& conn, const ExecRequest& req,
                                            const wire::AuthStart& start,
                                            const wire::AuthChallenge& c) {
  if (req.token.empty())
    co_return fail(errc::auth_failed,
                   fmt::format("the server wants a token and none was found (DUPLEX_TOKEN, "
                               "--token-file, ~/.config/duplex/token){}",
                               transport_credentials(req, conn, "; it did not take ")));
  auto answer = answer_challenge(conn.stream(), req.token, start, c);
  if (!answer) co_return std::move(answer).failure();
  if (!*answer) {
    conn.abort();
    co_return fail(errc::auth_failed,
                   fmt::format("the server at {} does not know the token: it may be an impostor "
                               "(or the token from {} is not this server's); not authenticating",
                               req.endpoint.url(), req.token_source));
  }
  spdlog::info("the server proved it knows the token; proving it too");
  const Bytes proof = encoded(**answer);
  if (auto w = co_await conn.write(proof); !w) co_return described(std::move(w).failure(), false);
  co_return co_await read_message(conn, req, wire::MsgType::auth_ok, &wire::decode_auth_ok);
}

// The answer to AUTH_START (sent with HELLO), then (when the server asks) the token's
// challenge-response, until AUTH_OK. `token_proved` says whether we proved the token.
awaitable<Result<wire::AuthOk>> authenticate(Connection& conn, const ExecRequest& req,
                                             const wire::AuthStart& start, bool& token_proved) {
  auto r = co_await conn.read_frame();
  if (!r) co_return described(std::move(r).failure(), false);
  if (r->type == wire::MsgType::auth_ok) {
    auto m = wire::decode_auth_ok(r->payload);
    if (!m)
      co_return fail(errc::bad_message,
                     fmt::format("{} sent a malformed AUTH_OK", req.endpoint.url()));
    co_return std::move(*m);
  }
  if (r->type == wire::MsgType::auth_challenge) {
    auto c = wire::decode_auth_challenge(r->payload);
    if (!c)
      co_return fail(errc::bad_message,
                     fmt::format("{} sent a malformed AUTH_CHALLENGE", req.endpoint.url()));
    const std::string refused = transport_credentials(req, conn, " (it did not take ");
    spdlog::info("the server asks for the token{}", refused.empty() ? refused : refused + ")");
    token_proved = !req.token.empty();
    co_return co_await prove_token(conn, req, start, *c);
  }
  co_return fail(
      errc::unexpected_message,
      fmt::format("{} answered AUTH_START with {}", req.endpoint.url(), wire::type_name(r->type)));
}

// Dial, handshake, authentication.
awaitable<Result<Connected>> connect_and_auth(const ExecRequest& req) {
  ClientOptions opt;
  opt.log_steps = true;  // shown with -v
  opt.protocol = Protocol::framed;
  // No per-read timeout: a command may be silent for hours. The connect phase has its own
  // deadline (connect_deadline), and after EXEC_START the server's limits apply.
  opt.timeout = std::chrono::milliseconds(0);
  opt.agent = req.agent;
  opt.tls = req.tls;
  opt.trust = req.trust;
  // Checked before we send anything, AUTH_START included. Its refusal is told as it is (not as
  // the server's "authentication failed").
  bool refused_server = false;
  opt.accept_server = [&req, &refused_server](const net::Peer& server) {
    auto ok = check_unix_server(req, server);
    refused_server = !ok;
    return ok;
  };
  // AUTH_START goes with HELLO: the server answers it right after WELCOME, a round trip less.
  auto nonce = wire::make_nonce();
  if (!nonce) co_return std::move(nonce).failure();
  const wire::AuthStart start{*nonce};
  opt.after_hello = encoded(start);
  auto conn = co_await Connection::open(req.endpoint, opt);
  if (!conn && refused_server) co_return std::move(conn).failure();
  if (!conn) co_return described(std::move(conn).failure(), false);
  if (req.token.empty())
    spdlog::info(
        "authenticating with {}; no token (DUPLEX_TOKEN, --token-file, "
        "~/.config/duplex/token)",
        transport_credentials(req, *conn, "").empty() ? std::string("nothing but the connection")
                                                      : transport_credentials(req, *conn, ""));
  else
    spdlog::info("authenticating{}; token from {} if the server asks for one",
                 transport_credentials(req, *conn, " with "), req.token_source);
  bool token_proved = false;
  auto ok = co_await authenticate(*conn, req, start, token_proved);
  if (!ok) {
    Failure f = std::move(ok).failure();
    // The server's refusal says nothing more (no hint for guessing); we say what we offered.
    if (f.code == errc::auth_failed && f.detail == "authentication failed")
      f.detail += fmt::format(" ({})", credentials_used(req, *conn, token_proved));
    co_return f;
  }
  spdlog::info("authenticated as {}", ok->identity);
  co_return Connected{std::move(*conn), ok->identity, ok->max_frame};
}

awaitable<ConnectTimedOut> connect_deadline(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor,
                       d.count() > 0 ? d : std::chrono::hours(24 * 365));
  co_await t.async_wait(use_tuple);
  co_return ConnectTimedOut{};
}

// Before the command runs, any signal we watch (but SIGWINCH) simply abandons the attempt.
awaitable<LocalSignal> abort_signal(asio::signal_set& signals) {
  for (;;) {
    auto [ec, signo] = co_await signals.async_wait(use_tuple);
    if (ec) co_return LocalSignal{};  // cancelled: the connection won the race
    if (signo != SIGWINCH) co_return LocalSignal{signo};
  }
}

// One racer's verdict on how the session ended (a struct, so that `||` does not flatten it).
struct Ending {
  ExecEnd end;
};

// One started command: the coroutines that share the connection, and their single writer.
class Session {
 public:
  /// `first` is stdin read before `reader` started (nullopt: none; empty: its end), and
  /// `reader` is null when nothing more is to be read. `eof_sent`: STDIN_EOF went with
  /// EXEC_START.
  Session(Connection& conn, const ExecRequest& req, const ExecHooks& hooks,
          asio::signal_set& signals, const asio::any_io_executor& ex, std::optional<Bytes> first,
          std::unique_ptr<StdinReader> reader, bool eof_sent)
      : conn_(conn),
        req_(req),
        hooks_(hooks),
        signals_(signals),
        outbox_(ex, kDataDepth),
        credit_(ex, 1),
        escaped_(ex, 1),
        first_(std::move(first)),
        reader_(std::move(reader)),
        eof_sent_(eof_sent) {
    if (req.escapes) escapes_.emplace();
  }

  awaitable<ExecEnd> run() {
    // The reader or the signal watcher decides the outcome; the writer and the stdin pump never
    // finish on their own (a write error only stops writing: the reader then learns why the
    // connection ended).
    auto first = co_await (read_output() || watch_signals() || watch_escape() ||
                           (outbox_.run(conn_.stream()) && pump_stdin()));
    co_return std::visit(Overloaded{[](Ending& e) { return std::move(e.end); },
                                    [](std::monostate) -> ExecEnd {
                                      return fail(errc::internal,
                                                  "the session ended without an exit status");
                                    }},
                         first);
  }

 private:
  awaitable<Ending> read_output() {
    const Divert divert{wire::MsgType::stdout_data, hooks_.stdout_pipe};
    for (;;) {
      auto f = co_await conn_.read_frame_view(divert);
      if (!f) {
        if (f.failure().code == std::errc::broken_pipe) co_return Ending{LocalSignal{SIGPIPE}};
        co_return Ending{described(std::move(f).failure(), true)};
      }
      if (f->diverted) continue;
      switch (f->type) {
        case wire::MsgType::stdout_data:
          // Our stdout is gone: stop, as a local command would on SIGPIPE.
          if (hooks_.on_stdout && !hooks_.on_stdout(f->payload))
            co_return Ending{LocalSignal{SIGPIPE}};
          break;
        case wire::MsgType::stderr_data:
          if (hooks_.on_stderr) hooks_.on_stderr(f->payload);
          break;
        case wire::MsgType::exit: {
          auto e = wire::decode_exit(f->payload);
          if (!e)
            co_return Ending{
                fail(errc::bad_message, fmt::format("{} sent a malformed EXIT", url()))};
          co_return Ending{*e};
        }
        case wire::MsgType::stdin_window: {
          auto w = wire::decode_stdin_window(f->payload);
          if (!w)
            co_return Ending{
                fail(errc::bad_message, fmt::format("{} sent a malformed STDIN_WINDOW", url()))};
          stdin_credit_ += w->bytes;
          credit_.try_send(std::error_code{}, true);  // a full token slot already says the same
          break;
        }
        case wire::MsgType::pong: break;
        default:
          co_return Ending{fail(errc::unexpected_message,
                                fmt::format("{} sent an unexpected {} during the command", url(),
                                            wire::type_name(f->type)))};
      }
    }
  }

  awaitable<void> pump_stdin() {
    if (eof_sent_) co_return;
    for (std::optional<Bytes> next = std::move(first_);; next.reset()) {
      if (!next && reader_) {
        auto r = co_await reader_->next();
        if (!r) co_return;  // cancelled: the session is over
        next = std::move(*r);
      }
      if (!next || next->empty()) break;
      if (!co_await forward_stdin(std::move(*next))) co_return;
    }
    Bytes eof;
    wire::encode_frame(wire::MsgType::stdin_eof, {}, eof);
    co_await outbox_.send_data(std::move(eof));
  }

  // One chunk of stdin out as STDIN_DATA, through the escapes. False: stop reading stdin (~.
  // was typed, or the session is over).
  awaitable<bool> forward_stdin(Bytes chunk) {
    if (escapes_) {
      auto typed = escapes_->feed(chunk);
      for (int i = 0; i < typed.help; ++i)
        write_all(STDERR_FILENO, as_bytes(EscapeFilter::help_text()));
      if (typed.disconnect) {
        escaped_.try_send(std::error_code{}, true);
        co_return false;
      }
      chunk = std::move(typed.forward);  // may be empty: a ~ held for the next read
    }
    for (ByteView rest(chunk); !rest.empty();) {
      // No more than the server granted: what it cannot queue yet stays here, so that
      // nothing we send later (SIGNAL, WINDOW_SIZE, STDIN_EOF) waits behind it.
      while (stdin_credit_ == 0) {
        auto [ec, ignored] = co_await credit_.async_receive(use_tuple);
        if (ec) co_return false;  // cancelled: the session is over
      }
      const std::size_t n = std::min<std::uint64_t>(stdin_credit_, rest.size());
      stdin_credit_ -= n;
      Bytes f;
      f.reserve(wire::kHeaderSize + n);
      wire::encode_frame(wire::MsgType::stdin_data, rest.first(n), f);
      rest = rest.subspan(n);
      co_await outbox_.send_data(std::move(f));
    }
    co_return true;
  }

  // Never waits for the connection: signals go to the Outbox's control lane, and the signals
  // that end the session end it whatever the writer is doing.
  awaitable<Ending> watch_signals() {
    std::optional<Clock::time_point> last_interrupt;
    for (;;) {
      auto [ec, signo] = co_await signals_.async_wait(use_tuple);
      if (ec) co_return Ending{fail(ec, fmt::format("waiting for signals: {}", ec.message()))};
      if (signo == SIGWINCH) {
        if (hooks_.window_size)
          if (auto ws = hooks_.window_size()) outbox_.send_window_size(encoded(*ws));
        continue;
      }
      if (std::find(req_.stop_signals.begin(), req_.stop_signals.end(), signo) !=
          req_.stop_signals.end())
        co_return Ending{LocalSignal{signo}};
      if (signo == SIGINT && req_.double_interrupt_stops) {
        const auto now = Clock::now();
        if (last_interrupt && now - *last_interrupt < kDoubleInterrupt)
          co_return Ending{LocalSignal{SIGINT}};
        last_interrupt = now;
      }
      outbox_.send_signal(encoded(wire::Signal{signo}));  // dropped only in a flood of signals
    }
  }

  // ~. typed at a line start (pump_stdin): the way out of a session that no longer answers.
  awaitable<Ending> watch_escape() {
    auto [ec, ignored] = co_await escaped_.async_receive(use_tuple);
    if (ec) co_return Ending{fail(ec, "the escape watcher was cancelled")};  // another racer won
    co_return Ending{
        fail(std::errc::connection_aborted,
             fmt::format("connection to {} closed by ~. (the server ends the command)", url()))};
  }

  std::string url() const { return req_.endpoint.url(); }

  Connection& conn_;
  const ExecRequest& req_;
  const ExecHooks& hooks_;
  asio::signal_set& signals_;
  Outbox outbox_;
  // Bytes of STDIN_DATA the server granted (STDIN_WINDOW) and we have not sent; none before its
  // first window, which it sends as the command starts. credit_ wakes the stdin pump.
  std::uint64_t stdin_credit_ = 0;
  // (void(error_code) alone is ambiguous to Asio's channel_traits: hence the bool.)
  asio::experimental::channel<void(std::error_code, bool)> credit_;
  std::optional<EscapeFilter> escapes_;                               // when req.escapes
  asio::experimental::channel<void(std::error_code, bool)> escaped_;  // ~. was typed
  std::optional<Bytes> first_;  // stdin read before reader_ started
  std::unique_ptr<StdinReader> reader_;
  bool eof_sent_;
};

// EXEC_START, then the session until the command's end.
awaitable<ExecEnd> run_command(Connection& conn, std::uint32_t max_frame, const ExecRequest& req,
                               const ExecHooks& hooks, asio::signal_set& signals) {
  Bytes start = encoded(req.start);
  const std::size_t payload = start.size() - wire::kHeaderSize;
  if (payload > max_frame)
    co_return fail(errc::frame_too_large,
                   fmt::format("the command is too long: {} bytes, the server's frame limit is {} "
                               "bytes",
                               payload, max_frame));
  const std::size_t chunk = std::clamp<std::size_t>(max_frame, 1, kStdinChunk);
  // Stdin already at its end (</dev/null, an empty file, -n) needs no reader thread, and its
  // STDIN_EOF goes in EXEC_START's write. A terminal to set up (on_started) is read only after.
  std::optional<Bytes> first;
  if (req.stdin_fd < 0)
    first.emplace();
  else if (!hooks.on_started)
    first = read_if_ready(req.stdin_fd, chunk);
  const bool eof_sent = first && first->empty();
  if (eof_sent) wire::encode_frame(wire::MsgType::stdin_eof, {}, start);
  if (auto w = co_await conn.write(start); !w) co_return described(std::move(w).failure(), true);
  if (hooks.on_started) hooks.on_started();  // before stdin is read: raw mode comes first
  auto ex = co_await asio::this_coro::executor;
  std::unique_ptr<StdinReader> reader;
  if (!eof_sent) {
    auto started = StdinReader::start(ex, req.stdin_fd, chunk);
    if (!started) co_return std::move(started).failure();
    reader = std::move(*started);
  }
  Session session(conn, req, hooks, signals, ex, std::move(first), std::move(reader), eof_sent);
  co_return co_await session.run();
}

}  // namespace

awaitable<Result<Authenticated>> connect_and_authenticate(const ExecRequest& req) {
  return connect_and_auth(req);
}

awaitable<ExecResult> run_exec(const ExecRequest& req, const ExecHooks& hooks) {
  ExecResult res;
  const auto t0 = Clock::now();
  // Installed before we connect, so that Ctrl-C while connecting is ours to handle too.
  asio::signal_set signals(co_await asio::this_coro::executor);
  for (int s : req.forward_signals)
    signals.add(s);
  for (int s : req.stop_signals)
    signals.add(s);
  if (hooks.window_size) signals.add(SIGWINCH);

  auto first = co_await (connect_and_auth(req) || connect_deadline(req.connect_timeout) ||
                         abort_signal(signals));
  if (std::holds_alternative<ConnectTimedOut>(first)) {
    res.end = fail(std::errc::timed_out,
                   fmt::format("no answer from {} within {} s", req.endpoint.url(),
                               std::chrono::duration<double>(req.connect_timeout).count()));
  } else if (const auto* s = std::get_if<LocalSignal>(&first)) {
    res.end = *s;
  } else if (auto& connected = std::get<Result<Connected>>(first); !connected) {
    res.end = std::move(connected).failure();
  } else {
    res.identity = connected->identity;
    // The limit in force now that we are authenticated: AUTH_OK says it (zero: WELCOME did).
    const std::uint32_t max_frame =
        connected->max_frame != 0 ? connected->max_frame : connected->conn.welcome().max_frame;
    res.end = co_await run_command(connected->conn, max_frame, req, hooks, signals);
    // We gave up before the command's EXIT (a signal here, our stdout gone): the server must
    // learn it now, however much unsent stdin is in the way, so that it ends the command.
    if (!std::holds_alternative<wire::Exit>(res.end)) connected->conn.abort();
  }
  res.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  co_return res;
}

std::function<std::optional<wire::WindowSize>()> window_size_of(int fd) {
  return [fd]() -> std::optional<wire::WindowSize> {
    auto s = terminal_size(fd);
    if (!s) return std::nullopt;
    return wire::WindowSize{s->rows, s->cols};
  };
}

}  // namespace duplex::client
