// Server implementation. The main thread runs a control loop (accept, signals, stop); sessions
// run on the IoPool's loops, each connection on one loop for its whole life.
#include "duplex/server/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "duplex/net/asio.hpp"
#include "duplex/net/listener.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

using net::use_tuple;

struct Server::Impl {
  // Declaration order is destruction order in reverse: the pool (and with it any session frame
  // still alive after the grace period) goes first, while the state those frames touch lives on.
  ServerConfig cfg;
  asio::io_context control{1};
  ServerState state;
  std::vector<Worker> workers;
  std::vector<net::Listener> listeners;
  // Created before the first "listening on" line, so that a SIGTERM sent as soon as a script
  // sees that line is already caught (asio queues it until the wait below starts).
  std::optional<asio::signal_set> signals;
  asio::steady_timer stop_timer{control};   // parked until a stop is requested
  asio::steady_timer drain_timer{control};  // the grace period; cancelled when sessions drained
  std::atomic<std::size_t> rejecting{0};
  bool stop_requested = false;  // control thread only
  int spare_fd = -1;  // held so that on EMFILE one fd can be freed to accept-and-close a client
  IoPool pool;

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        workers(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())),
        pool(workers.size()) {
    for (std::size_t i = 0; i < pool.size(); ++i)
      workers[i].ctx = &pool.context(i);
    state.limits = cfg.limits;
    state.agent = cfg.agent;
    state.exec = cfg.exec;
    state.on_drained = [this] { asio::post(control, [this] { drain_timer.cancel(); }); };
    spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  ~Impl() {
    pool.stop();
    if (spare_fd >= 0) ::close(spare_fd);
  }

  awaitable<void> accept_loop(net::Listener& listener);
  awaitable<void> stop_sequence();
  void shed_one(net::Listener& listener);
};

// Out of fds: accept() fails while the client stays in the backlog, so the loop would wake
// again at once and spin. Free the spare fd, accept that client and close it (it sees a clean
// close instead of hanging), then take the spare back. Then the caller backs off.
void Server::Impl::shed_one(net::Listener& listener) {
  if (spare_fd < 0) return;
  ::close(spare_fd);
  spare_fd = -1;
  const int fd =
      ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) ::close(fd);
  spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

awaitable<void> Server::Impl::accept_loop(net::Listener& listener) {
  asio::steady_timer backoff_timer(control);
  auto backoff = std::chrono::milliseconds(10);
  std::size_t next = 0;
  for (;;) {
    Worker& worker = workers[next++ % workers.size()];
    auto accepted = co_await listener.accept(worker.ctx->get_executor());
    const std::error_code ec = accepted.error();
    if (state.stopping.load()) co_return;
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Asio 1.22's own "asio.system" category does not compare equal to std::errc: use errno
      // values.
      const int e = ec.value();
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        spdlog::warn("accept on {}: {}; shedding a connection and pausing {} ms",
                     listener.endpoint().url(), ec.message(), backoff.count());
        shed_one(listener);
        backoff_timer.expires_after(backoff);
        co_await backoff_timer.async_wait(use_tuple);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      }
      continue;  // ECONNABORTED and friends: that client is gone, the next one is fine
    }
    backoff = std::chrono::milliseconds(10);
    std::unique_ptr<net::Stream> stream = std::move(*accepted);
    if (state.live.load() >= state.limits.max_connections) {
      state.rejected.fetch_add(1, std::memory_order_relaxed);
      // Bound the work spent on refusals too: past a few hundred, close without a word.
      if (rejecting.load() < 256) {
        rejecting.fetch_add(1);
        auto ex = stream->get_executor();
        asio::co_spawn(ex, reject_session(std::move(stream)),
                       [this](std::exception_ptr) { rejecting.fetch_sub(1); });
      }
      continue;
    }
    state.live.fetch_add(1);
    state.accepted.fetch_add(1, std::memory_order_relaxed);
    auto ex = stream->get_executor();
    asio::co_spawn(ex, run_session(std::move(stream), state, worker), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("session ended by an unexpected error: {}", x.what());
      }
    });
  }
}

// Waits for a stop request, then: no new connections, every session told to close, at most
// `grace` for them to end, then the worker loops are stopped (ending whatever still runs).
awaitable<void> Server::Impl::stop_sequence() {
  stop_timer.expires_at(asio::steady_timer::time_point::max());
  if (!stop_requested) co_await stop_timer.async_wait(use_tuple);
  state.stopping.store(true);
  if (signals) signals->cancel();
  spdlog::info("stopping: no new connections; closing {} open", state.live.load());
  for (auto& l : listeners)
    l.close();
  for (auto& w : workers)
    asio::post(*w.ctx, [&w] { w.close_all(); });
  // A session ending from now on calls on_drained when it is the last; one that ended before
  // the flag was set is seen by this check (both run on this thread, so nothing slips between).
  if (state.live.load() > 0) {
    drain_timer.expires_after(cfg.grace);
    co_await drain_timer.async_wait(use_tuple);
  }
  if (state.live.load() > 0)
    spdlog::warn("{} sessions did not end within {} ms; ending them", state.live.load(),
                 cfg.grace.count());
  pool.stop();
}

Server::Server(ServerConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Server::~Server() = default;

bool Server::open(std::string& why) {
  impl_->signals.emplace(impl_->control, SIGINT, SIGTERM);
  for (const auto& ep : impl_->cfg.listen) {
    auto l = net::Listener::open(impl_->control, ep, why);
    if (!l) {
      impl_->listeners.clear();
      return false;
    }
    impl_->listeners.push_back(std::move(*l));
  }
  return true;
}

std::vector<std::string> Server::urls() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->listeners)
    out.push_back(l.endpoint().url());
  return out;
}

void Server::run() {
  auto& I = *impl_;
  if (!I.signals) I.signals.emplace(I.control, SIGINT, SIGTERM);
  auto& signals = *I.signals;
  signals.async_wait([&I](std::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("received {}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    I.stop_requested = true;
    I.stop_timer.cancel();
  });
  for (auto& l : I.listeners)
    asio::co_spawn(I.control, I.accept_loop(l), [](std::exception_ptr e) {
      if (e) spdlog::error("accept loop ended unexpectedly");
    });
  asio::co_spawn(I.control, I.stop_sequence(), asio::detached);
  if (I.cfg.limits.idle_timeout.count() > 0)
    for (auto& w : I.workers)
      asio::co_spawn(*w.ctx, w.idle_sweep(I.cfg.limits.idle_timeout), asio::detached);
  I.pool.start();
  I.control.run();
}

void Server::stop() {
  asio::post(impl_->control, [this] {
    impl_->stop_requested = true;
    impl_->stop_timer.cancel();
  });
}

}  // namespace duplex::server
