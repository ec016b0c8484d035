// Server implementation. The main thread runs a control loop (fronts, signals, stop); sessions
// run on the IoPool's workers, each connection on one worker for its whole life.
#include "duplex/server/server.hpp"

#include <algorithm>
#include <csignal>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "duplex/net/asio.hpp"
#include "duplex/server/front.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/refusals.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

using net::use_tuple;

struct Server::Impl {
  // Declaration order is destruction order in reverse: the pool (and with it any session frame
  // still alive after the grace period) goes first, while the state those frames touch and the
  // control loop they post to live on.
  ServerConfig cfg;
  asio::io_context control{1};
  ServerState state;
  Refusals refusals;
  std::vector<std::unique_ptr<Front>> fronts;
  // Created before the first "listening on" line, so that a SIGTERM sent as soon as a script
  // sees that line is already caught (asio queues it until the wait below starts).
  std::optional<asio::signal_set> signals;
  asio::steady_timer stop_timer{control};   // parked until a stop is requested
  asio::steady_timer drain_timer{control};  // the grace period; cancelled when sessions drained
  bool stop_requested = false;              // control thread only
  IoPool pool;

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        refusals(control, cfg.limits.max_connections),
        pool(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())) {
    state.limits = cfg.limits;
    state.agent = cfg.agent;
    state.multicast_if = cfg.multicast_if;
    state.exec = cfg.exec;
    state.on_drained = [this] { asio::post(control, [this] { drain_timer.cancel(); }); };
  }
  ~Impl() { pool.stop(); }

  FrontContext front_context() { return FrontContext{control, state, pool, refusals}; }
  void request_stop() {  // control thread
    stop_requested = true;
    stop_timer.cancel();
  }
  awaitable<void> stop_sequence();
};

// Waits for a stop request, then: no new connections, every session told to close, at most
// `grace` for them to end, then the worker loops are stopped (ending whatever still runs).
awaitable<void> Server::Impl::stop_sequence() {
  stop_timer.expires_at(asio::steady_timer::time_point::max());
  if (!stop_requested) co_await stop_timer.async_wait(use_tuple);
  state.stopping.store(true);
  if (signals) signals->cancel();
  spdlog::info("stopping: no new connections; closing {} open", state.live.load());
  for (auto& f : fronts)
    f->close();
  refusals.flush();
  for (std::size_t i = 0; i < pool.size(); ++i) {
    Worker& w = pool.worker(i);
    asio::post(*w.ctx, [&w] { w.close_all(); });
  }
  // A session ending from now on calls on_drained when it is the last, which posts the cancel
  // to this thread: it cannot run before the wait below has started.
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

Status Server::open() {
  impl_->signals.emplace(impl_->control, SIGINT, SIGTERM);
  for (const auto& ep : impl_->cfg.listen) {
    auto front = open_front(ep, impl_->front_context());
    if (!front) {
      impl_->fronts.clear();
      return std::move(front).failure();
    }
    impl_->fronts.push_back(std::move(*front));
  }
  impl_->state.urls = urls();  // what a discovery reply lists
  return {};
}

std::vector<std::string> Server::urls() const {
  std::vector<std::string> out;
  for (const auto& f : impl_->fronts)
    out.push_back(f->url());
  return out;
}

void Server::run() {
  auto& I = *impl_;
  if (!I.signals) I.signals.emplace(I.control, SIGINT, SIGTERM);
  I.signals->async_wait([&I](std::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("received {}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    I.request_stop();
  });
  for (auto& f : I.fronts)
    f->start();
  asio::co_spawn(I.control, I.stop_sequence(), asio::detached);
  if (I.cfg.limits.idle_timeout.count() > 0 || I.cfg.limits.auth_deadline.count() > 0) {
    for (std::size_t i = 0; i < I.pool.size(); ++i) {
      Worker& w = I.pool.worker(i);
      asio::co_spawn(*w.ctx, w.idle_sweep(I.cfg.limits.idle_timeout, I.cfg.limits.auth_deadline),
                     asio::detached);
    }
  }
  I.pool.start();
  I.control.run();
}

void Server::stop() {
  asio::post(impl_->control, [&I = *impl_] { I.request_stop(); });
}

}  // namespace duplex::server
