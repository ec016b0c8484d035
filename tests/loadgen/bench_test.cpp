// `duplex bench` against real servers: `duplex serve` over TCP, Unix, TLS and UDP, the exec
// service, the seed's server.py; the exit statuses and the JSON report.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "compat/seed_programs.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

using json = nlohmann::json;

struct Bench {
  RunResult r;
  json j;
};

// Runs `duplex bench ARGS... --json` with a config directory of its own (known_hosts, token).
Bench bench(std::vector<std::string> args, const TempDir& home) {
  args.insert(args.begin(), {duplex_bin(), "bench"});
  args.push_back("--json");
  Bench b{run(args, {}, 60s, {"XDG_CONFIG_HOME=" + home.path().string()}), {}};
  if (!b.r.out.empty()) b.j = json::parse(b.r.out);
  return b;
}

// The short run every case uses: a warm-up, then half a second.
const std::vector<std::string> kShort = {"-d", "0.5", "--warmup", "0.1"};

// Sockets a process holds (its listeners and connections): unlike fd_count, not moved by the
// event loop descriptors (epoll, eventfd, timerfd) a server's worker makes at its first session.
int socket_count(pid_t pid) {
  int n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(Bench, PingpongOverTcpSpeaksFramedAndReportsJson) {
  TempDir home;
  TestServer server;
  auto b = bench(with({server.url(), "-c", "4"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.r.err, "");
  EXPECT_EQ(b.j["mode"], "pingpong");
  EXPECT_EQ(b.j["protocol"], "framed");
  EXPECT_EQ(b.j["connections"], 4);
  EXPECT_GT(b.j["messages"].get<std::uint64_t>(), 100u);
  EXPECT_EQ(b.j["errors"], 0);
  EXPECT_EQ(b.j["connects"], 4);
  EXPECT_EQ(b.j["bytes_sent"].get<std::uint64_t>(), b.j["messages"].get<std::uint64_t>() * 64);
  EXPECT_NEAR(b.j["elapsed_s"].get<double>(), 0.5, 0.05);
  EXPECT_GT(b.j["msg_per_s"].get<double>(), 0);
  const auto& l = b.j["latency_us"];
  EXPECT_GT(l["p50"].get<double>(), 0);
  EXPECT_LE(l["min"].get<double>(), l["p50"].get<double>());
  EXPECT_LE(l["p50"].get<double>(), l["p99"].get<double>());
  EXPECT_LE(l["p99"].get<double>(), l["max"].get<double>());
  EXPECT_GT(b.j["client_cpu_s"].get<double>(), 0);
}

TEST(Bench, PingpongOverUnixRawWithLargeMessages) {
  TempDir home, dir;
  TestServer server({"--listen", "unix://" + dir.file("s")});
  auto b = bench(with({server.url(), "--protocol", "raw", "-s", "20000", "-c", "2"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["protocol"], "raw");
  EXPECT_GT(b.j["messages"].get<std::uint64_t>(), 10u);
  EXPECT_EQ(b.j["errors"], 0);
  EXPECT_EQ(b.j["bytes_received"].get<std::uint64_t>(),
            b.j["messages"].get<std::uint64_t>() * 20000);
  EXPECT_GT(b.j["mb_per_s"].get<double>(), 0);
}

TEST(Bench, EchoVerificationAgainstAnUpperServerFails) {
  TempDir home;
  TestServer server;
  auto b = bench(with({server.url(), "--protocol", "raw", "--verify", "echo"}, kShort), home);
  EXPECT_EQ(b.r.status, (ExitStatus{true, 1})) << b.r.err;
  EXPECT_GT(b.j["errors_by_kind"]["verify"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(b.j["errors"], b.j["errors_by_kind"]["verify"]);
  EXPECT_NE(b.r.err.find("verify error"), std::string::npos) << b.r.err;
  // One line per kind of error, not one per error.
  EXPECT_EQ(std::count(b.r.err.begin(), b.r.err.end(), '\n'), 1) << b.r.err;
  // Framed, echo is PING and PONG, which a duplex server answers.
  auto framed =
      bench(with({server.url(), "--protocol", "framed", "--verify", "echo"}, kShort), home);
  EXPECT_EQ(framed.r.status, (ExitStatus{true, 0})) << framed.r.err;
}

TEST(Bench, NothingListeningIs255AndOneLine) {
  TempDir home;
  int port = 0;
  {
    TestServer gone;
    port = gone.port();
  }
  auto b = bench(with({"tcp://127.0.0.1:" + std::to_string(port)}, kShort), home);
  EXPECT_EQ(b.r.status, (ExitStatus{true, 255}));
  EXPECT_EQ(b.r.out, "");
  EXPECT_EQ(std::count(b.r.err.begin(), b.r.err.end(), '\n'), 1) << b.r.err;
  EXPECT_NE(b.r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << b.r.err;
}

TEST(Bench, UsageErrorsAre2) {
  TempDir home;
  EXPECT_EQ(bench({"tcp://127.0.0.1:99999"}, home).r.status, (ExitStatus{true, 2}));
  EXPECT_EQ(bench({"udp://127.0.0.1:9", "--mode", "storm"}, home).r.status, (ExitStatus{true, 2}));
  EXPECT_EQ(bench({"tcp://127.0.0.1:9", "--mode", "flood"}, home).r.status, (ExitStatus{true, 2}));
  EXPECT_EQ(bench({"tcp://127.0.0.1:9", "-c", "0"}, home).r.status, (ExitStatus{true, 2}));
}

TEST(Bench, StormConnectsOncePerMessage) {
  TempDir home;
  TestServer server;
  const int base = socket_count(server.pid());
  auto b = bench(with({server.url(), "--mode", "storm", "-c", "4"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  const auto messages = b.j["messages"].get<std::uint64_t>();
  EXPECT_GT(messages, 20u);
  EXPECT_GE(b.j["connects"].get<std::uint64_t>(), messages);
  EXPECT_NEAR(b.j["conn_per_s"].get<double>(), b.j["msg_per_s"].get<double>(), 1e-6);
  // Every connection was closed: the server is back to what it held before.
  EXPECT_TRUE(eventually([&] { return socket_count(server.pid()) <= base; }));
}

TEST(Bench, IdleHoldsEveryConnectionAndReadsTheServersRss) {
  TempDir home;
  TestServer server;
  const int base = socket_count(server.pid());
  Process p({duplex_bin(), "bench", server.url(), "--mode", "idle", "-c", "300", "--hold", "30",
             "--server-pid", std::to_string(server.pid()), "--json"},
            {"XDG_CONFIG_HOME=" + home.path().string()});
  // All 300 are open at the server at once while they are held.
  EXPECT_TRUE(eventually([&] { return socket_count(server.pid()) >= base + 300; }, 20s))
      << socket_count(server.pid());
  p.signal(SIGTERM);
  const auto st = p.wait(10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, (ExitStatus{false, SIGTERM}));

  auto b = bench({server.url(), "--mode", "idle", "-c", "300", "--hold", "0.2", "--server-pid",
                  std::to_string(server.pid())},
                 home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["messages"], 300);
  EXPECT_EQ(b.j["connects"], 300);
  EXPECT_TRUE(b.j["server_rss_before_kib"].is_number());
  EXPECT_TRUE(b.j["server_rss_after_kib"].is_number());
  EXPECT_TRUE(b.j["rss_per_conn_bytes"].is_number());
  EXPECT_TRUE(eventually([&] { return socket_count(server.pid()) <= base; }));
}

TEST(Bench, RateIsKeptInOpenLoop) {
  TempDir home;
  TestServer server;
  auto b = bench({server.url(), "--rate", "200", "-c", "2", "-d", "1", "--warmup", "0.2"}, home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["rate"], 200.0);
  EXPECT_NEAR(b.j["msg_per_s"].get<double>(), 200.0, 20.0);
  EXPECT_NEAR(b.j["messages"].get<double>(), 200.0, 20.0);
}

TEST(Bench, PingpongOverUdp) {
  TempDir home;
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  auto b = bench(with({server.url(), "-c", "2"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["protocol"], "raw");
  EXPECT_GT(b.j["messages"].get<std::uint64_t>(), 20u);
  EXPECT_EQ(b.j["errors"], 0);
}

TEST(Bench, PingpongOverTlsWithThePinnedKey) {
  TempDir home;
  TestServer server({"--listen", "tls://127.0.0.1:0"});
  auto b =
      bench(with({server.url(), "-c", "2", "--fingerprint", server.fingerprint()}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["protocol"], "framed");
  EXPECT_GT(b.j["messages"].get<std::uint64_t>(), 20u);
  EXPECT_EQ(b.j["errors"], 0);
  // A key nobody vouches for is refused before anything is measured.
  TempDir stranger;
  auto refused = bench(with({server.url(), "--trust", "strict"}, kShort), stranger);
  EXPECT_EQ(refused.r.status, (ExitStatus{true, 255})) << refused.r.err;
}

TEST(Bench, ExecCommandsOverOnePersistentConnectionAndNewOnes) {
  TempDir home, dir;
  TestServer server(
      {"-q", "--exec", "--token-file", dir.file("token"), "--listen", "unix://" + dir.file("s")});
  auto b = bench(with({server.url(), "--mode", "exec", "-c", "2"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  const auto commands = b.j["commands"].get<std::uint64_t>();
  EXPECT_GT(commands, 5u);
  EXPECT_EQ(b.j["connects"], 2);
  EXPECT_GT(b.j["cmd_per_s"].get<double>(), 0);

  auto fresh =
      bench(with({server.url(), "--mode", "exec", "-c", "2", "--new-connection"}, kShort), home);
  ASSERT_EQ(fresh.r.status, (ExitStatus{true, 0})) << fresh.r.err;
  EXPECT_GE(fresh.j["connects"].get<std::uint64_t>(), fresh.j["commands"].get<std::uint64_t>());

  auto failing = bench(with({server.url(), "--mode", "exec", "--command", "exit 3"}, kShort), home);
  EXPECT_EQ(failing.r.status, (ExitStatus{true, 1}));
  EXPECT_GT(failing.j["errors_by_kind"]["protocol"].get<std::uint64_t>(), 0u);
  EXPECT_NE(failing.r.err.find("status 3"), std::string::npos) << failing.r.err;
}

TEST(Bench, SeedServerIsSpokenToRaw) {
  if (auto why = seed_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  TempDir home, dir;
  // server.py prints a few lines per message: its stdout goes to /dev/null, or a pipe nobody
  // reads would fill and stop it.
  const int port = free_tcp_port();
  Process seed(
      {"sh", "-c", "exec python3 -u \"$0\" >/dev/null", seed_copy(dir, "server.py", port)});
  const std::string url = "tcp://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(eventually(
      [&] {
        try {
          SocketClient c(url);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s));
  // server.py serves one client at a time.
  auto b = bench(with({url, "-c", "1"}, kShort), home);
  ASSERT_EQ(b.r.status, (ExitStatus{true, 0})) << b.r.err;
  EXPECT_EQ(b.j["protocol"], "raw");
  EXPECT_GT(b.j["messages"].get<std::uint64_t>(), 10u);
  EXPECT_EQ(b.j["errors"], 0);
}

}  // namespace
}  // namespace duplex::test
