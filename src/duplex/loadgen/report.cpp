// Report: derived rates, the JSON object and the text summary.
#include "duplex/loadgen/report.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace duplex::loadgen {
namespace {

double per_s(double n, double s) {
  return s > 0 ? n / s : 0.0;
}
double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

Report make_report(const BenchOptions& opt, const Stats& stats, const RunFacts& facts) {
  Report r;
  r.url = opt.url;
  r.mode = name_of(opt.mode);
  r.protocol = name_of(facts.protocol);
  r.verify = name_of(opt.verify);
  r.connections = opt.connections;
  r.threads = opt.threads;
  r.duration_s = opt.duration.count();
  r.size = opt.size;
  r.rate = opt.rate;
  r.messages = stats.messages;
  r.errors = stats.error_total();
  r.errors_by_kind = stats.errors;
  r.bytes_sent = stats.bytes_sent;
  r.bytes_received = stats.bytes_received;
  r.elapsed_s = facts.elapsed_s;
  r.msg_per_s = per_s(static_cast<double>(stats.messages), facts.elapsed_s);
  r.mb_per_s =
      per_s(static_cast<double>(stats.bytes_sent + stats.bytes_received), facts.elapsed_s) / 1e6;
  const auto& h = stats.latency;
  r.latency_us = {us(h.min()),          h.mean() / 1000.0,    us(h.percentile(50)),
                  us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)),
                  us(h.max())};
  r.connects = stats.connects;
  r.conn_per_s =
      per_s(static_cast<double>(opt.mode == Mode::storm ? stats.messages : stats.window_connects),
            facts.elapsed_s);
  if (opt.mode == Mode::exec) {
    r.commands = stats.messages;
    r.cmd_per_s = r.msg_per_s;
  }
  r.server_rss_before_kib = facts.server_rss_before_kib;
  r.server_rss_after_kib = facts.server_rss_after_kib;
  if (facts.server_rss_before_kib && facts.server_rss_after_kib && facts.idle_open > 0)
    r.rss_per_conn_bytes =
        static_cast<double>(*facts.server_rss_after_kib - *facts.server_rss_before_kib) * 1024.0 /
        static_cast<double>(facts.idle_open);
  r.client_cpu_s = facts.client_cpu_s;
  r.first_errors = facts.first_errors;
  return r;
}

std::string to_json(const Report& r) {
  nlohmann::json kinds = nlohmann::json::object();
  for (std::size_t i = 0; i < kErrorKinds; ++i)
    kinds[std::string(name_of(static_cast<ErrorKind>(i)))] = r.errors_by_kind[i];
  const auto& l = r.latency_us;
  nlohmann::json j = {
      {"url", r.url},
      {"mode", r.mode},
      {"protocol", r.protocol},
      {"verify", r.verify},
      {"connections", r.connections},
      {"threads", r.threads},
      {"duration_s", r.duration_s},
      {"size", r.size},
      {"rate", or_null(r.rate)},
      {"messages", r.messages},
      {"errors", r.errors},
      {"errors_by_kind", kinds},
      {"bytes_sent", r.bytes_sent},
      {"bytes_received", r.bytes_received},
      {"elapsed_s", r.elapsed_s},
      {"msg_per_s", r.msg_per_s},
      {"mb_per_s", r.mb_per_s},
      {"latency_us",
       {{"min", l.min},
        {"mean", l.mean},
        {"p50", l.p50},
        {"p90", l.p90},
        {"p99", l.p99},
        {"p999", l.p999},
        {"max", l.max}}},
      {"connects", r.connects},
      {"conn_per_s", r.conn_per_s},
      {"commands", r.commands},
      {"cmd_per_s", r.cmd_per_s},
      {"server_rss_before_kib", or_null(r.server_rss_before_kib)},
      {"server_rss_after_kib", or_null(r.server_rss_after_kib)},
      {"rss_per_conn_bytes", or_null(r.rss_per_conn_bytes)},
      {"client_cpu_s", r.client_cpu_s},
  };
  return j.dump();
}

std::string to_text(const Report& r) {
  std::string out = fmt::format(
      "{} {} ({}), {} connection{}, {} thread{}, {} bytes, {}\n", r.mode, r.url, r.protocol,
      r.connections, r.connections == 1 ? "" : "s", r.threads, r.threads == 1 ? "" : "s", r.size,
      r.rate ? fmt::format("open loop at {:.0f} msg/s", *r.rate) : std::string("closed loop"));
  out += fmt::format("  {} messages in {:.2f} s: {:.0f} msg/s, {:.2f} MB/s (payload, both ways)\n",
                     r.messages, r.elapsed_s, r.msg_per_s, r.mb_per_s);
  if (r.mode == "storm" || r.connects > r.connections)
    out += fmt::format("  {} connections made, {:.0f} conn/s\n", r.connects, r.conn_per_s);
  if (r.mode == "exec")
    out += fmt::format("  {} commands, {:.1f} cmd/s\n", r.commands, r.cmd_per_s);
  const auto& l = r.latency_us;
  out += fmt::format(
      "  latency µs: min {:.1f}  p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}  "
      "mean {:.1f}\n",
      l.min, l.p50, l.p90, l.p99, l.p999, l.max, l.mean);
  if (r.server_rss_before_kib && r.server_rss_after_kib)
    out += fmt::format(
        "  server RSS {} KiB before, {} KiB with the connections open: {} bytes "
        "each\n",
        *r.server_rss_before_kib, *r.server_rss_after_kib,
        r.rss_per_conn_bytes ? fmt::format("{:.0f}", *r.rss_per_conn_bytes) : "?");
  out += fmt::format("  errors: {}", r.errors);
  if (r.errors > 0) {
    const char* sep = " (";
    for (std::size_t i = 0; i < kErrorKinds; ++i) {
      if (r.errors_by_kind[i] == 0) continue;
      out += fmt::format("{}{} {}", sep, name_of(static_cast<ErrorKind>(i)), r.errors_by_kind[i]);
      sep = ", ";
    }
    out += ")";
  }
  out += fmt::format("\n  client CPU {:.2f} s\n", r.client_cpu_s);
  return out;
}

}  // namespace duplex::loadgen
