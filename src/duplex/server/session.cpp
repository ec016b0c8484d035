// Session lifecycle: registration, the first-byte sniff (raw, framed or TLS), the idle sweep,
// shutdown and refusal over the connection limit.
#include "duplex/server/session.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "duplex/server/buffer_pool.hpp"
#include "duplex/server/framed_session.hpp"
#include "duplex/server/raw_session.hpp"
#include "duplex/wire/sniff.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

awaitable<void> serve(net::Stream& stream, ServerState& state, SessionEntry& entry) {
  if (auto [wec] = co_await stream.wait_readable(); wec) co_return;
  PooledBuffer first(state.limits.read_chunk);
  auto [ec, n] = co_await stream.read_some(asio::buffer(first.data(), first.size()));
  if (ec) co_return;  // closed before saying anything
  entry.bytes_in += n;
  entry.last_read = Clock::now();
  const wire::Opening opening = wire::sniff(first.data()[0]);
  if (opening == wire::Opening::tls) {
    // A TLS client on a listener without TLS: answer with a TLS alert (RFC 8446 §6:
    // handshake_failure, fatal) so that it reports a handshake failure instead of reading our
    // upper-cased echo of its ClientHello as garbage.
    entry.mode = "tls-refused";
    spdlog::debug("session {} ({}): a TLS client, and this listener has no TLS", entry.id,
                  entry.peer);
    static constexpr std::byte kAlert[] = {std::byte{0x15}, std::byte{0x03}, std::byte{0x03},
                                           std::byte{0x00}, std::byte{0x02}, std::byte{0x02},
                                           std::byte{0x28}};
    co_await stream.write(asio::buffer(kAlert));
    co_return;
  }
  if (opening == wire::Opening::raw && state.exec.raw) {
    entry.mode = "raw-exec";
    co_return co_await serve_raw_exec(stream, state, entry, std::move(first), n);
  }
  if (opening == wire::Opening::raw) {
    entry.mode = "raw";
    co_return co_await serve_raw(stream, entry, std::move(first), n, state.limits.read_chunk);
  }
  entry.mode = "framed";
  // A separate coroutine: a frame holds the locals of every branch, and raw sessions must not
  // pay for the framed session's outbox and channels (docs/BENCHMARKS.md).
  co_await serve_framed(stream, state, entry, std::move(first), n);
}

}  // namespace

void settle(SessionEntry& entry) noexcept {
  entry.pending = false;
}

void Worker::close_all() noexcept {
  for (auto* s : sessions)
    s->stream->close();
}

awaitable<void> Worker::idle_sweep(std::chrono::milliseconds timeout,
                                   std::chrono::milliseconds deadline) {
  using std::chrono::milliseconds;
  // The shorter of the two sets the pace: a deadline is kept to within a quarter of itself.
  const milliseconds basis = timeout.count() == 0    ? deadline
                             : deadline.count() == 0 ? timeout
                                                     : std::min(timeout, deadline);
  const auto period = std::clamp<milliseconds>(basis / 4, milliseconds(50), milliseconds(1000));
  asio::steady_timer timer(*ctx);
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
    const auto now = Clock::now();
    const auto cutoff = now - timeout;
    for (auto* s : sessions) {
      if (s->deadline <= now) {
        // Still not through TLS, HELLO or AUTH in time: a trickle of bytes does not buy time.
        spdlog::debug("session {} ({}): not authenticated within the deadline", s->id, s->peer);
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
}

awaitable<void> run_session(std::unique_ptr<net::Stream> stream, ServerState& state, Worker& worker,
                            ListenerTraits listener) {
  SessionEntry entry;
  entry.id = state.next_id.fetch_add(1, std::memory_order_relaxed);
  entry.peer = stream->peer().address;
  entry.started = entry.last_read = Clock::now();
  entry.stream = stream.get();
  entry.listener = listener;
  worker.sessions.push_front(&entry);
  // Unregisters on every way out, including cancellation at shutdown.
  struct Registration {
    Worker& w;
    ServerState& st;
    std::list<SessionEntry*>::iterator it;
    ~Registration() {
      w.sessions.erase(it);
      if (st.live.fetch_sub(1) == 1 && st.stopping.load() && st.on_drained) st.on_drained();
    }
  } registration{worker, state, worker.sessions.begin()};
  spdlog::debug("session {} from {}: open", entry.id, entry.peer);

  co_await serve(*stream, state, entry);
  if (entry.idle_expired) spdlog::debug("session {} ({}): idle timeout", entry.id, entry.peer);
  stream->close();
  spdlog::debug("session {} ({}): closed, {} bytes in, {} bytes out", entry.id, entry.peer,
                entry.bytes_in, entry.bytes_out);
}

awaitable<void> reject_session(std::unique_ptr<net::Stream> stream) {
  // Give a framed client a moment to show its first byte, so that it can be told why.
  asio::steady_timer limit(stream->get_executor(), std::chrono::milliseconds(500));
  std::array<std::byte, 64> first{};
  auto r = co_await (stream->read_some(asio::buffer(first)) || limit.async_wait(use_tuple));
  if (r.index() == 0) {
    auto [ec, n] = std::get<0>(r);
    if (!ec && n > 0 && first[0] == std::byte{0}) {
      auto f = error_frame(errc::too_many_connections, "too many connections; try again later");
      limit.expires_after(std::chrono::milliseconds(500));
      co_await (stream->write(asio::buffer(f)) || limit.async_wait(use_tuple));
    }
  }
  stream->close();
}

}  // namespace duplex::server
