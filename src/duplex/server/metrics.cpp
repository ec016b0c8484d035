// MetricsEndpoint implementation: an accept loop and one coroutine per scrape on the endpoint's
// own io_context. Counters are atomics read where they stand; the sessions' modes and bytes are
// counted by each worker on its own thread (its session list is not shared) and handed back.
#include "duplex/server/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/version.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/listener.hpp"
#include "duplex/server/io_pool.hpp"
#include "duplex/server/session.hpp"
#include "duplex/server/state.hpp"
#include "duplex/wire/http_request.hpp"
#include "duplex/wire/metrics_text.hpp"

namespace duplex::server {
namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

// A request head larger than any scraper sends; a scrape that takes longer than this, from
// accept to the last byte written, is cut; more scrapers at once than this are turned away
// (closed at once) rather than queued: the endpoint holds little whatever its clients do.
constexpr std::size_t kMaxHead = 8192;
constexpr auto kScrapeTimeout = 10s;
constexpr std::size_t kMaxScrapers = 16;
// How long a scrape waits for a busy worker to count its sessions (the gauges then leave it out).
constexpr auto kWorkerWait = 1s;

using ModeCounts = std::map<std::string, std::size_t, std::less<>>;

// What the workers' open sessions add up to, each counted on its own worker's thread.
struct SessionTally {
  ModeCounts modes;
  std::uint64_t bytes_in = 0, bytes_out = 0;
};

// Each worker counts its sessions on its own thread; a worker that does not answer in time
// (stopping, or very busy) is left out and logged.
SessionTally tally_sessions(IoPool& pool) {
  std::vector<std::future<SessionTally>> answers;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto promise = std::make_shared<std::promise<SessionTally>>();
    answers.push_back(promise->get_future());
    Worker& w = pool.worker(i);
    asio::post(*w.ctx, [promise, &w] {
      SessionTally t;
      for (const SessionEntry* e : w.sessions) {
        ++t.modes[std::string(e->mode)];
        t.bytes_in += e->bytes_in;
        t.bytes_out += e->bytes_out;
      }
      promise->set_value(std::move(t));
    });
  }
  SessionTally total;
  const auto deadline = std::chrono::steady_clock::now() + kWorkerWait;
  for (auto& a : answers) {
    if (a.wait_until(deadline) != std::future_status::ready) {
      spdlog::debug("metrics: a worker did not count its sessions within {} ms",
                    std::chrono::milliseconds(kWorkerWait).count());
      continue;
    }
    SessionTally t = a.get();
    for (auto& [mode, n] : t.modes)
      total.modes[mode] += n;
    total.bytes_in += t.bytes_in;
    total.bytes_out += t.bytes_out;
  }
  return total;
}

// The byte counters are closed connections' bytes plus the open ones', read at different
// moments without a lock: a connection that closes in between is missed by one scrape (or a
// worker is left out). A counter must never go down, so a scrape reports at least what the
// previous one did; the lag is made up once the total passes it.
struct ByteCounters {
  std::uint64_t in = 0, out = 0;
  void raise_to(std::uint64_t now_in, std::uint64_t now_out) {
    in = std::max(in, now_in);
    out = std::max(out, now_out);
  }
};

wire::MetricSeries value_series(double v, wire::MetricLabels labels = {}) {
  wire::MetricSeries s;
  s.labels = std::move(labels);
  s.value = v;
  return s;
}

wire::MetricFamily counter(std::string name, std::string help, std::uint64_t v) {
  wire::MetricFamily f{std::move(name), std::move(help), wire::MetricType::counter, {}};
  f.series.push_back(value_series(static_cast<double>(v)));
  return f;
}

wire::MetricFamily gauge(std::string name, std::string help, std::size_t v) {
  wire::MetricFamily f{std::move(name), std::move(help), wire::MetricType::gauge, {}};
  f.series.push_back(value_series(static_cast<double>(v)));
  return f;
}

wire::MetricFamily histogram(std::string name, std::string help, const LatencyHistogram* h) {
  wire::MetricFamily f{std::move(name), std::move(help), wire::MetricType::histogram, {}};
  if (h == nullptr) return f;
  auto snap = h->snapshot();
  wire::MetricSeries series;
  series.bounds = std::move(snap.bounds);
  series.buckets = std::move(snap.buckets);
  series.sum = snap.sum_seconds;
  f.series.push_back(std::move(series));
  return f;
}

std::vector<wire::MetricFamily> collect(const ServerState& s, IoPool& pool, ByteCounters& bytes) {
  constexpr auto relaxed = std::memory_order_relaxed;
  // Closed connections' bytes first: one that closes while the workers count is then missed
  // rather than counted twice (ByteCounters keeps the total from going down).
  const std::uint64_t closed_in = s.bytes_in_closed.load(relaxed);
  const std::uint64_t closed_out = s.bytes_out_closed.load(relaxed);
  const SessionTally open = tally_sessions(pool);
  bytes.raise_to(closed_in + open.bytes_in, closed_out + open.bytes_out);
  std::vector<wire::MetricFamily> out;
  wire::MetricFamily info{"duplex_build_info",
                          "The server's version (the value is always 1)",
                          wire::MetricType::gauge,
                          {}};
  info.series.push_back(value_series(1, {{"version", std::string(version())}}));
  out.push_back(std::move(info));
  out.push_back(counter("duplex_connections_accepted",
                        "Connections accepted on the service listeners", s.accepted.load(relaxed)));
  out.push_back(counter("duplex_connections_rejected",
                        "Connections refused because --max-connections was reached",
                        s.rejected.load(relaxed)));
  out.push_back(counter("duplex_connections_penalised",
                        "Connections refused because their address failed authentication too often",
                        s.penalised.load(relaxed)));
  out.push_back(counter("duplex_protocol_errors",
                        "Sessions ended by a protocol error (answered with ERROR, then closed)",
                        s.protocol_errors.load(relaxed)));
  out.push_back(counter("duplex_auth_failures", "Failed exec authentications",
                        s.auth_failures.load(relaxed)));
  out.push_back(counter("duplex_commands_started", "Commands started by the exec service",
                        s.commands_started.load(relaxed)));
  out.push_back(counter("duplex_commands_failed",
                        "Commands that could not start, or ended by a signal, a limit or a "
                        "non-zero status",
                        s.commands_failed.load(relaxed)));
  out.push_back(counter("duplex_received_bytes",
                        "Bytes read from clients on the service listeners (inside TLS, the "
                        "plaintext), open connections' included",
                        bytes.in));
  out.push_back(counter("duplex_sent_bytes",
                        "Bytes written to clients on the service listeners (inside TLS, the "
                        "plaintext), open connections' included",
                        bytes.out));
  out.push_back(gauge("duplex_connections_open", "Client connections open now", s.live.load()));
  out.push_back(gauge("duplex_connections_unauthenticated",
                      "Connections not yet past their handshake or authentication",
                      s.unauthenticated.load()));
  out.push_back(
      gauge("duplex_commands_running", "Commands holding a slot now", s.commands.running()));
  wire::MetricFamily modes{
      "duplex_connections_by_mode",
      "Open connections by protocol (raw, framed, tls+raw, …; new: not sniffed "
      "yet)",
      wire::MetricType::gauge,
      {}};
  for (const auto& [mode, n] : open.modes)
    modes.series.push_back(value_series(static_cast<double>(n), {{"mode", mode}}));
  out.push_back(std::move(modes));
  out.push_back(histogram("duplex_upper_round_trip_seconds",
                          "Upper service: from the read that completed a request to its reply "
                          "written (raw) or handed to the session's writer (framed)",
                          s.upper_round_trip.get()));
  out.push_back(histogram("duplex_command_duration_seconds",
                          "Exec service: a command's run time, from its start to its exit",
                          s.command_duration.get()));
  return out;
}

std::string response(std::string_view status, std::string_view type, std::string_view body,
                     bool head_only, std::string_view extra = {}) {
  std::string r = fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
      status, type, body.size(), extra);
  if (!head_only) r += body;
  return r;
}

}  // namespace

std::unique_ptr<LatencyHistogram> make_upper_round_trip_histogram() {
  return std::make_unique<LatencyHistogram>(std::initializer_list<double>{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
}

std::unique_ptr<LatencyHistogram> make_command_duration_histogram() {
  return std::make_unique<LatencyHistogram>(std::initializer_list<double>{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800});
}

struct MetricsEndpoint::Impl {
  const ServerState& state;
  IoPool& pool;
  asio::io_context ctx{1};
  std::optional<net::Listener> listener;
  std::string url;
  std::thread thread;
  std::size_t scrapers = 0;  // this thread only
  ByteCounters bytes;        // this thread only

  Impl(const ServerState& s, IoPool& p) : state(s), pool(p) {}

  awaitable<void> accept_loop() {
    for (;;) {
      auto got = co_await listener->accept(ctx.get_executor());
      if (!got) {
        if (got.error() == asio::error::operation_aborted) co_return;
        // Out of fds, most likely: try again a little later rather than spin.
        spdlog::debug("metrics: accept failed: {}", got.message());
        asio::steady_timer pause(ctx, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (scrapers >= kMaxScrapers) continue;  // the stream closes as it goes out of scope
      ++scrapers;
      asio::co_spawn(ctx, serve(std::move(*got)), [this](std::exception_ptr e) {
        --scrapers;
        if (e) spdlog::warn("metrics: a scrape failed unexpectedly");
      });
    }
  }

  awaitable<void> serve(std::unique_ptr<net::Stream> stream) {
    asio::steady_timer deadline(ctx, kScrapeTimeout);
    co_await (exchange(*stream) || deadline.async_wait(use_tuple));
    stream->close();
  }

  // One request, one response, then close (HTTP/1.1 with Connection: close: every scraper
  // handles it, and no idle connection is kept).
  awaitable<void> exchange(net::Stream& stream) {
    wire::HttpRequestParser parser(kMaxHead);
    std::array<char, 2048> buf;
    wire::HttpParse st = wire::HttpParse::need_more;
    while (st == wire::HttpParse::need_more) {
      auto [ec, n] = co_await stream.read_some(asio::buffer(buf));
      if (ec) co_return;  // gone before asking anything
      st = parser.feed(std::span<const char>(buf.data(), n));
    }
    const std::string reply = answer(st, parser);
    co_await stream.write(asio::buffer(reply));
    co_await stream.shutdown_send();
  }

  std::string answer(wire::HttpParse st, const wire::HttpRequestParser& parser) {
    constexpr std::string_view kText = "text/plain; charset=utf-8";
    if (st == wire::HttpParse::bad)
      return response("400 Bad Request", kText, "bad request: " + parser.error() + "\n", false);
    if (st == wire::HttpParse::too_large)
      return response("431 Request Header Fields Too Large", kText, parser.error() + "\n", false);
    const auto& req = parser.request();
    const bool head = req.method == "HEAD";
    if (req.method != "GET" && !head)
      return response("405 Method Not Allowed", kText, "only GET /metrics is served here\n", false,
                      "Allow: GET, HEAD\r\n");
    if (req.path != "/metrics")
      return response("404 Not Found", kText, "metrics are at /metrics\n", head);
    const auto format = wire::choose_metrics_format(req.accept);
    return response("200 OK", wire::metrics_content_type(format),
                    wire::write_metrics(collect(state, pool, bytes), format), head);
  }
};

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
}

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::open(const net::Endpoint& where,
                                                               const ServerState& state,
                                                               IoPool& pool) {
  if (!where.is_stream() || where.tls)
    return fail(errc::bad_url, fmt::format("--metrics {}: give tcp://HOST:PORT or unix:///PATH "
                                           "(plain HTTP, no TLS)",
                                           where.url()));
  auto impl = std::make_unique<Impl>(state, pool);
  auto listener = net::Listener::open(impl->ctx, where);
  if (!listener) return std::move(listener).failure();
  const net::Endpoint& bound = listener->endpoint();
  impl->url = bound.transport == net::Transport::tcp
                  ? fmt::format("http://{}:{}/metrics",
                                bound.is_ipv6() ? "[" + bound.host + "]" : bound.host, bound.port)
                  : bound.url();
  impl->listener.emplace(std::move(*listener));
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(impl)));
}

std::string MetricsEndpoint::url() const {
  return impl_->url;
}

void MetricsEndpoint::start() {
  asio::co_spawn(impl_->ctx, impl_->accept_loop(), [](std::exception_ptr e) {
    if (e) spdlog::error("metrics: the endpoint stopped unexpectedly");
  });
  impl_->thread = std::thread([this] { impl_->ctx.run(); });
}

void MetricsEndpoint::stop() noexcept {
  if (!impl_) return;
  impl_->ctx.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace duplex::server
