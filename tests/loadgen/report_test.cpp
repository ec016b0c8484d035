// Report: the JSON object's names and values (what bench/suite.py reads), and the derived rates.
#include "duplex/loadgen/report.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace duplex::loadgen {
namespace {

BenchOptions options() {
  BenchOptions o;
  o.url = "tcp://127.0.0.1:9";
  o.connections = 4;
  o.threads = 2;
  o.duration = std::chrono::duration<double>(2.0);
  o.size = 100;
  return o;
}

TEST(Report, JsonHasEveryNameAndTheRates) {
  auto stats = std::make_unique<Stats>();
  stats->messages = 1000;
  stats->bytes_sent = stats->bytes_received = 100000;
  stats->connects = 4;
  stats->error(ErrorKind::reset);
  stats->error(ErrorKind::verify);
  stats->error(ErrorKind::verify);
  for (int i = 1; i <= 1000; ++i)
    stats->latency.record(static_cast<std::uint64_t>(i) * 1000);
  RunFacts facts;
  facts.protocol = WireProtocol::framed;
  facts.elapsed_s = 2.0;
  facts.client_cpu_s = 0.25;
  const auto j = nlohmann::json::parse(to_json(make_report(options(), *stats, facts)));
  for (const char* k : {"url",
                        "mode",
                        "protocol",
                        "connections",
                        "threads",
                        "duration_s",
                        "size",
                        "rate",
                        "messages",
                        "errors",
                        "errors_by_kind",
                        "bytes_sent",
                        "bytes_received",
                        "elapsed_s",
                        "msg_per_s",
                        "mb_per_s",
                        "latency_us",
                        "connects",
                        "conn_per_s",
                        "commands",
                        "cmd_per_s",
                        "server_rss_before_kib",
                        "server_rss_after_kib",
                        "rss_per_conn_bytes",
                        "client_cpu_s"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["url"], "tcp://127.0.0.1:9");
  EXPECT_EQ(j["mode"], "pingpong");
  EXPECT_EQ(j["protocol"], "framed");
  EXPECT_EQ(j["connections"], 4);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_TRUE(j["rate"].is_null());
  EXPECT_EQ(j["messages"], 1000);
  EXPECT_EQ(j["errors"], 3);
  EXPECT_EQ(j["errors_by_kind"]["reset"], 1);
  EXPECT_EQ(j["errors_by_kind"]["verify"], 2);
  EXPECT_EQ(j["errors_by_kind"]["connect"], 0);
  EXPECT_EQ(j["errors_by_kind"]["timeout"], 0);
  EXPECT_DOUBLE_EQ(j["msg_per_s"].get<double>(), 500.0);
  EXPECT_DOUBLE_EQ(j["mb_per_s"].get<double>(), 0.1);  // 200 kB both ways in 2 s
  const auto& l = j["latency_us"];
  for (const char* k : {"min", "mean", "p50", "p90", "p99", "p999", "max"})
    EXPECT_TRUE(l.contains(k)) << k;
  EXPECT_DOUBLE_EQ(l["min"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(l["max"].get<double>(), 1000.0);
  EXPECT_NEAR(l["p50"].get<double>(), 500.0, 5.0);
  EXPECT_NEAR(l["p99"].get<double>(), 990.0, 10.0);
  EXPECT_NEAR(l["mean"].get<double>(), 500.5, 0.01);
  EXPECT_TRUE(j["server_rss_before_kib"].is_null());
  EXPECT_TRUE(j["rss_per_conn_bytes"].is_null());
  EXPECT_DOUBLE_EQ(j["client_cpu_s"].get<double>(), 0.25);
}

TEST(Report, IdleRssPerConnectionAndStormAndExecRates) {
  auto stats = std::make_unique<Stats>();
  stats->messages = 500;
  auto o = options();
  o.mode = Mode::idle;
  o.rate = 1000.0;
  RunFacts facts;
  facts.elapsed_s = 1.0;
  facts.server_rss_before_kib = 1000;
  facts.server_rss_after_kib = 2000;
  facts.idle_open = 500;
  auto j = nlohmann::json::parse(to_json(make_report(o, *stats, facts)));
  EXPECT_EQ(j["rate"], 1000.0);
  EXPECT_EQ(j["server_rss_after_kib"], 2000);
  EXPECT_DOUBLE_EQ(j["rss_per_conn_bytes"].get<double>(), 1000.0 * 1024 / 500);

  o.mode = Mode::storm;
  j = nlohmann::json::parse(to_json(make_report(o, *stats, facts)));
  EXPECT_DOUBLE_EQ(j["conn_per_s"].get<double>(), 500.0);
  EXPECT_EQ(j["commands"], 0);

  o.mode = Mode::exec;
  j = nlohmann::json::parse(to_json(make_report(o, *stats, facts)));
  EXPECT_EQ(j["commands"], 500);
  EXPECT_DOUBLE_EQ(j["cmd_per_s"].get<double>(), 500.0);
}

TEST(Report, TextNamesTheErrorKinds) {
  auto stats = std::make_unique<Stats>();
  stats->error(ErrorKind::timeout);
  RunFacts facts;
  facts.elapsed_s = 1.0;
  const auto text = to_text(make_report(options(), *stats, facts));
  EXPECT_NE(text.find("errors: 1 (timeout 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("MB/s (payload, both ways)"), std::string::npos) << text;
}

}  // namespace
}  // namespace duplex::loadgen
