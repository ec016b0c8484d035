// The stats client: fetch (exec's connection and authentication, one request) and the table.
#include "duplex/client/stats.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "duplex/core/errors.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;
using Json = nlohmann::ordered_json;  // the counters in the server's order

struct TimedOut {};

awaitable<TimedOut> deadline(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor,
                       d.count() > 0 ? d : std::chrono::hours(24 * 365));
  co_await t.async_wait(net::use_tuple);
  co_return TimedOut{};
}

awaitable<Result<std::string>> request(Connection& conn, const ExecRequest& req) {
  Bytes request;
  wire::encode(wire::StatsRequest{}, request);
  if (auto w = co_await conn.write(request); !w) co_return std::move(w).failure();
  auto r = co_await conn.read_frame();
  if (!r) co_return std::move(r).failure();
  if (r->type != wire::MsgType::stats_reply)
    co_return fail(errc::unexpected_message,
                   fmt::format("{} answered STATS_REQUEST with {}", req.endpoint.url(),
                               wire::type_name(r->type)));
  co_await conn.finish();
  co_return std::string(as_chars(r->payload));
}

awaitable<Result<std::string>> ask(const ExecRequest& req) {
  // On a Unix socket the kernel tells the server who we are: its owner (or root) is answered
  // without authenticating, which a server without --exec could not offer. Nothing secret is
  // sent, so the server need not be ours for this try.
  if (req.endpoint.transport == net::Transport::unix_stream) {
    ClientOptions opt;
    opt.protocol = Protocol::framed;
    opt.timeout = std::chrono::milliseconds(0);  // fetch_stats has the deadline
    opt.agent = req.agent;
    opt.tls = req.tls;
    opt.trust = req.trust;
    auto conn = co_await Connection::open(req.endpoint, opt);
    if (!conn) co_return std::move(conn).failure();
    auto r = co_await request(*conn, req);
    if (r || r.error() != errc::auth_required) co_return r;
  }
  auto authed = co_await connect_and_authenticate(req);
  if (!authed) co_return std::move(authed).failure();
  co_return co_await request(authed->conn, req);
}

// 0.4s, 12s, 3m05s, 2h01m, 3d04h: short enough for a column, exact enough to compare.
std::string duration(double s) {
  if (s < 10) return fmt::format("{:.1f}s", s);
  const auto t = static_cast<std::uint64_t>(s);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  if (t < 86400) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  return fmt::format("{}d{:02}h", t / 86400, t % 86400 / 3600);
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

struct Row {
  std::uint64_t id = 0;
  double age = 0, idle = 0;
  std::uint64_t in = 0, out = 0;
  std::vector<std::string> cells;
};

}  // namespace

awaitable<Result<std::string>> fetch_stats(const ExecRequest& req,
                                           std::chrono::milliseconds timeout) {
  auto r = co_await (ask(req) || deadline(timeout));
  if (r.index() == 1)
    co_return fail(std::errc::timed_out,
                   fmt::format("no answer from {} within {} s", req.endpoint.url(),
                               std::chrono::duration<double>(timeout).count()));
  co_return std::move(std::get<0>(r));
}

std::optional<StatsSort> parse_stats_sort(std::string_view name) noexcept {
  if (name == "age") return StatsSort::age;
  if (name == "idle") return StatsSort::idle;
  if (name == "bytes") return StatsSort::bytes;
  if (name == "peer") return StatsSort::peer;
  if (name == "id") return StatsSort::id;
  return std::nullopt;
}

Result<std::string> stats_table(std::string_view json, StatsSort sort) {
  const Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("connections") || !doc["connections"].is_array() ||
      !doc.contains("counters") || !doc["counters"].is_object())
    return fail(errc::bad_message, "the server's stats are not the document expected");
  std::vector<std::string> head = {"ID",      "PEER",     "LISTENER", "TRANSPORT", "PROTOCOL",
                                   "SERVICE", "STATE",    "AGE",      "IDLE",      "IN",
                                   "OUT",     "IDENTITY", "COMMAND"};
  std::size_t first_number = 7, last_number = 10;  // right-aligned columns
  std::vector<Row> rows;
  std::vector<std::string> vias;  // a server older than the field sends none: direct
  try {
    for (const auto& c : doc["connections"]) {
      Row r;
      r.id = c.at("id").get<std::uint64_t>();
      r.age = c.at("age_s").get<double>();
      r.idle = c.at("idle_s").get<double>();
      r.in = c.at("bytes_in").get<std::uint64_t>();
      r.out = c.at("bytes_out").get<std::uint64_t>();
      r.cells = {std::to_string(r.id),
                 or_dash(c.at("peer").get<std::string>()),
                 or_dash(c.at("listener").get<std::string>()),
                 c.at("transport").get<std::string>(),
                 c.at("protocol").get<std::string>(),
                 c.at("service").get<std::string>(),
                 c.at("state").get<std::string>(),
                 duration(r.age),
                 duration(r.idle),
                 std::to_string(r.in),
                 std::to_string(r.out),
                 or_dash(c.at("identity").get<std::string>()),
                 or_dash(c.at("command").get<std::string>())};
      rows.push_back(std::move(r));
      vias.push_back(c.value("via", std::string()));
    }
  } catch (const Json::exception& e) {
    return fail(errc::bad_message, fmt::format("the server's stats have a bad row: {}", e.what()));
  }
  // Behind a load balancer, the balancer each client came through, beside the client; a direct
  // server's table keeps its columns.
  if (std::any_of(vias.begin(), vias.end(), [](const std::string& v) { return !v.empty(); })) {
    head.insert(head.begin() + 2, "VIA");
    for (std::size_t i = 0; i < rows.size(); ++i)
      rows[i].cells.insert(rows[i].cells.begin() + 2, or_dash(vias[i]));
    ++first_number;
    ++last_number;
  }
  // Ties (and the default) by id: the order connections arrived in.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.id < b.id; });
  switch (sort) {
    case StatsSort::age:
    case StatsSort::id: break;
    case StatsSort::idle:
      std::stable_sort(rows.begin(), rows.end(),
                       [](const Row& a, const Row& b) { return a.idle > b.idle; });
      break;
    case StatsSort::bytes:
      std::stable_sort(rows.begin(), rows.end(),
                       [](const Row& a, const Row& b) { return a.in + a.out > b.in + b.out; });
      break;
    case StatsSort::peer:
      std::stable_sort(rows.begin(), rows.end(),
                       [](const Row& a, const Row& b) { return a.cells[1] < b.cells[1]; });
      break;
  }

  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i)
    width[i] = head[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.cells.size(); ++i)
      width[i] = std::max(width[i], r.cells[i].size());
  std::string out;
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) l += "  ";
      const bool right = i >= first_number && i <= last_number;
      if (i + 1 == cells.size())
        l += cells[i];  // the last column is not padded: no trailing blanks
      else
        l += right ? fmt::format("{:>{}}", cells[i], width[i])
                   : fmt::format("{:<{}}", cells[i], width[i]);
    }
    out += l;
    out += '\n';
  };
  line(head);
  for (const auto& r : rows)
    line(r.cells);
  const auto omitted = doc.value("connections_omitted", std::uint64_t{0});
  if (omitted > 0)
    out +=
        fmt::format("({} more connections not listed: the reply would exceed a frame)\n", omitted);

  out += '\n';
  std::size_t key_width = 0;
  for (const auto& [k, v] : doc["counters"].items())
    key_width = std::max(key_width, k.size());
  for (const auto& [k, v] : doc["counters"].items())
    out += fmt::format("{:<{}}  {}\n", k, key_width, v.dump());
  return out;
}

}  // namespace duplex::client
