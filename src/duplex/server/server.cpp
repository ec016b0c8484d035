// Server implementation. The main thread runs a control loop (fronts, signals, stop); sessions
// run on the IoPool's workers, each connection on one worker for its whole life.
#include "duplex/server/server.hpp"

#include <algorithm>
#include <csignal>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/errors.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_identity.hpp"
#include "duplex/server/front.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/refusals.hpp"
#include "duplex/server/session.hpp"
#include "duplex/server/stats.hpp"

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
  ServerStats stats{state, pool};           // STATS_REQUEST's answer; outlives the sessions
  IoPool pool;

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        refusals(control, cfg.limits.max_connections),
        pool(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())) {
    state.limits = cfg.limits;
    state.agent = cfg.agent;
    state.multicast_if = cfg.multicast_if;
    state.exec = cfg.exec;
    state.penalties.configure(cfg.exec.penalties);
    state.tls_only = cfg.tls.only;
    state.pending.set_cap(cfg.limits.max_unauthenticated);
    state.stats = &stats;
    state.on_drained = [this] { asio::post(control, [this] { drain_timer.cancel(); }); };
  }
  ~Impl() { pool.stop(); }

  FrontContext front_context() { return FrontContext{control, state, pool, refusals}; }
  void request_stop() {  // control thread
    stop_requested = true;
    stop_timer.cancel();
  }
  awaitable<void> stop_sequence();
  Status open_tls();
  Status check_protected() const;
};

namespace {
bool is_stream(const net::Endpoint& ep) {
  return ep.transport == net::Transport::tcp || ep.transport == net::Transport::unix_stream;
}
}  // namespace

// The key and certificate, when some stream listener has TLS.
Status Server::Impl::open_tls() {
  const bool wanted = std::any_of(cfg.listen.begin(), cfg.listen.end(), [&](const auto& ep) {
    return is_stream(ep) && (ep.tls || cfg.tls.enabled);
  });
  if (!wanted) return {};
  const std::string key =
      cfg.tls.key_path.empty() ? net::default_server_key_path() : cfg.tls.key_path;
  const std::string cert = !cfg.tls.cert_path.empty() ? cfg.tls.cert_path
                           : cfg.tls.key_path.empty() ? net::default_server_cert_path()
                                                      : cfg.tls.key_path;
  auto id = net::load_or_create_identity(key, cert, "duplex server");
  if (!id) return std::move(id).failure();
  auto ctx = net::make_server_context(*id);
  if (!ctx) return std::move(ctx).failure();
  state.tls = std::make_shared<asio::ssl::context>(std::move(*ctx));
  state.tls_fingerprint = id->fingerprint;
  if (id->created)
    spdlog::info("TLS: key fingerprint {}  (new key in {}: clients must pin it)", id->fingerprint,
                 key);
  else
    spdlog::info("TLS: key fingerprint {}", id->fingerprint);
  return {};
}

// Protected mode (Redis's idea), judged from each bound socket's own address: a name such as
// "localhost" may resolve to anything (issue 7, audit item 5).
Status Server::Impl::check_protected() const {
  if (!cfg.exec.raw && !cfg.exec.enabled) return {};
  for (const auto& f : fronts) {
    const net::Endpoint& ep = f->endpoint();
    if (!is_stream(ep) || f->loopback()) continue;
    // The bound URL names the address the name resolved to (tcp://0.0.0.0:PORT for a
    // "localhost" that a hosts file maps there): what was checked, and what the user must see.
    const std::string where = f->url();
    if (cfg.exec.raw)
      return fail(errc::insecure_channel,
                  fmt::format("refusing --raw-exec on {}: raw exec has no authentication, so it "
                              "listens on loopback addresses or Unix sockets only; use --exec "
                              "with --tls-only to serve commands on a network",
                              where));
    if (!ep.tls && !cfg.tls.enabled)
      return fail(errc::insecure_channel,
                  fmt::format("refusing --exec on {} without TLS: add --tls-only (or listen on "
                              "tls://HOST:PORT)",
                              where));
  }
  return {};
}

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
  // Fronts take no connection before run(): the key can come after the binds, and is made only
  // for a server that will start.
  Status ok = impl_->check_protected();
  if (ok) ok = impl_->open_tls();
  if (!ok) {
    impl_->fronts.clear();  // nothing stays bound
    return ok;
  }
  impl_->state.urls = urls();  // what a discovery reply lists
  return {};
}

std::string Server::fingerprint() const {
  return impl_->state.tls_fingerprint;
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
