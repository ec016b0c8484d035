// The metrics endpoint (`serve --metrics`): real scrapes over HTTP after real traffic; the text
// checked by promtool and curl when installed; hostile HTTP clients harm neither the endpoint
// nor the service port.
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/exec_frames.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

struct HttpReply {
  std::string status;  // "HTTP/1.1 200 OK"
  std::string head;    // the header lines
  std::string body;
};

// "http://127.0.0.1:PORT/metrics" -> "tcp://127.0.0.1:PORT" (what SocketClient dials).
std::string socket_url(const std::string& http) {
  const std::string rest = http.substr(http.find("://") + 3);
  return "tcp://" + rest.substr(0, rest.find('/'));
}

// One request over a plain socket (no HTTP library between the test and the server's bytes).
HttpReply http_get(const std::string& metrics_url, const std::string& request) {
  SocketClient c(socket_url(metrics_url));
  c.send_all(request);
  const std::string all = c.recv_until_eof(10s);
  HttpReply r;
  const auto eol = all.find("\r\n");
  const auto end = all.find("\r\n\r\n");
  if (eol == std::string::npos || end == std::string::npos) {
    r.status = all;
    return r;
  }
  r.status = all.substr(0, eol);
  r.head = all.substr(eol + 2, end - eol - 2);
  r.body = all.substr(end + 4);
  return r;
}

HttpReply scrape(const std::string& metrics_url, const std::string& accept = {}) {
  std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!accept.empty()) req += "Accept: " + accept + "\r\n";
  return http_get(metrics_url, req + "\r\n");
}

// The value of the sample named exactly `series` ("name" or "name{labels}"), if present.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    pos = eol + 1;
  }
  return std::nullopt;
}

double value_of(const std::string& metrics_url, const std::string& series) {
  return sample(scrape(metrics_url).body, series).value_or(-1);
}

// Traffic of every kind the endpoint counts, then a scrape: each counter and histogram count
// matches what was done. Histogram observations are made just after a reply goes out, so the
// counts are awaited, then checked to be exact.
TEST(Metrics, CountersAndHistogramsMatchTheTraffic) {
  TempDir dir;
  TestServer server({"--metrics", "tcp://127.0.0.1:0", "--exec", "--allow-root", "--token-file",
                     dir.file("token")});
  const std::string m = server.metrics_url();
  ASSERT_EQ(m.rfind("http://127.0.0.1:", 0), 0u) << m;
  ASSERT_NE(m.find("/metrics"), std::string::npos) << m;

  {  // raw: three round trips on one connection
    SocketClient raw(server.url());
    for (const char* msg : {"one", "two", "three"}) {
      raw.send_all(msg);
      ASSERT_EQ(raw.recv_exact(std::string(msg).size()), ascii_upper(msg));
    }
  }
  // framed: two upper requests on one connection
  auto sent = run({duplex_bin(), "send", server.url(), "four", "five"});
  ASSERT_EQ(sent.status.code, 0) << sent.err;
  ASSERT_EQ(sent.out, "FOUR\nFIVE\n");
  // exec: two commands, each on its own connection
  for (int i = 0; i < 2; ++i) {
    auto r =
        run({duplex_bin(), "exec", "--token-file", dir.file("token"), server.url(), "--", "true"});
    ASSERT_EQ(r.status.code, 0) << r.err;
  }
  {  // one failed authentication
    SocketClient c(server.url());
    c.send_all(preface_and_hello() + auth_frame("not-the-token"));
    ASSERT_EQ(read_frame(c).type, msg::welcome);
    EXPECT_TRUE(error_then_close(c, 34));
  }
  {  // one protocol error: a framed client whose preface is wrong
    SocketClient c(server.url());
    c.send_all(std::string("\0NOT-A-PREFACE-AT-ALL", 21));
    EXPECT_TRUE(c.wait_closed(10s));
  }

  EXPECT_TRUE(eventually(
      [&] {
        return value_of(m, "duplex_upper_round_trip_seconds_count") == 5 &&
               value_of(m, "duplex_command_duration_seconds_count") == 2 &&
               value_of(m, "duplex_connections_open") == 0;
      },
      10s))
      << scrape(m).body;
  const HttpReply r = scrape(m);
  ASSERT_EQ(r.status, "HTTP/1.1 200 OK");
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.head;
  const std::string& t = r.body;
  EXPECT_EQ(sample(t, "duplex_connections_accepted_total"), 6.0) << t;
  EXPECT_EQ(sample(t, "duplex_commands_started_total"), 2.0) << t;
  EXPECT_EQ(sample(t, "duplex_auth_failures_total"), 1.0) << t;
  // The refused AUTH ends its session as a breach does (ERROR, close): it is counted there too.
  EXPECT_EQ(sample(t, "duplex_protocol_errors_total"), 2.0) << t;
  EXPECT_EQ(sample(t, "duplex_connections_rejected_total"), 0.0) << t;
  EXPECT_EQ(sample(t, "duplex_upper_round_trip_seconds_count"), 5.0) << t;
  EXPECT_EQ(sample(t, "duplex_upper_round_trip_seconds_bucket{le=\"+Inf\"}"), 5.0) << t;
  EXPECT_EQ(sample(t, "duplex_command_duration_seconds_bucket{le=\"+Inf\"}"), 2.0) << t;
  EXPECT_GT(sample(t, "duplex_command_duration_seconds_sum").value_or(0), 0.0) << t;
  EXPECT_EQ(sample(t, "duplex_commands_running"), 0.0) << t;

  // Open connections are counted by mode while they are open.
  SocketClient raw(server.url());
  raw.send_all("x");
  ASSERT_EQ(raw.recv_exact(1), "X");
  SocketClient framed(server.url());
  framed.send_all(preface_and_hello());
  ASSERT_EQ(read_frame(framed).type, msg::welcome);
  const std::string now = scrape(m).body;
  EXPECT_EQ(sample(now, "duplex_connections_open"), 2.0) << now;
  EXPECT_EQ(sample(now, "duplex_connections_by_mode{mode=\"raw\"}"), 1.0) << now;
  EXPECT_EQ(sample(now, "duplex_connections_by_mode{mode=\"framed\"}"), 1.0) << now;
}

// The counters `duplex stats` shows are scraped too: failed commands, and bytes in and out
// (closed connections' and, while they are open, the open ones', so a long connection's traffic
// shows before it ends).
TEST(Metrics, FailedCommandsAndBytesAreCounted) {
  TempDir dir;
  TestServer server({"--metrics", "tcp://127.0.0.1:0", "--exec", "--allow-root", "--token-file",
                     dir.file("token")});
  const std::string m = server.metrics_url();
  const std::string text = scrape(m).body;
  EXPECT_EQ(sample(text, "duplex_commands_failed_total"), 0.0) << text;
  EXPECT_EQ(sample(text, "duplex_received_bytes_total"), 0.0) << text;
  EXPECT_EQ(sample(text, "duplex_sent_bytes_total"), 0.0) << text;

  {  // raw: 5 bytes each way, then closed
    SocketClient raw(server.url());
    raw.send_all("hello");
    ASSERT_EQ(raw.recv_exact(5), "HELLO");
  }
  EXPECT_TRUE(eventually([&] { return value_of(m, "duplex_connections_open") == 0; }, 10s));
  const std::string closed = scrape(m).body;
  EXPECT_EQ(sample(closed, "duplex_received_bytes_total"), 5.0) << closed;
  EXPECT_EQ(sample(closed, "duplex_sent_bytes_total"), 5.0) << closed;

  // An open connection's bytes are in the counters before it closes.
  SocketClient open(server.url());
  open.send_all("abc");
  ASSERT_EQ(open.recv_exact(3), "ABC");
  const std::string live = scrape(m).body;
  EXPECT_EQ(sample(live, "duplex_connections_open"), 1.0) << live;
  EXPECT_EQ(sample(live, "duplex_received_bytes_total"), 8.0) << live;
  EXPECT_EQ(sample(live, "duplex_sent_bytes_total"), 8.0) << live;
  open.close();
  EXPECT_TRUE(eventually([&] { return value_of(m, "duplex_connections_open") == 0; }, 10s));
  EXPECT_EQ(value_of(m, "duplex_received_bytes_total"), 8.0) << "counted once, not again at close";

  // Two commands fail (a non-zero status, a program that is not there), one succeeds.
  const auto exec = [&](std::vector<std::string> command) {
    std::vector<std::string> argv{duplex_bin(),      "exec",       "--token-file",
                                  dir.file("token"), server.url(), "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    return run(argv).status.code;
  };
  EXPECT_EQ(exec({"sh", "-c", "exit 3"}), 3);
  EXPECT_NE(exec({"/nonexistent/program"}), 0);
  EXPECT_EQ(exec({"true"}), 0);
  EXPECT_TRUE(eventually([&] { return value_of(m, "duplex_connections_open") == 0; }, 10s));
  const std::string after = scrape(m).body;
  EXPECT_EQ(sample(after, "duplex_commands_failed_total"), 2.0) << after;
  EXPECT_GT(sample(after, "duplex_received_bytes_total").value_or(0), 8.0) << after;
  EXPECT_GT(sample(after, "duplex_sent_bytes_total").value_or(0), 8.0) << after;
}

// The text passes Prometheus's own checker (promtool check metrics: format and naming rules).
TEST(Metrics, PromtoolAcceptsTheText) {
  const std::string promtool = find_program("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
  TestServer server({"--metrics", "tcp://127.0.0.1:0"});
  ASSERT_TRUE(serves_raw(server.url()));
  ASSERT_TRUE(eventually([&] {
    return value_of(server.metrics_url(), "duplex_upper_round_trip_seconds_count") == 1;
  }));
  const HttpReply r = scrape(server.metrics_url());
  ASSERT_EQ(r.status, "HTTP/1.1 200 OK");
  auto checked = run({promtool, "check", "metrics"}, r.body);
  EXPECT_EQ(checked.status.code, 0) << checked.out << checked.err << "\n" << r.body;
  EXPECT_EQ(checked.out + checked.err, "") << "promtool found something to say";
}

// Accept: application/openmetrics-text gets OpenMetrics: its content type, a counter family
// named without _total, and the closing # EOF.
TEST(Metrics, OpenMetricsWhenAsked) {
  TestServer server({"--metrics", "tcp://127.0.0.1:0"});
  const HttpReply r =
      scrape(server.metrics_url(), "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
  ASSERT_EQ(r.status, "HTTP/1.1 200 OK");
  EXPECT_NE(r.head.find("Content-Type: application/openmetrics-text; version=1.0.0"),
            std::string::npos)
      << r.head;
  EXPECT_NE(r.body.find("# TYPE duplex_connections_accepted counter\n"), std::string::npos)
      << r.body;
  EXPECT_TRUE(sample(r.body, "duplex_connections_accepted_total").has_value()) << r.body;
  ASSERT_GE(r.body.size(), 6u);
  EXPECT_EQ(r.body.substr(r.body.size() - 6), "# EOF\n");
}

// The tool people use first: curl gets 200 and the text; a wrong path is 404, not metrics.
TEST(Metrics, CurlScrapes) {
  const std::string curl = find_program("curl");
  if (curl.empty()) GTEST_SKIP() << "curl is not installed";
  TestServer server({"--metrics", "tcp://127.0.0.1:0"});
  auto ok = run({curl, "-sS", "--fail", "--max-time", "10", server.metrics_url()});
  EXPECT_EQ(ok.status.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("duplex_build_info{version=\""), std::string::npos) << ok.out;
  std::string root = server.metrics_url();
  root.resize(root.size() - std::string("metrics").size());
  auto missing = run({curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                      root + "nothing-here"});
  EXPECT_EQ(missing.out, "404") << missing.err;
}

// Garbage, a wrong method, an endless header and a client that stalls mid-request each get a
// short answer or are cut off; meanwhile scrapes and the service port work, and the server's
// fds come back to what they were.
TEST(Metrics, HostileHttpClientsHarmNothing) {
  TestServer server({"--metrics", "tcp://127.0.0.1:0"});
  const std::string m = server.metrics_url();
  ASSERT_EQ(scrape(m).status, "HTTP/1.1 200 OK");
  const int fds_before = fd_count(server.pid());

  EXPECT_EQ(http_get(m, std::string("\x16\x03\x01garbage\0\xff\r\n\r\n", 16)).status,
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(http_get(m, "POST /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n").status,
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(http_get(m, "GET /other HTTP/1.1\r\n\r\n").status, "HTTP/1.1 404 Not Found");
  {  // a head that never ends: answered 431 once over the limit, never buffered whole
    SocketClient c(socket_url(m));
    c.send_all("GET /metrics HTTP/1.1\r\nX-Long: ");
    std::string reply;
    const std::string chunk(4096, 'a');
    for (int i = 0; i < 64; ++i) {
      try {
        c.send_all(chunk);
      } catch (const std::exception&) {
        break;  // the server answered and closed: our sends now fail
      }
      if (auto got = c.recv_some(4096, 1ms); got && !got->empty()) {
        reply = *got;
        break;
      }
    }
    if (reply.empty()) reply = c.recv_some(4096, 10s).value_or("");
    EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply;
  }
  // Stalled clients: half a request each, held open. Scrapes and the service go on.
  std::vector<SocketClient> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.emplace_back(socket_url(m));
    stalled.back().send_all("GET /metr");
  }
  EXPECT_EQ(scrape(m).status, "HTTP/1.1 200 OK") << "a scrape beside stalled clients";
  EXPECT_TRUE(serves_raw(server.url()));
  for (auto& c : stalled)
    c.close();
  stalled.clear();
  // Many at once: past the endpoint's bound the newest are closed at once, not queued; the
  // service port never notices.
  for (int i = 0; i < 40; ++i) {
    stalled.emplace_back(socket_url(m));
    stalled.back().send_all("GET /metr");
  }
  EXPECT_TRUE(stalled.back().wait_closed(10s)) << "a scraper over the bound is turned away";
  EXPECT_TRUE(serves_raw(server.url()));
  for (auto& c : stalled)
    c.close();
  stalled.clear();
  EXPECT_TRUE(eventually([&] { return scrape(m).status == "HTTP/1.1 200 OK"; }, 10s));
  EXPECT_TRUE(eventually([&] { return fd_count(server.pid()) <= fds_before; }, 10s))
      << fd_count(server.pid()) << " fds, " << fds_before << " before";
  EXPECT_EQ(server.stop().code, 0);
}

// The endpoint has its own address: the service port answers a GET as the tutorial's protocol
// does (upper-cased), and an endpoint on a port already taken is refused at start.
TEST(Metrics, NotOnTheServicePort) {
  TestServer server({"--metrics", "tcp://127.0.0.1:0"});
  EXPECT_NE(server.metrics_url(), "http://" + server.url().substr(6) + "/metrics");
  {
    SocketClient c(server.url());
    const std::string get = "GET /metrics HTTP/1.1\r\n\r\n";
    c.send_all(get);
    EXPECT_EQ(c.recv_exact(get.size()), ascii_upper(get));
  }
  auto clash = run(
      {duplex_bin(), "serve", "--listen", "tcp://127.0.0.1:0", "--metrics", server.url()}, {}, 30s);
  EXPECT_EQ(clash.status.code, 1) << clash.err;
  EXPECT_NE(clash.err.find("cannot listen on " + server.url()), std::string::npos) << clash.err;
  EXPECT_EQ(line_count(clash.err), 1u) << clash.err;
  auto udp = run(
      {duplex_bin(), "serve", "--listen", "tcp://127.0.0.1:0", "--metrics", "udp://127.0.0.1:0"},
      {}, 30s);
  EXPECT_EQ(udp.status.code, 2) << udp.err;
  EXPECT_NE(udp.err.find("--metrics"), std::string::npos) << udp.err;
}

// On a Unix socket (reachable by file permissions only): "metrics on unix:///…", scraped there.
TEST(Metrics, OnAUnixSocket) {
  TempDir dir;
  const std::string where = "unix://" + dir.file("metrics.sock");
  TestServer server({"--metrics", where});
  EXPECT_EQ(server.metrics_url(), where);
  SocketClient c(where);
  c.send_all("GET /metrics HTTP/1.0\r\n\r\n");
  const std::string all = c.recv_until_eof(10s);
  EXPECT_EQ(all.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << all;
  EXPECT_NE(all.find("duplex_connections_open 0\n"), std::string::npos) << all;
}

}  // namespace
}  // namespace duplex::test
