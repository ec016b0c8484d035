// Session lifecycle: registration, the first-byte sniff (raw, framed or TLS), the idle sweep,
// shutdown and refusal over the connection limit.
#include "duplex/server/session.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/net/socket_stream.hpp"
#include "duplex/net/tls_stream.hpp"
#include "duplex/server/chunk.hpp"
#include "duplex/server/framed_session.hpp"
#include "duplex/server/proxy.hpp"
#include "duplex/server/raw_session.hpp"
#include "duplex/wire/proxy_header.hpp"
#include "duplex/wire/sniff.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

constexpr std::string_view kTlsOnlyFramed =
    "this listener takes TLS clients only; connect with tls://HOST:PORT";
constexpr std::string_view kTlsOnlyRaw =
    "duplex: this port takes TLS clients only (try: openssl s_client -connect HOST:PORT)\n";

// The protocol inside the connection (inside TLS too), from its first chunk. Not a coroutine:
// it returns the chosen session's awaitable, so a session's frames are only the ones it uses
// (docs/BENCHMARKS.md: idle connections are counted in bytes). `owner`: the session may be
// handed over to a parked raw loop (null: it may not; see start_session).
awaitable<void> serve_opening(net::Stream& stream, ServerState& state, SessionEntry& entry,
                              Chunk first, std::span<std::byte> wait, wire::Opening opening,
                              bool tls, std::unique_ptr<Session>* owner = nullptr) {
  if (opening == wire::Opening::framed) {
    // Pending until WELCOME (and again during AUTH): the framed session settles itself.
    entry.mode = tls ? "tls+framed" : "framed";
    // A separate coroutine: a frame holds the locals of every branch, and raw sessions must not
    // pay for the framed session's outbox and channels (docs/BENCHMARKS.md).
    return serve_framed(stream, state, entry, std::move(first), wait);
  }
  settle(entry);  // a raw client has spoken: nothing more to wait for before serving it
  if (entry.settings->exec.raw) {
    entry.mode = tls ? "tls+raw-exec" : "raw-exec";
    return serve_raw_exec(stream, state, entry, std::move(first), wait);
  }
  entry.mode = tls ? "tls+raw" : "raw";
  if (owner != nullptr && dynamic_cast<net::SocketStream*>(&stream) != nullptr) {
    // From here the connection's handlers own the session, and the coroutines above it end.
    serve_raw_parked(std::move(*owner), std::move(first));
    return []() -> awaitable<void> { co_return; }();
  }
  return serve_raw(stream, entry, std::move(first), wait, entry.settings->limits.read_chunk,
                   state.upper_round_trip.get());
}

// A plaintext client on a TLS-only listener: told why in its own protocol, then closed.
awaitable<void> refuse_plaintext(net::Stream& stream, SessionEntry& entry, wire::Opening opening) {
  entry.mode = "plaintext-refused";
  spdlog::debug("[c{}] session ({}): a plaintext client on a TLS-only listener", entry.id,
                entry.peer());
  const Bytes frame = error_frame(errc::tls_required, std::string(kTlsOnlyFramed));
  const asio::const_buffer reply = opening == wire::Opening::framed
                                       ? asio::buffer(frame)
                                       : asio::buffer(kTlsOnlyRaw.data(), kTlsOnlyRaw.size());
  asio::steady_timer limit(stream.get_executor(), std::chrono::milliseconds(500));
  auto sent = co_await (stream.write(reply) || limit.async_wait(use_tuple));
  if (sent.index() != 0 || std::get<0>(sent).ec) co_return;
  entry.bytes_out += reply.size();
  // Half-close, then read until the client closes (briefly): closing with its unread bytes in
  // our receive buffer would send a reset, which may destroy the reply before it is read.
  co_await stream.shutdown_send();
  limit.expires_after(std::chrono::milliseconds(500));
  std::array<std::byte, 512> sink{};
  for (;;) {
    auto r = co_await (stream.read_some(asio::buffer(sink)) || limit.async_wait(use_tuple));
    if (r.index() != 0 || std::get<0>(r).ec) co_return;
  }
}

// How long the TLS handshake may take from now: what is left of the auth deadline since accept.
std::chrono::milliseconds handshake_budget(const SessionEntry& entry) {
  using std::chrono::milliseconds;
  if (entry.settings->limits.auth_deadline.count() == 0) {
    // No deadline asked for: still never wait forever for a handshake.
    return entry.settings->limits.idle_timeout.count() != 0 ? entry.settings->limits.idle_timeout
                                                            : milliseconds(std::chrono::minutes(5));
  }
  return std::chrono::duration_cast<milliseconds>(entry.deadline - Clock::now());
}

// A TLS ClientHello on a listener with TLS: the handshake (within the auth deadline), then the
// connection's own protocol inside it, sniffed from its first decrypted byte. `stream` becomes
// the TLS stream, so that the idle sweep, the early drop and the stop close the right one.
awaitable<void> serve_tls(std::unique_ptr<net::Stream>& stream, ServerState& state,
                          SessionEntry& entry, Chunk first, std::span<std::byte> wait) {
  entry.mode = "tls";
  auto* plain = dynamic_cast<net::SocketStream*>(stream.get());
  if (plain == nullptr) co_return;  // not a socket (tests' memory streams): no TLS to speak
  if (entry.settings->limits.auth_deadline.count() != 0)
    entry.deadline = entry.started + entry.settings->limits.auth_deadline;
  const auto budget = handshake_budget(entry);
  if (budget.count() <= 0) co_return;
  net::Peer peer = plain->peer();
  net::ConnectedSocket socket = std::move(*plain).release();
  std::unique_ptr<net::TlsStream> tls;
  try {
    tls = std::visit(
        [&](auto& s) {
          using Socket = std::decay_t<decltype(s)>;
          return std::make_unique<net::TlsStream>(
              asio::ssl::stream<Socket>(std::move(s), *state.tls), std::move(peer));
        },
        socket);
  } catch (const std::system_error& e) {  // SSL_new failed: out of memory
    spdlog::warn("[c{}] session ({}): cannot start TLS: {}", entry.id, entry.peer(),
                 e.code().message());
    co_return;
  }
  net::TlsStream& t = *tls;
  stream = std::move(tls);
  entry.stream = &t;
  auto shaken = co_await t.handshake(asio::ssl::stream_base::server,
                                     asio::buffer(first.bytes.data(), first.bytes.size()), budget);
  first.pooled.release();
  if (!shaken) {
    spdlog::debug("[c{}] session ({}): {}", entry.id, entry.peer(), shaken.message());
    co_return;
  }
  // The handshake is what the deadline bounds here: what the client says inside TLS, and when,
  // is the inner protocol's business (a framed session sets its own deadline).
  entry.deadline = Clock::time_point::max();
  spdlog::debug("[c{}] session ({}): {}{}{}", entry.id, entry.peer(), t.description(),
                t.session_reused() ? ", resumed" : "",
                t.peer().key_fingerprint.empty() ? "" : ", client key " + t.peer().key_fingerprint);
  auto [ec, m] = co_await t.read_some(asio::buffer(wait.data(), wait.size()));
  if (ec) co_return;
  Chunk inner = take_chunk(t, wait, m, entry.settings->limits.read_chunk);
  entry.bytes_in += inner.bytes.size();
  entry.last_read = Clock::now();
  // Inside TLS a 0x16 is only a typed ^V: raw.
  auto opening = wire::sniff(inner.bytes[0]);
  if (opening == wire::Opening::tls) opening = wire::Opening::raw;
  co_await serve_opening(t, state, entry, std::move(inner), wait, opening, true);
  // close_notify (bounded): clients such as socat and s_client see a clean end, and a client's
  // session stays resumable.
  if (t.is_open()) co_await t.shutdown_send();
}

// `owner`: as serve_opening's; the session must not be touched once it is handed over.
awaitable<void> serve(Session& session, std::unique_ptr<Session>* owner) {
  std::unique_ptr<net::Stream>& stream = session.stream;
  ServerState& state = session.state;
  SessionEntry& entry = session.entry;
  const std::span<std::byte> wait(session.wait);
  // Before the first byte a connection is held only by the early drop and the idle timeout: the
  // tutorial's client connects, then waits for its user to type.
  auto [ec, n] = co_await stream->read_some(asio::buffer(wait.data(), wait.size()));
  if (ec) co_return;  // closed before saying anything
  Chunk first = take_chunk(*stream, wait, n, entry.settings->limits.read_chunk);
  entry.bytes_in += first.bytes.size();
  entry.last_read = Clock::now();
  const wire::Opening opening = wire::sniff(first.bytes[0]);
  if (opening == wire::Opening::tls && state.tls)
    co_return co_await serve_tls(stream, state, entry, std::move(first), wait);
  if (opening == wire::Opening::tls) {
    // A TLS client on a listener without TLS: answer with a TLS alert (RFC 8446 §6:
    // handshake_failure, fatal) so that it reports a handshake failure instead of reading our
    // upper-cased echo of its ClientHello as garbage.
    entry.mode = "tls-refused";
    spdlog::debug("[c{}] session ({}): a TLS client, and this listener has no TLS", entry.id,
                  entry.peer());
    static constexpr std::byte kAlert[] = {std::byte{0x15}, std::byte{0x03}, std::byte{0x03},
                                           std::byte{0x00}, std::byte{0x02}, std::byte{0x02},
                                           std::byte{0x28}};
    co_await stream->write(asio::buffer(kAlert));
    co_return;
  }
  // A PROXY header from a peer not trusted to send one: refused, never believed.
  if (entry.settings->proxy.enabled && !entry.listener.from_trusted_proxy &&
      wire::starts_with_proxy_signature(first.bytes)) {
    entry.mode = "proxy-refused";
    refuse_untrusted_header(state, entry);
    co_return;
  }
  if (entry.listener.tls_only) co_return co_await refuse_plaintext(*stream, entry, opening);
  co_await serve_opening(*stream, state, entry, std::move(first), wait, opening, false, owner);
}

}  // namespace

void settle(SessionEntry& entry) noexcept {
  if (!entry.pending) return;
  entry.pending = false;
  if (entry.pending_set != nullptr) entry.pending_set->remove(entry.pending_key);
}

void unsettle(SessionEntry& entry) {
  if (entry.pending) return;
  entry.pending = true;
  if (entry.pending_set != nullptr && entry.worker != nullptr)
    entry.pending_key = entry.pending_set->add(*entry.worker, entry.id, entry.peer());
}

void Worker::close_all() noexcept {
  for (auto* s : sessions)
    s->stream->close();
}

namespace {
// The shorter of the two sets the pace: a deadline is kept to within a quarter of itself.
std::chrono::milliseconds sweep_period(std::chrono::milliseconds timeout,
                                       std::chrono::milliseconds deadline) {
  using std::chrono::milliseconds;
  const milliseconds basis = timeout.count() == 0    ? deadline
                             : deadline.count() == 0 ? timeout
                                                     : std::min(timeout, deadline);
  return std::clamp<milliseconds>(basis / 4, milliseconds(50), milliseconds(1000));
}
}  // namespace

awaitable<void> Worker::idle_sweep(std::chrono::milliseconds timeout,
                                   std::chrono::milliseconds deadline) {
  const auto period = sweep_period(timeout, deadline);
  asio::steady_timer timer(*ctx);
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
    sweep(Clock::now(), timeout);
  }
}

awaitable<void> Worker::idle_sweep(const SettingsCell& settings) {
  asio::steady_timer timer(*ctx);
  for (;;) {
    const Limits limits = settings.get()->limits;
    timer.expires_after(sweep_period(limits.idle_timeout, limits.auth_deadline));
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
    sweep(Clock::now(), settings.get()->limits.idle_timeout);
  }
}

void Worker::sweep(Clock::time_point now, std::chrono::milliseconds timeout) {
  const auto cutoff = now - timeout;
  for (auto* s : sessions) {
    if (s->deadline <= now) {
      // Still not through TLS, HELLO or AUTH in time: a trickle of bytes does not buy time.
      spdlog::debug("[c{}] session ({}): not authenticated within the deadline", s->id, s->peer());
      s->deadline = Clock::time_point::max();
      s->stream->close();
    } else if (timeout.count() == 0) {
      continue;
    } else if (s->idle_expired) {
      s->stream->close();  // told a period ago and still here (e.g. it does not read): drop it
    } else if (s->last_read < cutoff && !s->busy) {
      s->idle_expired = true;
      s->stream->cancel();
    }
  }
}

Session::Session(std::unique_ptr<net::Stream> s, ServerState& st, Worker& w,
                 ListenerTraits listener, std::shared_ptr<const Settings> settings)
    : stream(std::move(s)), state(st) {
  entry.id = state.next_id.fetch_add(1, std::memory_order_relaxed);
  entry.started = entry.last_read = Clock::now();
  entry.stream = stream.get();
  entry.listener = std::move(listener);
  entry.settings = settings ? std::move(settings) : state.settings.get();
  entry.worker = &w;
  w.sessions.push_front(&entry);
  registered = w.sessions.begin();
}

// Runs on every way out, including cancellation at shutdown.
Session::~Session() {
  if (entry.idle_expired) spdlog::debug("[c{}] session ({}): idle timeout", entry.id, entry.peer());
  stream->close();
  spdlog::debug("[c{}] session ({}): closed, {} bytes in, {} bytes out", entry.id, entry.peer(),
                entry.bytes_in, entry.bytes_out);
  settle(entry);
  entry.worker->sessions.erase(registered);
  state.bytes_in_closed.fetch_add(entry.bytes_in, std::memory_order_relaxed);
  state.bytes_out_closed.fetch_add(entry.bytes_out, std::memory_order_relaxed);
  proxied.reset();
  if (counted) state.per_address.give_back(stream->peer().client_key);
  if (state.live.fetch_sub(1) == 1 && state.stopping.load() && state.on_drained) state.on_drained();
}

namespace {

// The session's coroutine, from registration to its protocol. `may_park`: see start_session.
awaitable<void> open_session(std::unique_ptr<net::Stream> stream, ServerState& state,
                             Worker& worker, ListenerTraits listener,
                             std::shared_ptr<const Settings> settings, bool counted,
                             bool may_park) {
  auto session = std::make_unique<Session>(std::move(stream), state, worker, std::move(listener),
                                           std::move(settings));
  Session& s = *session;
  s.counted = counted;
  // Pending until its protocol is settled; at the cap, the oldest pending one is dropped.
  s.entry.pending_set = &state.pending;
  s.entry.pending_key = state.pending.add(worker, s.entry.id, s.entry.peer());
  spdlog::debug("[c{}] session from {}: open", s.entry.id, s.entry.peer());
  // Behind a load balancer: its header first, then the client it names is the peer.
  if (s.entry.listener.from_trusted_proxy) {
    s.proxied = co_await accept_proxy_header(*s.stream, state, s.entry);
    if (!s.proxied) co_return;
  }
  co_await serve(s, may_park ? &session : nullptr);
}

}  // namespace

void start_session(std::unique_ptr<net::Stream> stream, ServerState& state, Worker& worker,
                   ListenerTraits listener, std::shared_ptr<const Settings> settings,
                   bool counted) {
  auto ex = stream->get_executor();
  asio::co_spawn(ex,
                 open_session(std::move(stream), state, worker, std::move(listener),
                              std::move(settings), counted, true),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& x) {
                     spdlog::error("session ended by an unexpected error: {}", x.what());
                   }
                 });
}

awaitable<void> run_session(std::unique_ptr<net::Stream> stream, ServerState& state, Worker& worker,
                            ListenerTraits listener, std::shared_ptr<const Settings> settings) {
  return open_session(std::move(stream), state, worker, std::move(listener), std::move(settings),
                      false, false);
}

}  // namespace duplex::server
