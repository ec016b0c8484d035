// Engine: the probe settles the protocol and checks the server is there (and, over TLS, that its
// key is believed) before any thread starts; then workers run until the end, or, for idle, until
// every connection is open and has been held.
#include "duplex/loadgen/engine.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/client/datagram_client.hpp"
#include "duplex/core/version.hpp"
#include "duplex/loadgen/exec_client.hpp"
#include "duplex/loadgen/payload.hpp"
#include "duplex/loadgen/progress.hpp"
#include "duplex/loadgen/system.hpp"
#include "duplex/loadgen/worker.hpp"
#include "duplex/loadgen/workloads.hpp"

namespace duplex::loadgen {
namespace {

// After the last idle connection is open, the server may still be handing back the buffer of
// its last reply; the second RSS reading waits this long so that it sees connections at rest.
constexpr auto kIdleSettle = std::chrono::milliseconds(200);

bool datagram(const BenchOptions& opt) {
  return opt.endpoint.transport == net::Transport::udp ||
         opt.endpoint.transport == net::Transport::unix_dgram;
}

client::ClientOptions client_options(const BenchOptions& opt, WireProtocol p) {
  client::ClientOptions c;
  c.protocol = p == WireProtocol::raw      ? client::Protocol::raw
               : p == WireProtocol::framed ? client::Protocol::framed
                                           : client::Protocol::detect;
  c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(opt.timeout);
  c.agent = fmt::format("{} bench", duplex::agent());
  c.tls = opt.tls;
  c.trust = opt.trust;
  // Many connections at once would each read and write the session file: none is kept.
  c.trust.sessions = "-";
  return c;
}

template <class T>
T run_one(asio::awaitable<T> a) {
  asio::io_context ctx(1);
  std::optional<T> out;
  auto store = [](asio::awaitable<T> inner, std::optional<T>& o) -> asio::awaitable<void> {
    o.emplace(co_await std::move(inner));
  };
  asio::co_spawn(ctx, store(std::move(a), out), asio::detached);
  ctx.run();
  return std::move(*out);
}

// One connection as the workers will make it, to fail early and once with the real reason.
// Returns the protocol the workers speak.
Result<WireProtocol> probe(const BenchOptions& opt) {
  if (datagram(opt)) {
    return run_one([&]() -> awaitable<Result<WireProtocol>> {
      client::DatagramOptions d;
      d.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(opt.timeout);
      d.retries = 1;
      auto c = co_await client::DatagramClient::open(opt.endpoint, d);
      if (!c) co_return std::move(c).failure();
      auto r = co_await c->request(make_payload(opt.size, 0));
      if (!r) co_return std::move(r).failure();
      co_return WireProtocol::raw;
    }());
  }
  const auto asked = opt.mode == Mode::exec ? WireProtocol::framed : opt.protocol;
  auto copt = client_options(opt, asked);
  copt.trust.interactive = opt.trust.interactive;  // the one connection that may ask
  copt.log_steps = true;                           // and the one -v shows step by step
  return run_one([&]() -> awaitable<Result<WireProtocol>> {
    auto c = co_await client::Connection::open(opt.endpoint, copt);
    if (!c) co_return std::move(c).failure();
    if (opt.mode == Mode::exec) {
      if (auto ok = co_await authenticate(*c, opt.token); !ok) co_return std::move(ok).failure();
    }
    const auto spoken = c->framed() ? WireProtocol::framed : WireProtocol::raw;
    co_await c->finish();
    co_return spoken;
  }());
}

awaitable<void> (*workload_for(const BenchOptions& opt))(Worker&, Slot&) {
  if (datagram(opt)) return &datagram_pingpong;
  switch (opt.mode) {
    case Mode::pingpong: return &pingpong;
    case Mode::storm: return &storm;
    case Mode::idle: return &idle;
    case Mode::exec: return &exec;
  }
  return &pingpong;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Result<std::unique_ptr<RunOutcome>> run_bench(const BenchOptions& opt) {
  const auto fd_limit = raise_fd_limit();
  if (opt.connections + 64 > fd_limit)
    spdlog::warn(
        "{} connections need more file descriptors than the limit allows ({}): "
        "connections past it will fail",
        opt.connections, fd_limit);
  auto spoken = probe(opt);
  if (!spoken) return std::move(spoken).failure();

  auto out = std::make_unique<RunOutcome>();
  out->facts.protocol = *spoken;
  const bool holding = opt.mode == Mode::idle && !datagram(opt);

  std::mutex mu;
  std::condition_variable cv;
  std::size_t ready = 0;  // idle: connections open (or given up)

  Plan plan;
  plan.opt = &opt;
  plan.framed = *spoken == WireProtocol::framed;
  plan.client = client_options(opt, *spoken);
  plan.client.trust.interactive = false;  // the probe asked already, if anyone was to be asked
  plan.workload = workload_for(opt);
  plan.idle_ready = [&] {
    std::lock_guard lock(mu);
    if (++ready == opt.connections) cv.notify_all();
  };

  if (holding && opt.server_pid) out->facts.server_rss_before_kib = rss_kib(*opt.server_pid);

  const auto start = Clock::now();
  if (holding) {
    plan.measure_from = start;
    plan.end = start + std::chrono::hours(24 * 365);
  } else {
    plan.measure_from = start + std::chrono::duration_cast<Clock::duration>(opt.warmup);
    plan.end = plan.measure_from + std::chrono::duration_cast<Clock::duration>(opt.duration);
  }

  const std::size_t threads = std::max<std::size_t>(1, std::min(opt.threads, opt.connections));
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::size_t t = 0; t < threads; ++t)
    workers.push_back(std::make_unique<Worker>(plan, opt.connections / threads + 1));
  for (std::size_t i = 0; i < opt.connections; ++i)
    workers[i % threads]->add(i);
  for (auto& w : workers)
    w->start();

  ProgressLine progress;
  auto live = [&] {
    std::uint64_t n = 0;
    for (auto& w : workers)
      n += w->live();
    return n;
  };
  Clock::time_point measured_to;
  if (holding) {
    {
      std::unique_lock lock(mu);
      while (!cv.wait_for(lock, std::chrono::seconds(1), [&] { return ready == opt.connections; }))
        progress.update(seconds_between(start, Clock::now()), ready);
    }
    measured_to = Clock::now();
    std::this_thread::sleep_for(kIdleSettle);
    if (opt.server_pid) out->facts.server_rss_after_kib = rss_kib(*opt.server_pid);
    const auto release = Clock::now() + std::chrono::duration_cast<Clock::duration>(opt.hold);
    while (Clock::now() < release) {
      std::this_thread::sleep_until(std::min(release, Clock::now() + std::chrono::seconds(1)));
      progress.update(seconds_between(start, Clock::now()), ready);
    }
    for (auto& w : workers)
      w->stop();
    for (auto& w : workers)
      w->join();
  } else {
    while (Clock::now() < plan.end) {
      std::this_thread::sleep_until(std::min(plan.end, Clock::now() + std::chrono::seconds(1)));
      progress.update(seconds_between(start, Clock::now()), live());
    }
    for (auto& w : workers)
      w->join();
    measured_to = plan.end;
    // Workers that all ended early (every connection failing, say) end the window early too.
    Clock::time_point last = plan.measure_from;
    for (auto& w : workers)
      last = std::max(last, w->finished_at());
    measured_to = std::min(measured_to, last);
  }
  progress.clear();

  for (auto& w : workers) {
    out->stats.merge(w->stats());
    for (std::size_t k = 0; k < kErrorKinds; ++k)
      if (out->facts.first_errors[k].empty()) out->facts.first_errors[k] = w->first_errors()[k];
  }
  // The connections held: those whose exchange succeeded (the others were closed at once).
  if (holding) out->facts.idle_open = static_cast<std::size_t>(out->stats.messages);
  out->facts.elapsed_s = seconds_between(plan.measure_from, measured_to);
  out->facts.client_cpu_s = cpu_seconds();
  return out;
}

}  // namespace duplex::loadgen
