// Connection implementation: dial, the handshake (with the fallback to the raw protocol), frames.
#include "duplex/client/connection.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "duplex/client/terminal.hpp"
#include "duplex/client/trust.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/core/known_hosts.hpp"
#include "duplex/net/dialer.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_identity.hpp"
#include "duplex/net/tls_stream.hpp"

namespace duplex::client {

/// What a TLS connection keeps beside its stream: the context its sessions live in, and the file
/// they are saved to.
struct TlsClientState {
  std::unique_ptr<net::TlsClientContext> ctx;
  std::string sessions_path;  // empty: not kept
  std::string server;         // the name the sessions are kept under (tls_dial's)
};

namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

// Replies larger than this are refused by the client whatever the server announces.
constexpr std::uint32_t kClientMaxFrame = 64u << 20;
// The TLS handshake's bound when the options set no reply timeout (exec bounds its whole connect
// phase itself).
constexpr std::chrono::milliseconds kHandshakeDeadline{60'000};

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The key to present: the one named, else the default one when it exists (a missing default is
// no key; a default that is there but unusable is an error, as a named one is).
Result<std::optional<net::TlsIdentity>> client_identity(const TrustOptions& trust) {
  std::string path = trust.identity;
  if (path.empty()) {
    path = net::default_client_key_path();
    if (!file_exists(path)) return std::optional<net::TlsIdentity>();
  }
  auto id = net::load_identity(path, path);
  if (!id) return fail(id.error(), fmt::format("client key: {}", id.message()));
  return std::optional<net::TlsIdentity>(std::move(*id));
}

// What -v shows (info level); nothing when the caller did not ask for steps.
template <class... Args>
void step(const ClientOptions& opt, fmt::format_string<Args...> f, Args&&... args) {
  if (opt.log_steps) spdlog::info(f, std::forward<Args>(args)...);
}

net::DialSteps dial_steps(const ClientOptions& opt) {
  if (!opt.log_steps) return {};
  return [](const std::string& line) { spdlog::info("{}", line); };
}

// On a Unix socket the kernel says who serves it: worth a line when something is refused.
void step_unix_server(const ClientOptions& opt, const net::Endpoint& ep, const net::Peer& p) {
  if (!ep.is_unix()) return;
  if (p.uid)
    step(opt, "the server of {} runs as uid {}{}", ep.path, *p.uid,
         p.pid ? fmt::format(" (pid {})", *p.pid) : std::string());
  else
    step(opt, "the kernel did not say who serves {}", ep.path);
}

// The name tls_dial keeps the session under.
std::string session_name(const net::Endpoint& ep) {
  return ep.is_unix() ? ep.url() : known_host_name(ep.host, ep.port);
}

}  // namespace

bool is_connection_failure(const Failure& f) noexcept {
  return f.code.category() != duplex_category() && f.code != std::errc::timed_out;
}

awaitable<Result<Connection>> Connection::open(const net::Endpoint& ep, ClientOptions opt) {
  if (ep.tls || opt.tls) co_return co_await open_tls(ep, std::move(opt));
  auto s = co_await net::dial(ep, dial_steps(opt));
  if (!s) co_return std::move(s).failure();
  step_unix_server(opt, ep, (*s)->peer());
  Connection c(std::move(*s), ep, std::move(opt));
  if (auto ok = c.accept_server(); !ok) co_return std::move(ok).failure();
  if (c.opt_.protocol != Protocol::raw) {
    auto shaken = co_await c.handshake();
    if (!shaken) co_return std::move(shaken).failure();
  }
  co_return std::move(c);
}

awaitable<Result<Connection>> Connection::open_tls(const net::Endpoint& plain, ClientOptions opt) {
  net::Endpoint ep = plain;
  ep.tls = true;  // --tls: messages then name the address as tls://
  if (!ep.is_stream())
    co_return fail(errc::bad_url, fmt::format("TLS needs a stream address (tls:// or tls+unix://), "
                                              "not {}",
                                              ep.url()));
  auto id = client_identity(opt.trust);
  if (!id) co_return std::move(id).failure();
  const std::string key_path =
      opt.trust.identity.empty() ? net::default_client_key_path() : opt.trust.identity;
  const std::string client_key =
      *id ? fmt::format("{} ({})", (*id)->fingerprint, key_path) : std::string();
  if (*id)
    step(opt, "client key {}", client_key);
  else
    step(opt, "no client key ({} does not exist; `duplex keygen` makes one)", key_path);
  auto ctx = net::TlsClientContext::create(*id ? &**id : nullptr);
  if (!ctx) co_return std::move(ctx).failure();
  auto state = std::make_shared<TlsClientState>();
  state->ctx = std::move(*ctx);
  state->server = session_name(ep);
  if (opt.trust.sessions != "-") {
    state->sessions_path =
        opt.trust.sessions.empty() ? net::default_tls_sessions_path() : opt.trust.sessions;
    // A cache: what cannot be read costs a full handshake, nothing more.
    if (auto ok = state->ctx->load_sessions(state->sessions_path); !ok)
      spdlog::warn("TLS sessions not loaded: {}", ok.message());
  }

  const auto deadline = opt.timeout.count() > 0 ? opt.timeout : kHandshakeDeadline;
  auto tls = co_await net::tls_dial(*state->ctx, ep, deadline, dial_steps(opt));
  if (!tls) co_return std::move(tls).failure();
  const bool resumed = (*tls)->session_reused();
  const std::string offered = (*tls)->peer().key_fingerprint;
  step_unix_server(opt, ep, (*tls)->peer());
  // (Tests and scripts look for "TLS resumed with" / "TLS full handshake with".)
  step(opt, "TLS {} with {}: {}, server key {}", resumed ? "resumed" : "full handshake", ep.url(),
       (*tls)->description(), offered);

  // Nothing of ours crosses before the key is believed; a refused key's session is dropped, so
  // that no later connection resumes it. A FIN, not a reset: the server still reads our Finished
  // and logs a client that left rather than a handshake that failed.
  if (auto trusted = check_server_key(ep, offered, opt.trust); !trusted) {
    (*tls)->close();
    state->ctx->forget(state->server);
    if (!state->sessions_path.empty()) {
      if (auto ok = state->ctx->save_sessions(state->sessions_path); !ok)
        spdlog::warn("TLS sessions not saved: {}", ok.message());
    }
    co_return std::move(trusted).failure();
  }
  if (!opt.trust.fingerprint.empty())
    step(opt, "server key {} is the one --fingerprint names", offered);
  else
    step(opt, "server key {} is pinned in {}", offered,
         opt.trust.known_hosts.empty() ? default_known_hosts_path() : opt.trust.known_hosts);

  Connection c(std::move(*tls), ep, std::move(opt));
  c.tls_ = std::move(state);
  c.tls_resumed_ = resumed;
  c.client_key_ = client_key;
  if (auto ok = c.accept_server(); !ok) co_return std::move(ok).failure();
  if (c.opt_.protocol != Protocol::raw) {
    auto shaken = co_await c.handshake();
    if (!shaken) co_return std::move(shaken).failure();
    // The server's ticket came before its WELCOME: kept now, so that a connection that later
    // ends abruptly still lets the next one resume.
    c.save_tls_sessions();
  }
  co_return std::move(c);
}

void Connection::save_tls_sessions() const {
  if (!tls_ || tls_->sessions_path.empty()) return;
  if (auto ok = tls_->ctx->save_sessions(tls_->sessions_path); !ok)
    spdlog::warn("TLS sessions not saved: {}", ok.message());
}

awaitable<void> Connection::shutdown_send() {
  co_await stream_->shutdown_send();
  save_tls_sessions();
}

awaitable<void> Connection::finish() {
  co_await shutdown_send();
  stream_->close();
}

Status Connection::accept_server() {
  if (!opt_.accept_server) return {};
  // Once, at open: what it refers to need not outlive open().
  auto ok = std::exchange(opt_.accept_server, nullptr)(stream_->peer());
  if (!ok) abort();
  return ok;
}

void Connection::abort() noexcept {
  stream_->abort();
}

Failure Connection::lost(std::error_code ec) const {
  if (ec == asio::error::eof) return fail(ec, fmt::format("{} closed the connection", ep_.url()));
  return fail(ec, fmt::format("connection to {} lost: {}", ep_.url(), ec.message()));
}

awaitable<Result<std::size_t>> Connection::read_some_with_timeout(std::span<std::byte> into) {
  auto buf = asio::buffer(into.data(), into.size());
  net::IoResult r;
  if (opt_.timeout.count() > 0) {
    asio::steady_timer timer(stream_->get_executor(), opt_.timeout);
    auto raced = co_await (stream_->read_some(buf) || timer.async_wait(use_tuple));
    const auto* read = std::get_if<net::IoResult>(&raced);
    if (!read)  // the timer fired first
      co_return fail(std::errc::timed_out,
                     fmt::format("no reply from {} within {} ms", ep_.url(), opt_.timeout.count()));
    r = *read;
  } else {
    r = co_await stream_->read_some(buf);
  }
  if (r.ec) co_return lost(r.ec);
  co_return r.n;
}

awaitable<Status> Connection::read_exact(std::span<std::byte> into) {
  while (!into.empty()) {
    const auto n = co_await read_some_with_timeout(into);
    if (!n) co_return n.failure();
    into = into.subspan(*n);
  }
  co_return Status{};
}

awaitable<Status> Connection::write(const Bytes& frame) {
  auto [ec, n] = co_await stream_->write(asio::buffer(frame));
  if (ec) co_return lost(ec);
  co_return Status{};
}

awaitable<Status> Connection::handshake() {
  Bytes hello(wire::kPreface.begin(), wire::kPreface.end());
  wire::encode(wire::Hello{wire::kProtocolVersion, wire::kProtocolVersion, opt_.agent}, hello);
  const std::size_t hello_size = hello.size();
  if (opt_.protocol == Protocol::framed)
    hello.insert(hello.end(), opt_.after_hello.begin(), opt_.after_hello.end());
  if (auto w = co_await write(hello); !w) co_return w;

  // A duplex server answers with a WELCOME (or ERROR) frame. The seed's server.py answers any
  // bytes with bytes.upper() of them, so its reply starts with our own preface: then the
  // connection is usable with the raw protocol once the whole echo has been read.
  std::array<std::byte, wire::kHeaderSize> head{};
  if (auto r = co_await read_exact(head); !r) co_return r;
  if (std::equal(wire::kPreface.begin(), wire::kPreface.end(), head.begin())) {
    if (opt_.protocol == Protocol::framed)
      co_return fail(errc::bad_preface,
                     fmt::format("{} is not a duplex server (it echoed the handshake)", ep_.url()));
    Bytes rest(hello_size - head.size());
    if (auto r = co_await read_exact(rest); !r) co_return r;
    framed_ = false;
    step(opt_, "{} echoed the handshake upper-cased: speaking the raw protocol", ep_.url());
    co_return Status{};
  }
  framed_ = true;
  auto space = in_.prepare(head.size());
  std::memcpy(space.data(), head.data(), head.size());
  in_.commit(head.size());
  auto f = co_await read_frame();
  if (!f) co_return std::move(f).failure();
  if (f->type != wire::MsgType::welcome)
    co_return fail(errc::unexpected_message, fmt::format("{} answered the handshake with {}",
                                                         ep_.url(), wire::type_name(f->type)));
  auto w = wire::decode_welcome(f->payload);
  if (!w) co_return fail(errc::bad_message, fmt::format("{} sent a malformed WELCOME", ep_.url()));
  welcome_ = *w;
  step(opt_, "duplex server '{}', protocol {}, frames up to {} bytes", welcome_.agent,
       welcome_.version, welcome_.max_frame);
  co_return Status{};
}

awaitable<Result<Frame>> Connection::read_frame() {
  auto f = co_await read_frame_view();
  if (!f) co_return std::move(f).failure();
  co_return Frame{f->type, Bytes(f->payload.begin(), f->payload.end())};
}

awaitable<Result<FrameView>> Connection::read_frame_view(Divert divert) {
  // Diverting pays from this much payload still to come: below it one copy costs less than the
  // splice's own system calls.
  constexpr std::size_t kDivertFrom = 16 * 1024;
  in_.consume(std::exchange(viewed_, 0));
  const bool diverting = divert.pipe_fd >= 0 && stream_->splices();
  for (;;) {
    auto d = wire::decode_frame(in_.readable(), kClientMaxFrame);
    if (d.status == wire::DecodeStatus::error)
      co_return fail(d.error, fmt::format("bad frame from {}: {}", ep_.url(), d.error.message()));
    if (d.status == wire::DecodeStatus::frame) {
      viewed_ = d.consumed;
      diverted_last_ = false;
      if (d.type != wire::MsgType::error) co_return FrameView{d.type, d.payload};
      auto e = wire::decode_error(d.payload);
      if (!e)
        co_return fail(errc::bad_message, fmt::format("{} sent a malformed ERROR", ep_.url()));
      const auto code = make_error_code(static_cast<errc>(e->code));
      co_return fail(code,
                     fmt::format("{}: {}", ep_.url(), e->text.empty() ? code.message() : e->text));
    }
    // Read at least the rest of the frame in progress, in chunks of 64 KiB or more.
    const auto have = in_.readable();
    std::size_t want = 64 * 1024;
    if (const auto len = wire::announced_length(have)) {
      const std::size_t rest = wire::kHeaderSize + *len - have.size();
      if (diverting && have.size() >= wire::kHeaderSize && rest >= kDivertFrom &&
          static_cast<wire::MsgType>(have[4]) == divert.type && *len <= kClientMaxFrame) {
        if (!write_all(divert.pipe_fd, have.subspan(wire::kHeaderSize)))
          co_return fail(std::errc::broken_pipe, "writing to the pipe: its reader is gone");
        in_.consume(have.size());
        const auto r = co_await stream_->read_spliced(divert.pipe_fd, rest);
        if (r.ec == std::errc::broken_pipe)
          co_return fail(std::errc::broken_pipe, "writing to the pipe: its reader is gone");
        if (r.ec) co_return lost(r.ec);
        diverted_last_ = true;
        co_return FrameView{divert.type, {}, true};
      }
      want = std::max<std::size_t>(want, rest);
    }
    // While payloads are being diverted, take only the next header, so that the payload behind
    // it is not read here (to be copied) but spliced.
    auto space = in_.prepare(want);
    if (diverting && diverted_last_ && have.size() < wire::kHeaderSize)
      space = space.first(wire::kHeaderSize - have.size());
    auto n = co_await read_some_with_timeout(space);
    if (!n) co_return n.failure();
    in_.commit(*n);
  }
}

awaitable<Result<std::string>> Connection::upper(std::string_view msg) {
  if (!framed_) {
    // The seed's protocol has no framing: the reply to N bytes is N bytes.
    const Bytes request(as_bytes(msg).begin(), as_bytes(msg).end());
    if (auto w = co_await write(request); !w) co_return std::move(w).failure();
    std::string reply(msg.size(), '\0');
    if (auto r = co_await read_exact(std::as_writable_bytes(std::span(reply))); !r)
      co_return std::move(r).failure();
    co_return reply;
  }
  if (msg.size() > welcome_.max_frame)
    co_return fail(
        errc::frame_too_large,
        fmt::format("message of {} bytes is larger than the server's frame limit ({} bytes)",
                    msg.size(), welcome_.max_frame));
  Bytes f;
  wire::encode_frame(wire::MsgType::upper_request, as_bytes(msg), f);
  if (auto w = co_await write(f); !w) co_return std::move(w).failure();
  auto r = co_await read_frame();
  if (!r) co_return std::move(r).failure();
  if (r->type != wire::MsgType::upper_reply)
    co_return fail(errc::unexpected_message,
                   fmt::format("{} answered with {} instead of upper_reply", ep_.url(),
                               wire::type_name(r->type)));
  co_return std::string(as_chars(r->payload));
}

}  // namespace duplex::client
