// Stats: rows read on each worker's own thread, counters read relaxed, one JSON document.
#include "duplex/server/stats.hpp"

#include <unistd.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "duplex/server/io_pool.hpp"
#include "duplex/server/session.hpp"
#include "duplex/server/state.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double seconds(Clock::duration d) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) /
         1000.0;
}

std::string transport_of(std::string_view url) {
  if (url.starts_with("unix://") || url.starts_with("tls+unix://")) return "unix";
  return "tcp";
}

std::string service_of(const SessionEntry& e) {
  if (e.service != nullptr) return e.service;
  const std::string_view mode = e.mode;
  if (mode.ends_with("raw-exec")) return "raw-exec";
  if (mode.ends_with("raw") || mode.ends_with("framed")) return "upper";
  return "-";
}

std::string state_of(const SessionEntry& e) {
  if (e.idle_expired) return "closing";
  if (e.busy) return "running";
  if (e.pending) return "pending";
  return "open";
}

// On the worker's own thread: the only place its entries may be read.
awaitable<std::vector<ConnectionRow>> rows_of(Worker* w) {
  const auto now = Clock::now();
  std::vector<ConnectionRow> rows;
  rows.reserve(w->sessions.size());
  for (const SessionEntry* e : w->sessions) {
    ConnectionRow r;
    r.id = e->id;
    r.peer = std::string(e->peer());
    if (e->stream != nullptr) r.via = e->stream->peer().proxied_by;
    r.listener = e->listener.url ? *e->listener.url : std::string();
    r.transport = transport_of(r.listener);
    r.protocol = std::string(e->mode);
    r.service = service_of(*e);
    r.state = state_of(*e);
    r.identity = e->identity;
    r.command = std::string(e->command);
    r.age_s = seconds(now - e->started);
    r.idle_s = e->busy ? 0.0 : seconds(now - e->last_read);
    r.bytes_in = e->bytes_in;
    r.bytes_out = e->bytes_out;
    rows.push_back(std::move(r));
  }
  co_return rows;
}

Json row_json(const ConnectionRow& r) {
  return Json{{"id", r.id},
              {"peer", r.peer},
              {"via", r.via},
              {"listener", r.listener},
              {"transport", r.transport},
              {"protocol", r.protocol},
              {"service", r.service},
              {"state", r.state},
              {"identity", r.identity},
              {"command", r.command},
              {"age_s", r.age_s},
              {"idle_s", r.idle_s},
              {"bytes_in", r.bytes_in},
              {"bytes_out", r.bytes_out}};
}

std::string dump(const Json& j) {
  // Peers' and commands' bytes need not be UTF-8: replaced, never a throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

awaitable<StatsSnapshot> take_snapshot(ServerState& state, IoPool& pool,
                                       Clock::time_point started) {
  StatsSnapshot s;
  s.workers = pool.size();
  for (std::size_t i = 0; i < pool.size(); ++i) {
    Worker& w = pool.worker(i);
    auto rows = co_await asio::co_spawn(*w.ctx, rows_of(&w), asio::use_awaitable);
    std::move(rows.begin(), rows.end(), std::back_inserter(s.connections));
  }
  std::sort(s.connections.begin(), s.connections.end(),
            [](const ConnectionRow& a, const ConnectionRow& b) { return a.id < b.id; });
  constexpr auto relaxed = std::memory_order_relaxed;
  auto& c = s.counters;
  c.open = state.live.load(relaxed);
  c.accepted = state.accepted.load(relaxed);
  c.refused_by_cap = state.rejected.load(relaxed);
  c.penalised = state.penalised.load(relaxed);
  c.auth_failures = state.auth_failures.load(relaxed);
  c.protocol_errors = state.protocol_errors.load(relaxed);
  c.unauthenticated = state.unauthenticated.load(relaxed);
  c.early_dropped = state.pending.dropped();
  c.commands_started = state.commands_started.load(relaxed);
  c.commands_failed = state.commands_failed.load(relaxed);
  c.commands_running = state.commands.running();
  c.commands_queued = state.commands.queued();
  c.bytes_in = state.bytes_in_closed.load(relaxed);
  c.bytes_out = state.bytes_out_closed.load(relaxed);
  for (const auto& r : s.connections) {
    c.bytes_in += r.bytes_in;
    c.bytes_out += r.bytes_out;
  }
  s.uptime_s = seconds(Clock::now() - started);
  co_return s;
}

std::string stats_json(const StatsSnapshot& s, const ServerState& state, std::size_t max_bytes) {
  const auto& c = s.counters;
  Json head{
      {"server", Json{{"agent", state.agent},
                      {"pid", static_cast<long>(::getpid())},
                      {"uptime_s", s.uptime_s},
                      {"workers", s.workers},
                      {"listeners", state.urls}}},
      {"counters", Json{{"open", c.open},
                        {"accepted", c.accepted},
                        {"refused_by_cap", c.refused_by_cap},
                        {"penalised", c.penalised},
                        {"auth_failures", c.auth_failures},
                        {"protocol_errors", c.protocol_errors},
                        {"unauthenticated", c.unauthenticated},
                        {"early_dropped", c.early_dropped},
                        {"commands_started", c.commands_started},
                        {"commands_failed", c.commands_failed},
                        {"commands_running", c.commands_running},
                        {"commands_queued", c.commands_queued},
                        {"bytes_in", c.bytes_in},
                        {"bytes_out", c.bytes_out}}},
      {"connections_total", s.connections.size()},
      // Rewritten below when rows are left out; its width is reserved by the largest value.
      {"connections_omitted", s.connections.size()},
  };
  const std::string head_text = dump(head);
  // head_text ends with '}': the rows go in before it, as many as fit, oldest first.
  constexpr std::string_view kKey = ",\"connections\":[";
  std::size_t budget = max_bytes > head_text.size() + kKey.size() + 2
                           ? max_bytes - head_text.size() - kKey.size() - 2
                           : 0;
  std::string rows;
  std::size_t shown = 0;
  for (const auto& r : s.connections) {
    const std::string one = dump(row_json(r));
    const std::size_t need = one.size() + (shown > 0 ? 1 : 0);
    if (need > budget) break;
    if (shown > 0) rows += ',';
    rows += one;
    budget -= need;
    ++shown;
  }
  head["connections_omitted"] = s.connections.size() - shown;
  std::string out = dump(head);  // never longer than head_text: the count only shrank
  out.pop_back();
  out += kKey;
  out += rows;
  out += "]}";
  return out;
}

awaitable<std::string> ServerStats::document(std::size_t max_bytes) {
  const StatsSnapshot s = co_await take_snapshot(state_, pool_, started_);
  co_return stats_json(s, state_, max_bytes);
}

}  // namespace duplex::server
