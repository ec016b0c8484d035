// Server implementation. The main thread runs a control loop (fronts, signals, stop); sessions
// run on the IoPool's workers, each connection on one worker for its whole life.
#include "duplex/server/server.hpp"

#include <algorithm>
#include <csignal>
#include <map>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "duplex/core/errors.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/socket_stream.hpp"
#include "duplex/net/stdio_stream.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_identity.hpp"
#include "duplex/server/front.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/metrics.hpp"
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
  // Which fronts came from `cfg.listen`, and as which address (a reload compares these).
  std::map<const Front*, net::Endpoint> configured;
  // Fronts a reload closed: kept until the end, as Front::close() asks.
  std::vector<std::unique_ptr<Front>> retired;
  std::function<Result<ServerConfig>()> reloader;  // null: SIGHUP keeps its default action
  std::unique_ptr<net::Stream> inetd_stream;       // --inetd: the one connection, until run()
  ListenerTraits inetd_traits;
  // Created before the first "listening on" line, so that a SIGTERM sent as soon as a script
  // sees that line is already caught (asio queues it until the wait below starts).
  std::optional<asio::signal_set> signals;
  asio::steady_timer stop_timer{control};   // parked until a stop is requested
  asio::steady_timer drain_timer{control};  // the grace period; cancelled when sessions drained
  bool stop_requested = false;              // control thread only
  ServerStats stats{state, pool};           // STATS_REQUEST's answer; outlives the sessions
  IoPool pool;
  std::unique_ptr<MetricsEndpoint> metrics;  // --metrics; stopped before the pool it asks

  explicit Impl(ServerConfig c)
      : cfg(std::move(c)),
        refusals(control, cfg.limits.max_connections),
        pool(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())) {
    state.settings.set(Settings{cfg.limits, cfg.exec, cfg.proxy});
    state.agent = cfg.agent;
    state.multicast_if = cfg.multicast_if;
    state.penalties.configure(cfg.exec.penalties);
    state.tls_only = cfg.tls.only;
    state.pending.set_cap(cfg.limits.max_unauthenticated);
    state.stats = &stats;
    state.on_drained = [this] { asio::post(control, [this] { drain_timer.cancel(); }); };
  }
  ~Impl() {
    if (metrics) metrics->stop();
    pool.stop();
  }

  FrontContext front_context() { return FrontContext{control, state, pool, refusals}; }
  void request_stop() {  // control thread
    stop_requested = true;
    stop_timer.cancel();
  }
  awaitable<void> stop_sequence();
  Status open_tls();
  Status check_protected(const std::vector<const Front*>& serving, const ExecSettings& exec) const;
  void wait_signal();
  void reload();
  Status reload_listeners(const ServerConfig& next);
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
Status Server::Impl::check_protected(const std::vector<const Front*>& serving,
                                     const ExecSettings& exec) const {
  if (!exec.raw && !exec.enabled) return {};
  for (const Front* f : serving) {
    const net::Endpoint& ep = f->endpoint();
    if (!is_stream(ep) || f->loopback()) continue;
    // The bound URL names the address the name resolved to (tcp://0.0.0.0:PORT for a
    // "localhost" that a hosts file maps there): what was checked, and what the user must see.
    const std::string where = f->url();
    if (exec.raw)
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
  if (metrics) metrics->stop();
  pool.stop();
}

Server::Server(ServerConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Server::~Server() = default;

Status Server::open() {
  impl_->signals.emplace(impl_->control, SIGINT, SIGTERM);
  if (impl_->reloader) impl_->signals->add(SIGHUP);
  for (const auto& in : impl_->cfg.inherited) {
    auto front = adopt_front(in.fd, in.tls, impl_->front_context());
    if (!front) {
      impl_->fronts.clear();
      return std::move(front).failure();
    }
    impl_->fronts.push_back(std::move(*front));
  }
  if (impl_->cfg.inetd) {
    auto s = net::take_stdio_stream(impl_->pool.worker(0).ctx->get_executor());
    if (!s) return std::move(s).failure();
    // A pipe is this machine; a socket is judged by its own address, as a listener is.
    auto* sock = dynamic_cast<net::SocketStream*>(s->get());
    impl_->inetd_traits.loopback = sock == nullptr || net::bound_to_loopback(sock->native_handle());
    impl_->inetd_traits.tls_only = impl_->cfg.tls.only;
    if (impl_->cfg.exec.raw && !impl_->inetd_traits.loopback)
      return fail(errc::insecure_channel,
                  "refusing --raw-exec with --inetd on a connection that is not loopback or a "
                  "Unix socket: raw exec has no authentication");
    impl_->inetd_stream = std::move(*s);
  }
  for (const auto& ep : impl_->cfg.listen) {
    auto front = open_front(ep, impl_->front_context());
    if (!front) {
      impl_->fronts.clear();
      impl_->configured.clear();
      return std::move(front).failure();
    }
    impl_->configured.emplace(front->get(), ep);
    impl_->fronts.push_back(std::move(*front));
  }
  // Fronts take no connection before run(): the key can come after the binds, and is made only
  // for a server that will start.
  std::vector<const Front*> serving;
  for (const auto& f : impl_->fronts)
    serving.push_back(f.get());
  Status ok = impl_->check_protected(serving, impl_->cfg.exec);
  if (ok) ok = impl_->open_tls();
  if (ok && impl_->cfg.metrics) {
    auto m = MetricsEndpoint::open(*impl_->cfg.metrics, impl_->state, impl_->pool);
    if (m) {
      impl_->state.upper_round_trip = make_upper_round_trip_histogram();
      impl_->state.command_duration = make_command_duration_histogram();
      impl_->metrics = std::move(*m);
    } else {
      ok = std::move(m).failure();
    }
  }
  if (!ok) {
    impl_->configured.clear();
    impl_->fronts.clear();  // nothing stays bound
    return ok;
  }
  impl_->state.urls = urls();  // what a discovery reply lists
  return {};
}

std::string Server::fingerprint() const {
  return impl_->state.tls_fingerprint;
}

std::string Server::metrics_url() const {
  return impl_->metrics ? impl_->metrics->url() : std::string();
}

std::vector<std::string> Server::urls() const {
  std::vector<std::string> out;
  for (const auto& f : impl_->fronts)
    out.push_back(f->url());
  return out;
}

void Server::run() {
  auto& I = *impl_;
  if (!I.signals) {
    I.signals.emplace(I.control, SIGINT, SIGTERM);
    if (I.reloader) I.signals->add(SIGHUP);
  }
  I.wait_signal();
  for (auto& f : I.fronts)
    f->start();
  if (I.inetd_stream) {
    // The one connection, as an accepted one is served; its end is the server's.
    Worker& w = I.pool.worker(0);
    I.state.live.fetch_add(1);
    I.state.accepted.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(*w.ctx, run_session(std::move(I.inetd_stream), I.state, w, I.inetd_traits),
                   [&I](std::exception_ptr e) {
                     if (e) spdlog::error("--inetd: the session ended by an unexpected error");
                     asio::post(I.control, [&I] { I.request_stop(); });
                   });
  }
  asio::co_spawn(I.control, I.stop_sequence(), asio::detached);
  // A reload may set a timeout where there was none: with one, the sweep reads them anew each
  // round.
  if (I.reloader || I.cfg.limits.idle_timeout.count() > 0 ||
      I.cfg.limits.auth_deadline.count() > 0) {
    for (std::size_t i = 0; i < I.pool.size(); ++i) {
      Worker& w = I.pool.worker(i);
      if (I.reloader)
        asio::co_spawn(*w.ctx, w.idle_sweep(I.state.settings), asio::detached);
      else
        asio::co_spawn(*w.ctx, w.idle_sweep(I.cfg.limits.idle_timeout, I.cfg.limits.auth_deadline),
                       asio::detached);
    }
  }
  I.pool.start();
  if (I.metrics) I.metrics->start();
  I.control.run();
}

void Server::stop() {
  asio::post(impl_->control, [&I = *impl_] { I.request_stop(); });
}

void Server::on_reload(std::function<Result<ServerConfig>()> load) {
  impl_->reloader = std::move(load);
}

void Server::reload() {
  asio::post(impl_->control, [&I = *impl_] { I.reload(); });
}

// SIGINT/SIGTERM stop; SIGHUP (with a reloader) reloads and waits again.
void Server::Impl::wait_signal() {
  signals->async_wait([this](std::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("received SIGHUP: reloading the configuration");
      reload();
      wait_signal();
      return;
    }
    spdlog::info("received {}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    request_stop();
  });
}

// Control thread. All or nothing: the new listeners open (and protected mode accepts them)
// before anything of the running configuration changes.
void Server::Impl::reload() {
  if (stop_requested || !reloader) return;
  auto next = reloader();
  if (!next) {
    spdlog::error("reload: {}; keeping the running configuration", next.message());
    return;
  }
  std::vector<std::string> later;
  if (next->threads != cfg.threads) later.emplace_back("threads");
  if (next->tls.enabled != cfg.tls.enabled || next->tls.only != cfg.tls.only ||
      next->tls.key_path != cfg.tls.key_path || next->tls.cert_path != cfg.tls.cert_path)
    later.emplace_back("TLS settings");
  if (next->multicast_if != cfg.multicast_if) later.emplace_back("multicast-if");
  // The endpoint's thread, and the histograms sessions fill only with --metrics, are made at start.
  if (next->metrics != cfg.metrics) later.emplace_back("metrics");
  if (!later.empty())
    spdlog::warn("reload: {} changed: kept as they are until a restart", fmt::join(later, ", "));
  if (auto ok = reload_listeners(*next); !ok) {
    spdlog::error("reload: {}; keeping the running configuration", ok.message());
    return;
  }
  const Settings now{next->limits, next->exec, next->proxy};
  const auto changes = describe_changes(*state.settings.get(), now);
  state.settings.set(now);
  state.penalties.configure(next->exec.penalties);
  state.pending.set_cap(next->limits.max_unauthenticated);
  refusals.set_max_connections(next->limits.max_connections);
  cfg.limits = next->limits;
  cfg.exec = next->exec;
  cfg.proxy = next->proxy;
  cfg.grace = next->grace;
  cfg.listen = next->listen;
  for (const auto& line : changes)
    spdlog::info("reload: {}", line);
  spdlog::info(
      "reload: done ({} setting(s) changed); open connections keep the settings they "
      "started with",
      changes.size());
}

// Opens the listeners `next` adds and checks them with the rest under `next`'s exec settings;
// only then starts them and closes the ones it dropped.
Status Server::Impl::reload_listeners(const ServerConfig& next) {
  const auto listed = [](const std::vector<net::Endpoint>& list, const net::Endpoint& ep) {
    return std::find(list.begin(), list.end(), ep) != list.end();
  };
  std::vector<std::unique_ptr<Front>> added;
  std::vector<net::Endpoint> added_as;
  for (const auto& ep : next.listen) {
    const bool open = std::any_of(configured.begin(), configured.end(),
                                  [&](const auto& c) { return c.second == ep; });
    if (open || listed(added_as, ep)) continue;
    if (is_stream(ep) && (ep.tls || cfg.tls.enabled) && !state.tls)
      return fail(errc::insecure_channel,
                  fmt::format("cannot listen on {}: the server started without TLS; TLS "
                              "listeners are added by a restart",
                              ep.url()));
    auto front = open_front(ep, front_context());
    if (!front) return std::move(front).failure();
    added.push_back(std::move(*front));
    added_as.push_back(ep);
  }
  std::vector<const Front*> serving;
  for (const auto& f : fronts) {
    const auto it = configured.find(f.get());
    if (it == configured.end() || listed(next.listen, it->second)) serving.push_back(f.get());
  }
  for (const auto& f : added)
    serving.push_back(f.get());
  if (auto ok = check_protected(serving, next.exec); !ok) return ok;

  for (auto it = fronts.begin(); it != fronts.end();) {
    const auto c = configured.find(it->get());
    if (c == configured.end() || listed(next.listen, c->second)) {
      ++it;
      continue;
    }
    spdlog::info("reload: no longer listening on {} (its open connections go on)", (*it)->url());
    (*it)->close();
    configured.erase(c);
    retired.push_back(std::move(*it));
    it = fronts.erase(it);
  }
  for (std::size_t i = 0; i < added.size(); ++i) {
    configured.emplace(added[i].get(), added_as[i]);
    fronts.push_back(std::move(added[i]));
  }
  state.urls.clear();
  for (const auto& f : fronts)
    state.urls.push_back(f->url());
  for (std::size_t i = fronts.size() - added.size(); i < fronts.size(); ++i) {
    spdlog::info("reload: listening on {}", fronts[i]->url());
    fronts[i]->start();
  }
  return {};
}

}  // namespace duplex::server
