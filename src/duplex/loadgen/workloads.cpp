// Workloads: the per-connection loops. Latency runs from when an exchange was due (the pacer's
// time with --rate, else when it started) to when its reply was whole.
#include "duplex/loadgen/workloads.hpp"

#include <optional>

#include "duplex/client/datagram_client.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/loadgen/exchange.hpp"
#include "duplex/loadgen/exec_client.hpp"
#include "duplex/loadgen/pacing.hpp"

namespace duplex::loadgen {
namespace {

// A connection that failed waits this long before it dials again, so that a server that refuses
// is not hammered by a busy loop.
constexpr auto kReconnectPause = std::chrono::milliseconds(20);

std::optional<Pacer> pacer_for(const Worker& w, const Slot& s) {
  if (!w.opt().rate) return std::nullopt;
  return Pacer(Clock::now(), *w.opt().rate, w.opt().connections, s.index);
}

// When the next exchange is due: the pacer's time (waiting for it), or now. nullopt: the run ended.
awaitable<std::optional<Clock::time_point>> next_due(Worker& w, Slot& s,
                                                     std::optional<Pacer>& pacer) {
  if (!pacer) co_return w.stopping() ? std::nullopt : std::optional(Clock::now());
  const auto due = pacer->next();
  if (due > Clock::now() && !co_await w.sleep_until(s, due)) co_return std::nullopt;
  if (w.stopping()) co_return std::nullopt;
  co_return due;
}

// Counts an exchange that did not end ok. False when the run is ending (not an error).
bool failed(Worker& w, Slot& s, Outcome o, const Exchanger& ex) {
  if (o == Outcome::aborted) {
    if (!s.timed_out) return false;
    w.error(ErrorKind::timeout, "no reply within the timeout");
    return true;
  }
  const auto kind = o == Outcome::lost     ? ErrorKind::reset
                    : o == Outcome::verify ? ErrorKind::verify
                                           : ErrorKind::protocol;
  w.error(kind, ex.detail());
  return true;
}

Message message_for(const Worker& w, const Slot& s) {
  return make_message(w.opt().size, static_cast<std::uint32_t>(s.index), w.opt().verify,
                      w.plan().framed);
}

ErrorKind kind_of(const Failure& f, bool timed_out) {
  if (timed_out || f.code == std::errc::timed_out) return ErrorKind::timeout;
  if (client::is_connection_failure(f)) return ErrorKind::reset;
  return ErrorKind::protocol;
}

}  // namespace

awaitable<void> pingpong(Worker& w, Slot& s) {
  const Message m = message_for(w, s);
  Exchanger ex;
  std::optional<Pacer> pacer;
  while (!w.stopping()) {
    auto conn = co_await w.connect(s);
    if (!conn) {
      co_await w.sleep_until(s, Clock::now() + kReconnectPause);
      continue;
    }
    if (!pacer) pacer = pacer_for(w, s);
    for (;;) {
      const auto due = co_await next_due(w, s, pacer);
      if (!due) break;
      w.busy(s, &conn->stream());
      const auto o = co_await ex.run(conn->stream(), m);
      w.idle(s);
      if (o == Outcome::ok) {
        w.done(*due, Clock::now(), m.payload_size);
        continue;
      }
      failed(w, s, o, ex);
      break;
    }
    s.stream = nullptr;
    conn->stream().close();
  }
}

awaitable<void> datagram_pingpong(Worker& w, Slot& s) {
  const std::string payload = make_payload(w.opt().size, static_cast<std::uint32_t>(s.index));
  const std::string expected = expected_reply(payload, w.opt().verify);
  client::DatagramOptions dopt;
  dopt.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(w.opt().timeout);
  dopt.retries = 0;  // a lost datagram is an error, not something to hide by sending it again
  auto c = co_await client::DatagramClient::open(w.opt().endpoint, dopt);
  if (!c) {
    w.error(ErrorKind::connect, c.message());
    co_return;
  }
  auto pacer = pacer_for(w, s);
  for (;;) {
    const auto due = co_await next_due(w, s, pacer);
    if (!due) break;
    auto r = co_await c->request(payload);
    if (w.stopping()) break;
    if (!r) {
      w.error(kind_of(r.failure(), false), r.message());
      continue;
    }
    if (r->empty() || !reply_matches(w.opt().verify, expected, r->front().payload)) {
      w.error(ErrorKind::verify, "the reply is not the expected bytes");
      continue;
    }
    w.done(*due, Clock::now(), payload.size());
  }
}

awaitable<void> storm(Worker& w, Slot& s) {
  const Message m = message_for(w, s);
  Exchanger ex;
  auto pacer = pacer_for(w, s);
  for (;;) {
    const auto due = co_await next_due(w, s, pacer);
    if (!due) break;
    auto conn = co_await w.connect(s);
    if (!conn) {
      if (!pacer) co_await w.sleep_until(s, Clock::now() + kReconnectPause);
      continue;
    }
    w.busy(s, &conn->stream());
    const auto o = co_await ex.run(conn->stream(), m);
    w.idle(s);
    if (o == Outcome::ok) {
      co_await conn->finish();
      s.stream = nullptr;
      w.done(*due, Clock::now(), m.payload_size);
      continue;
    }
    s.stream = nullptr;
    conn->stream().close();
    if (!failed(w, s, o, ex)) break;
  }
}

awaitable<void> idle(Worker& w, Slot& s) {
  const Message m = message_for(w, s);
  Exchanger ex;
  co_await w.enter_opening();
  const auto started = Clock::now();
  auto conn = co_await w.connect(s);
  if (!conn) {
    w.leave_opening();
    w.plan().idle_ready();
    co_return;
  }
  w.busy(s, &conn->stream());
  const auto o = co_await ex.run(conn->stream(), m);
  w.idle(s);
  w.leave_opening();
  if (o == Outcome::ok) {
    w.done(started, Clock::now(), m.payload_size);
  } else {
    failed(w, s, o, ex);
  }
  w.plan().idle_ready();
  if (o == Outcome::ok) {
    // Held until the engine stops the worker; the timer is what stop() cancels.
    co_await w.sleep_until(s, Clock::now() + std::chrono::hours(24 * 365));
  }
  s.stream = nullptr;
  conn->stream().close();
}

awaitable<void> exec(Worker& w, Slot& s) {
  const Bytes frames = exec_frames(w.opt().command);
  auto pacer = pacer_for(w, s);
  std::optional<client::Connection> conn;
  for (;;) {
    const auto due = co_await next_due(w, s, pacer);
    if (!due) break;
    if (!conn) {
      auto c = co_await w.connect(s);
      if (!c) {
        if (!pacer) co_await w.sleep_until(s, Clock::now() + kReconnectPause);
        continue;
      }
      conn.emplace(std::move(*c));
      w.busy(s, &conn->stream());
      auto ok = co_await authenticate(*conn, w.opt().token);
      w.idle(s);
      if (!ok) {
        s.stream = nullptr;
        conn.reset();
        if (w.stopping() && !s.timed_out) break;
        w.error(ErrorKind::connect, ok.message());
        if (!pacer) co_await w.sleep_until(s, Clock::now() + kReconnectPause);
        continue;
      }
    }
    w.busy(s, &conn->stream());
    auto r = co_await run_command(*conn, frames);
    w.idle(s);
    bool keep = static_cast<bool>(r) && !w.opt().new_connection;
    if (r) {
      w.done(*due, Clock::now(), 0);
    } else if (!(w.stopping() && !s.timed_out)) {
      // A command that did not exit 0 leaves a usable connection; anything else does not.
      keep = r.error() == errc::exec_failed && !w.opt().new_connection;
      w.error(
          r.error() == errc::exec_failed ? ErrorKind::protocol : kind_of(r.failure(), s.timed_out),
          r.message());
    }
    if (!keep) {
      if (r) co_await conn->finish();
      s.stream = nullptr;
      conn.reset();
    }
  }
  if (conn) {
    s.stream = nullptr;
    conn->stream().close();
  }
}

}  // namespace duplex::loadgen
