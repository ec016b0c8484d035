// SIGHUP with --config: the file is read again; listeners are added and closed, limits apply to
// new connections, open sessions go on; a broken file is one line and the old configuration stays.
#include <array>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());  // as editors save: the reader never sees half a file
}

// One round trip of the tutorial's protocol on an open connection.
std::string round_trip(SocketClient& c, const std::string& line) {
  c.send_all(line);
  return c.recv_exact(line.size());
}

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

TEST(Reload, AddsAListenerAndLowersALimitWhileOpenSessionsGoOn) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\"]\nmax-connections = 100\n"
                              "reserved-connections = 0\n",
                              a));
  TestServer server({"--config", cfg, "--threads", "2"}, 1);
  SocketClient old_session(a);
  ASSERT_EQ(round_trip(old_session, "before\n"), "BEFORE\n");

  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\nmax-connections = 2\n"
                              "reserved-connections = 0\n",
                              a, b));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  const std::string log = server.stderr_text();
  EXPECT_NE(log.find("reload: listening on " + b), std::string::npos) << log;
  EXPECT_NE(log.find("reload: max-connections 100 -> 2"), std::string::npos) << log;

  // The new listener answers; the session opened before the reload goes on.
  SocketClient on_b(b);
  EXPECT_EQ(round_trip(on_b, "new listener\n"), "NEW LISTENER\n");
  EXPECT_EQ(round_trip(old_session, "still here\n"), "STILL HERE\n");
  // Two are open: the new --max-connections 2 refuses a third.
  SocketClient third(a);
  EXPECT_TRUE(third.wait_closed()) << "a third connection was served over max-connections 2";
  EXPECT_EQ(round_trip(old_session, "and on\n"), "AND ON\n");
  EXPECT_EQ(server.stop(), kOk);
}

TEST(Reload, ARemovedListenerClosesButItsSessionsGoOn) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\n", a, b));
  TestServer server({"--config", cfg}, 2);
  SocketClient on_b(b);
  ASSERT_EQ(round_trip(on_b, "x\n"), "X\n");

  write_file(cfg, fmt::format("listen = [\"{}\"]\n", a));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  EXPECT_TRUE(server.wait_stderr("reload: no longer listening on " + b)) << server.stderr_text();
  EXPECT_THROW(SocketClient{b}, std::runtime_error) << "the removed listener still accepts";
  EXPECT_EQ(round_trip(on_b, "open session\n"), "OPEN SESSION\n");
  SocketClient on_a(a);
  EXPECT_EQ(round_trip(on_a, "kept\n"), "KEPT\n");
  EXPECT_EQ(server.stop(), kOk);
}

TEST(Reload, ABrokenFileIsOneLineAndTheRunningConfigurationStays) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\"]\n", a));
  TestServer server({"--config", cfg}, 1);

  // A valid new listener beside a bad value: nothing of it is taken.
  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\nmax-connections = \"lots\"\n", a, b));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("keeping the running configuration")) << server.stderr_text();
  const std::string log = server.stderr_text();
  const auto at = log.find("reload: ");
  ASSERT_NE(at, std::string::npos);
  const std::string line = log.substr(log.rfind('\n', log.find("keeping the running")) + 1);
  EXPECT_NE(line.find(cfg + " line 2"), std::string::npos) << line;
  EXPECT_NE(line.find("max-connections"), std::string::npos) << line;
  EXPECT_THROW(SocketClient{b}, std::runtime_error);
  SocketClient on_a(a);
  EXPECT_EQ(round_trip(on_a, "alive\n"), "ALIVE\n");

  // A listener that cannot open (its directory does not exist) leaves everything as it was too.
  write_file(cfg, fmt::format("listen = [\"{}\", \"unix://{}\"]\nmax-connections = 7\n", a,
                              dir.file("missing/c.sock")));
  server.process().signal(SIGHUP);
  EXPECT_TRUE(server.wait_stderr("cannot listen on unix://" + dir.file("missing/c.sock")))
      << server.stderr_text();
  EXPECT_EQ(server.stderr_text().find("max-connections 10000 -> 7"), std::string::npos);
  EXPECT_EQ(round_trip(on_a, "still\n"), "STILL\n");
  EXPECT_EQ(server.stop(), kOk);
}

// Many round trips on open connections while the file changes back and forth: none is lost.
TEST(Reload, ReloadsUnderLoadDropNoSession) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string cfg = dir.file("serve.toml");
  const auto version = [&](int i) {
    return fmt::format("listen = [\"{}\"]\nmax-frame = {}\nidle-timeout = {}\n", a,
                       i % 2 ? 65536 : 131072, i % 2 ? 60 : 120);
  };
  write_file(cfg, version(0));
  TestServer server({"--config", cfg, "--threads", "2"}, 1);
  constexpr std::size_t kClients = 4;
  constexpr int kTrips = 300;
  constexpr int kReloads = 8;
  std::array<int, kClients> answered{};
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      try {
        SocketClient s(a);
        for (int i = 0; i < kTrips; ++i) {
          const std::string line = fmt::format("client {} trip {}\n", c, i);
          std::string upper = line;
          for (auto& ch : upper)
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          if (round_trip(s, line) != upper) return;
          ++answered[c];
        }
      } catch (const std::exception&) {  // counted short below
      }
    });
  for (int i = 1; i <= kReloads; ++i) {
    write_file(cfg, version(i));
    server.process().signal(SIGHUP);
    const bool done = eventually(
        [&] { return count(server.stderr_text(), "reload: done") >= static_cast<std::size_t>(i); },
        10s);
    EXPECT_TRUE(done) << server.stderr_text();
    if (!done) break;
  }
  for (auto& t : clients)
    t.join();
  for (std::size_t c = 0; c < kClients; ++c)
    EXPECT_EQ(answered[c], kTrips) << "client " << c;
  SocketClient after(a);
  EXPECT_EQ(round_trip(after, "after\n"), "AFTER\n");
  EXPECT_EQ(server.stop(), kOk);
}

// "PROXY TCP4 203.0.113.7 127.0.0.1 4660 PORT\r\n": a balancer's header carrying that client.
std::string proxy_v1(int port) {
  return fmt::format("PROXY TCP4 203.0.113.7 127.0.0.1 4660 {}\r\n", port);
}

// A connection from `source` that opens with a PROXY header, then asks for one round trip:
// true when it is answered, false when the server closes it instead.
bool served_with_header(const TestServer& server, const std::string& source) {
  SocketClient c(server.url(), source);
  c.send_all(proxy_v1(server.port()) + "abc");
  const auto got = c.recv_some(3, 10s);
  return got.has_value() && *got == "ABC";
}

// The trusted balancers are read from the settings in force when a connection is accepted: a
// reload that names another balancer trusts it at once and stops trusting the old one for new
// connections (one already open goes on); turning --proxy-protocol off serves every peer as a
// direct client again. Each change is one line in the log.
TEST(Reload, TrustedProxiesAndTheProxyProtocolChangeForNewConnections) {
  TempDir dir;
  const std::string cfg = dir.file("serve.toml");
  const auto write = [&](const std::string& proxy) {
    write_file(cfg, "listen = [\"tcp://127.0.0.1:0\"]\n" + proxy);
  };
  write("proxy-protocol = true\ntrusted-proxy = [\"127.0.0.2\"]\n");
  TestServer server({"--config", cfg, "-v"}, 1);
  // The port is kept across reloads: the file names port 0, the listener is the same one.
  EXPECT_TRUE(served_with_header(server, "127.0.0.2"));
  EXPECT_FALSE(served_with_header(server, "127.0.0.3")) << "an untrusted header was believed";
  SocketClient before(server.url(), "127.0.0.2");
  before.send_all(proxy_v1(server.port()) + "x");
  ASSERT_EQ(before.recv_exact(1), "X");

  write("proxy-protocol = true\ntrusted-proxy = [\"127.0.0.3\"]\n");
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  EXPECT_NE(server.stderr_text().find("reload: trusted-proxy [127.0.0.2] -> [127.0.0.3]"),
            std::string::npos)
      << server.stderr_text();
  EXPECT_TRUE(served_with_header(server, "127.0.0.3"));
  EXPECT_TRUE(server.wait_stderr("client 203.0.113.7:4660 via 127.0.0.3:")) << server.stderr_text();
  EXPECT_FALSE(served_with_header(server, "127.0.0.2")) << "the old balancer is still trusted";
  EXPECT_EQ(round_trip(before, "still"), "STILL") << "a connection accepted before the reload";
  {  // a trusted balancer's connection without a header is refused
    SocketClient bare(server.url(), "127.0.0.3");
    bare.send_all("abc");
    EXPECT_TRUE(bare.wait_closed());
  }

  write("");
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: proxy-protocol on -> off")) << server.stderr_text();
  ASSERT_TRUE(server.wait_stderr("(2 setting(s) changed)")) << server.stderr_text();
  SocketClient direct(server.url(), "127.0.0.3");
  EXPECT_EQ(round_trip(direct, "abc"), "ABC") << "served as a direct client";
  EXPECT_EQ(server.stderr_text().find("restart"), std::string::npos) << server.stderr_text();
  EXPECT_EQ(server.stop(), kOk);
}

// The metrics endpoint is made at start (its thread, and the histograms sessions fill): a reload
// that moves it says in one warning line that a restart is needed, and the endpoint goes on where
// it was. A reload that leaves it alone says nothing of it.
TEST(Reload, AMovedMetricsEndpointWaitsForARestartAndSaysSo) {
  TempDir dir;
  const std::string cfg = dir.file("serve.toml");
  const std::string listen = "listen = [\"unix://" + dir.file("s.sock") + "\"]\n";
  write_file(cfg, listen + "metrics = \"tcp://127.0.0.1:0\"\n");
  TestServer server({"--config", cfg}, 1);
  // TestServer reads the "metrics on" line only for a --metrics flag: here the file names it.
  const auto said = server.process().read_line(15s);
  ASSERT_TRUE(said.has_value());
  ASSERT_EQ(said->rfind("metrics on http://127.0.0.1:", 0), 0u) << *said;
  const std::string m = said->substr(std::string("metrics on ").size());
  const auto scrape_status = [&] {
    const std::string rest = m.substr(std::string("http://").size());
    SocketClient c("tcp://" + rest.substr(0, rest.find('/')));
    c.send_all("GET /metrics HTTP/1.0\r\n\r\n");
    const std::string all = c.recv_until_eof(10s);
    return all.substr(0, all.find("\r\n"));
  };

  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  EXPECT_EQ(server.stderr_text().find("metrics"), std::string::npos) << server.stderr_text();

  const std::string moved = dir.file("metrics.sock");
  write_file(cfg, listen + "metrics = \"unix://" + moved + "\"\n");
  server.process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return count(server.stderr_text(), "reload: done") == 2; }))
      << server.stderr_text();
  const std::string log = server.stderr_text();
  EXPECT_EQ(count(log, "reload: metrics changed: kept as they are until a restart"), 1u) << log;
  EXPECT_EQ(count(log, "metrics"), 1u) << log;
  EXPECT_EQ(scrape_status(), "HTTP/1.1 200 OK") << "the endpoint moved or stopped";
  EXPECT_THROW(SocketClient{"unix://" + moved}, std::runtime_error) << "opened without a restart";
  EXPECT_EQ(server.stop(), kOk);
}

}  // namespace
}  // namespace duplex::test
