// Raw sessions: the tutorial's loop (read, upper-case, write) and its remote-control variant.
#include "duplex/server/raw_session.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "duplex/services/exec.hpp"
#include "duplex/services/upper.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

// Completes only when a raw peer has vanished (reset or error) while its command waits or runs;
// the command is then ended. A FIN is not that: it means "no more commands" (the reply still
// goes out, then the connection closes), so after one this waits until cancelled. A peer that
// vanishes after its FIN is noticed when the reply is written. Data that arrives (a pipelined
// command) is left for the next read.
awaitable<void> peer_vanished(net::Stream& stream) {
  const auto ec = co_await stream.wait_hangup();
  if (ec != asio::error::eof) co_return;
  asio::steady_timer never(stream.get_executor(), asio::steady_timer::time_point::max());
  co_await never.async_wait(use_tuple);
}

}  // namespace

// The seed's protocol: every chunk read is answered with bytes.upper() of it.
awaitable<void> serve_raw(net::Stream& stream, SessionEntry& entry, Chunk got,
                          std::span<std::byte> wait, std::size_t chunk,
                          LatencyHistogram* round_trip) {
  for (;;) {
    services::to_upper_in_place(got.bytes);
    const asio::const_buffer reply = asio::buffer(got.bytes.data(), got.bytes.size());
    auto [wec, written] = co_await stream.write(std::span(&reply, 1));
    if (wec) co_return;
    entry.bytes_out += written;
    if (round_trip != nullptr) round_trip->observe(Clock::now() - entry.last_read);
    got.pooled.release();  // waiting, the connection holds only its small wait buffer
    auto [rec, n] = co_await stream.read_some(asio::buffer(wait.data(), wait.size()));
    // EOF: everything was answered, and the session's close sends our FIN (nothing is left
    // unread, so it is no reset).
    if (rec) co_return;
    got = take_chunk(stream, wait, n, chunk);
    entry.bytes_in += got.bytes.size();
    entry.last_read = Clock::now();
  }
}

namespace {

void reply_parked(std::unique_ptr<Session> s, Chunk got);

// The parked loop runs only over a SocketStream (serve_raw_parked); the handlers keep the
// session alone, not a second pointer to its stream, for an idle read is kept per connection.
net::SocketStream& socket_of(Session& s) noexcept {
  return static_cast<net::SocketStream&>(*s.stream);
}

// A handler that escapes would stop the worker's event loop: the session ends instead, as a
// coroutine session's unexpected error does.
template <typename Step>
void guarded(Step&& step) noexcept {
  try {
    std::forward<Step>(step)();
  } catch (const std::exception& x) {
    spdlog::error("session ended by an unexpected error: {}", x.what());
  }
}

// Waits for the next chunk in a read into the session's wait buffer: no system call more than
// the coroutine's read (Asio tries the read first, and registers no new interest to wait).
void read_parked(std::unique_ptr<Session> s) {
  net::SocketStream& socket = socket_of(*s);
  const auto into = asio::buffer(s->wait);
  socket.async_read_some(into, [s = std::move(s)](net::IoResult r) mutable {
    // EOF: everything was answered, and the session's end sends our FIN (nothing is left
    // unread, so it is no reset). Cancelled by the idle sweep or closed: it ends too.
    if (r.ec) return;
    guarded([&] {
      Chunk got = take_chunk(*s->stream, s->wait, r.n, s->entry.settings->limits.read_chunk);
      s->entry.bytes_in += got.bytes.size();
      s->entry.last_read = Clock::now();
      reply_parked(std::move(s), std::move(got));
    });
  });
}

void reply_parked(std::unique_ptr<Session> s, Chunk got) {
  services::to_upper_in_place(got.bytes);
  const auto reply = asio::buffer(got.bytes.data(), got.bytes.size());
  net::SocketStream& socket = socket_of(*s);
  socket.async_write(reply, [s = std::move(s), got = std::move(got)](net::IoResult r) mutable {
    if (r.ec) return;
    guarded([&] {
      s->entry.bytes_out += r.n;
      if (auto* round_trip = s->state.upper_round_trip.get(); round_trip != nullptr)
        round_trip->observe(Clock::now() - s->entry.last_read);
      got.pooled.release();  // waiting, the connection holds only its small wait buffer
      read_parked(std::move(s));
    });
  });
}

}  // namespace

void serve_raw_parked(std::unique_ptr<Session> session, Chunk first) {
  reply_parked(std::move(session), std::move(first));
}

// The seed's remote_server.py protocol (--raw-exec): each chunk received is a shell command; the
// reply is its stdout then its stderr. Only on loopback and Unix sockets (checked at start-up).
awaitable<void> serve_raw_exec(net::Stream& stream, ServerState& state, SessionEntry& entry,
                               Chunk input, std::span<std::byte> wait) {
  // The same per-client key as the framed protocol: "uid:N" on a Unix socket, else the address.
  const std::string& key = stream.peer().client_key;
  for (;;) {
    std::string command(reinterpret_cast<const char*>(input.bytes.data()), input.bytes.size());
    input.pooled.release();
    Bytes reply;
    // Waiting for a slot is not idleness: the idle sweep leaves a busy session alone.
    entry.busy = true;
    auto slot =
        co_await (state.commands.acquire(key, entry.settings->exec) || peer_vanished(stream));
    if (slot.index() == 1) {
      entry.busy = false;
      spdlog::info("[c{}] exec (raw): peer={} went away while its command {:?} waited", entry.id,
                   entry.peer(), command);
      co_return;
    }
    if (auto& got = std::get<0>(slot); !got) {
      entry.busy = false;
      const std::string msg = "duplex: " + got.message() + "\n";
      reply.assign(as_bytes(msg).begin(), as_bytes(msg).end());
    } else {
      // DUPLEX_CLIENT for the command; a raw client has no identity to tell.
      const auto began = Clock::now();
      auto r = co_await (services::run_raw_command(command, entry.settings->exec.policy,
                                                   services::ExecOrigin::of(stream.peer())) ||
                         peer_vanished(stream));
      entry.busy = false;
      got->release();
      if (r.index() == 1) {
        // Cancelling run_raw_command destroyed the command: its group was killed and reaped.
        spdlog::info("[c{}] exec (raw): peer={} went away; command {:?} ended", entry.id,
                     entry.peer(), command);
        co_return;
      }
      reply = std::move(std::get<0>(r));
      if (state.command_duration) state.command_duration->observe(Clock::now() - began);
      spdlog::info("[c{}] exec (raw): peer={} command={:?} reply={} bytes", entry.id, entry.peer(),
                   command, reply.size());
    }
    auto [wec, written] = co_await stream.write(asio::buffer(reply));
    if (wec) co_return;
    entry.bytes_out += written;
    auto [rec, n] = co_await stream.read_some(asio::buffer(wait.data(), wait.size()));
    if (rec) {
      if (rec == asio::error::eof) co_await stream.shutdown_send();
      co_return;
    }
    input = take_chunk(stream, wait, n, entry.settings->limits.read_chunk);
    entry.bytes_in += input.bytes.size();
    entry.last_read = Clock::now();
  }
}

}  // namespace duplex::server
