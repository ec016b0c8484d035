// Stream front: the accept loop. Runs on the control loop; sessions run on the workers.
#include "duplex/server/stream_front.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <exception>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/net/listener.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/proc/unique_fd.hpp"
#include "duplex/server/admission.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/refusals.hpp"
#include "duplex/server/session.hpp"
#include "duplex/server/state.hpp"

namespace duplex::server {
namespace {

using net::use_tuple;
using std::chrono::milliseconds;

proc::UniqueFd open_spare() noexcept {
  return proc::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

// Where the accept loop runs. With one worker, on that worker: a connection is then accepted,
// admitted and served on one thread, without waking another thread for each one (about a third
// of the server's CPU per connection, docs/BENCHMARKS.md). With several, on the control loop,
// which deals the connections out to them.
asio::io_context& accept_context(const FrontContext& ctx) {
  return ctx.pool.size() == 1 ? *ctx.pool.worker(0).ctx : ctx.control;
}

class StreamFront final : public Front {
 public:
  StreamFront(net::Listener listener, const FrontContext& ctx)
      : listener_(std::move(listener)),
        ctx_(ctx),
        loop_(accept_context(ctx)),
        backoff_timer_(loop_) {
    traits_.tls_only = listener_.endpoint().tls || ctx.state.tls_only;
    traits_.loopback = net::bound_to_loopback(listener_.native_handle());
    traits_.url = std::make_shared<const std::string>(url());
  }

  const net::Endpoint& endpoint() const noexcept override { return listener_.endpoint(); }
  bool loopback() const noexcept override { return traits_.loopback; }

  void start() override {
    asio::co_spawn(loop_, accept_loop(), [url = url()](std::exception_ptr e) {
      if (e) spdlog::error("accept loop on {} ended unexpectedly", url);
    });
  }

  void close() noexcept override {
    // On the accept loop's thread (at once when that is this one): the listener and the timer
    // are not thread-safe.
    asio::dispatch(loop_, [this] {
      listener_.close();
      backoff_timer_.cancel();  // a loop backing off from EMFILE ends now, not up to 1 s later
    });
  }

 private:
  awaitable<void> accept_loop();
  void admit(std::unique_ptr<net::Stream> stream, Worker& worker);
  void refuse(std::unique_ptr<net::Stream> stream, errc code, std::string text);
  void log_refusal(Refusal kind, const std::string& peer, std::string why);
  void shed_one();

  net::Listener listener_;
  FrontContext ctx_;
  asio::io_context& loop_;  // where the accept loop runs: accept_context()
  ListenerTraits traits_;
  asio::steady_timer backoff_timer_;
  // Held so that when accept fails for want of fds, one can be freed to accept-and-close a client.
  proc::UniqueFd spare_ = open_spare();
};

awaitable<void> StreamFront::accept_loop() {
  auto backoff = kFirstBackoff;
  for (;;) {
    Worker& worker = ctx_.pool.next();
    auto accepted = co_await listener_.accept(worker.ctx->get_executor());
    const std::error_code ec = accepted.error();
    if (ctx_.state.stopping.load()) co_return;
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Asio 1.22's own "asio.system" category does not compare equal to std::errc: use errno
      // values.
      const int e = ec.value();
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        // The first failure may be a moment's shortage (sessions are closing and their fds come
        // back within the pause): wait it out. Only a shortage that outlasts a pause sheds the
        // client at the head of the backlog, which would otherwise be the next one served.
        const bool shed = backoff > kFirstBackoff;
        spdlog::warn("accept on {}: {}; {}pausing {} ms", url(), ec.message(),
                     shed ? "shedding a connection and " : "", backoff.count());
        if (shed) shed_one();
        backoff_timer_.expires_after(backoff);
        co_await backoff_timer_.async_wait(use_tuple);
        backoff = std::min(backoff * 2, kMaxBackoff);
      }
      continue;  // ECONNABORTED and friends: that client is gone, the next one is fine
    }
    backoff = kFirstBackoff;
    admit(std::move(*accepted), worker);
  }
}

void StreamFront::admit(std::unique_ptr<net::Stream> stream, Worker& worker) {
  ServerState& state = ctx_.state;
  const auto settings = state.settings.get();  // what this connection is admitted under
  const Limits& limits = settings->limits;
  const net::Peer& peer = stream->peer();
  // A trusted balancer's address is not its clients': the penalty box, the reserved slots and
  // the per-address cap judge the client its header names, once it has come (proxy.hpp).
  ListenerTraits traits = traits_;
  traits.from_trusted_proxy = settings->proxy.trusts(peer);
  const bool via_proxy = traits.from_trusted_proxy;
  // An address that kept failing authentication is refused for a while (sshd's
  // PerSourcePenalties): before it costs a session, a buffer or a handshake.
  if (const auto left =
          via_proxy ? std::chrono::milliseconds(0) : state.penalties.refused_for(peer.client_key);
      left.count() > 0) {
    state.penalised.fetch_add(1, std::memory_order_relaxed);
    const auto secs = std::chrono::ceil<std::chrono::seconds>(left).count();
    log_refusal(
        Refusal::penalised, peer.address,
        fmt::format("too many failed authentications from {} ({} s left)", peer.client_key, secs));
    refuse(std::move(stream), errc::penalised,
           fmt::format("too many failed authentications from {}; try again in {} s",
                       peer.client_key, secs));
    return;
  }
  // Only this thread adds to `live` (every accept loop runs on one thread: accept_context), so
  // the check cannot be overtaken by another accept. The last few slots are the owner's: others
  // filling the server cannot lock it out.
  const bool trusted = !via_proxy && trusted_transport(peer, settings->exec.auth);
  const std::size_t reserved = trusted ? 0 : reserved_slots(limits);
  const std::size_t live = state.live.load();
  if (live + reserved >= limits.max_connections) {
    state.rejected.fetch_add(1, std::memory_order_relaxed);
    std::string why;
    if (live < limits.max_connections)
      why = fmt::format(
          "--max-connections {} reached (the last {} reserved for the server's owner on a Unix "
          "socket)",
          limits.max_connections, reserved);
    log_refusal(Refusal::server_full, peer.address, std::move(why));
    refuse(std::move(stream), errc::too_many_connections, "too many connections; try again later");
    return;
  }
  const std::size_t per_address = via_proxy ? 0 : limits.max_connections_per_address;
  if (per_address > 0 && !state.per_address.try_take(peer.client_key, per_address)) {
    state.rejected.fetch_add(1, std::memory_order_relaxed);
    log_refusal(Refusal::address_full, peer.address,
                fmt::format("--max-connections-per-address {} reached", per_address));
    refuse(std::move(stream), errc::too_many_connections,
           fmt::format("too many connections from {}; try again later", peer.client_key));
    return;
  }
  state.live.fetch_add(1);
  state.accepted.fetch_add(1, std::memory_order_relaxed);
  start_session(std::move(stream), state, worker, traits, settings, per_address > 0);
}

// Refusals are logged on the control thread, whichever thread accepts.
void StreamFront::log_refusal(Refusal kind, const std::string& peer, std::string why) {
  asio::dispatch(ctx_.control,
                 [&refusals = ctx_.refusals, kind, peer, why = std::move(why)]() mutable {
                   refusals.refused(kind, peer, std::move(why));
                 });
}

// A refused client is told why when it is a framed one, as long as few refusals are replying.
void StreamFront::refuse(std::unique_ptr<net::Stream> stream, errc code, std::string text) {
  if (!ctx_.refusals.begin_reply()) return;  // closed without a word
  auto ex = stream->get_executor();
  asio::co_spawn(ex, turn_away(std::move(stream), code, std::move(text)),
                 [&refusals = ctx_.refusals](std::exception_ptr) { refusals.end_reply(); });
}

// Out of fds: accept() fails while the client stays in the backlog, so the loop would wake
// again at once and spin. Free the spare fd, accept that client and close it (it sees a clean
// close instead of hanging), then take the spare back. Then the caller backs off.
void StreamFront::shed_one() {
  if (!spare_) return;
  spare_.reset();
  proc::UniqueFd client(
      ::accept4(listener_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  client.reset();
  spare_ = open_spare();
}

}  // namespace

Result<std::unique_ptr<Front>> open_stream_front(const net::Endpoint& ep, const FrontContext& ctx) {
  auto listener = net::Listener::open(accept_context(ctx), ep);
  if (!listener) return std::move(listener).failure();
  return std::unique_ptr<Front>(std::make_unique<StreamFront>(std::move(*listener), ctx));
}

Result<std::unique_ptr<Front>> adopt_stream_front(int fd, bool tls, const FrontContext& ctx) {
  auto listener = net::Listener::adopt(accept_context(ctx), fd, tls);
  if (!listener) return std::move(listener).failure();
  return std::unique_ptr<Front>(std::make_unique<StreamFront>(std::move(*listener), ctx));
}

}  // namespace duplex::server
