// Several hosts on one machine (network namespaces on a private bridge): a multicast send and a
// broadcast reach every server, `duplex discover` finds them all, and the client's retries carry
// it through a lossy link (netem). Needs root; skipped with a message saying why otherwise.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netns/netns_lab.hpp"
#include "support/process.hpp"

namespace duplex::test {

inline void PrintTo(const ExitStatus& st, std::ostream* os) {
  *os << (st.exited ? "exit " : "signal ") << st.code;
}

namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kFailure{true, 1};
constexpr int kServers = 3;
constexpr int kClient = 3;  // the fourth host
// Unicast and broadcast on one port (discover's default), the group on another.
const std::string kPort = "8080";
const std::string kGroupPort = "8081";
const std::string kGroup = "239.255.42.99";
const std::string kGroupV6Url = "udp://[ff02::42:99%eth0]:8082";

std::set<std::string> lines_of(const std::string& s) {
  std::set<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    auto nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.insert(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Three servers, each in its own host, and the lab they live in (destroyed after them).
class MultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    lab_ = NetnsLab::create(kServers + 1, why);
    if (!lab_) GTEST_SKIP() << "multi-host test skipped: " << why;
    for (int i = 0; i < kServers; ++i) {
      servers_.push_back(std::make_unique<HostProcess>(
          lab_->in(i, {duplex_bin(), "serve", "--listen", "udp://0.0.0.0:" + kPort, "--listen",
                       fmt::format("udp://{}:{}", kGroup, kGroupPort), "--listen", kGroupV6Url})));
      const auto urls = servers_.back()->wait_lines("listening on ", 3);
      ASSERT_EQ(urls.size(), 3u) << "server in " << lab_->host(i)
                                 << " did not start: " << servers_.back()->stderr_text();
    }
  }
  // Runs a command in the client host.
  RunResult client(std::vector<std::string> args) {
    std::vector<std::string> argv{duplex_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(lab_->in(kClient, argv), {}, 30s);
  }
  std::set<std::string> every_server(const std::string& port, const std::string& reply) const {
    std::set<std::string> out;
    for (int i = 0; i < kServers; ++i)
      out.insert(fmt::format("udp://{}:{}{}", NetnsLab::address(i), port, reply));
    return out;
  }

  std::unique_ptr<NetnsLab> lab_;  // declared first: destroyed after the servers
  std::vector<std::unique_ptr<HostProcess>> servers_;
};

TEST_F(MultiHost, MulticastSendGetsEveryServersReply) {
  const auto r = client({"send", fmt::format("udp://{}:{}", kGroup, kGroupPort), "hello", "again"});
  EXPECT_EQ(r.status, kOk) << r.err;
  std::set<std::string> want = every_server(kGroupPort, " HELLO");
  want.merge(every_server(kGroupPort, " AGAIN"));
  EXPECT_EQ(lines_of(r.out), want) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2 * kServers)
      << "one line per responder and message:\n"
      << r.out;
}

TEST_F(MultiHost, Ipv6MulticastSendAndDiscoverReachEveryServer) {
  auto r = client({"send", kGroupV6Url, "hello"});
  EXPECT_EQ(r.status, kOk) << r.err;
  const auto got = lines_of(r.out);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kServers)) << r.out;
  for (const auto& line : got) {
    EXPECT_EQ(line.rfind("udp://[fe80::", 0), 0u) << "a link-local responder: " << line;
    EXPECT_TRUE(line.ends_with("%eth0]:8082 HELLO")) << line;
  }
  r = client({"discover", "--via", "multicast", "--port", "8082", "--json"});
  ASSERT_EQ(r.status, kOk) << r.err;
  const auto found = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(found.is_array()) << r.out;
  EXPECT_EQ(found.size(), static_cast<std::size_t>(kServers)) << r.out;
}

TEST_F(MultiHost, BroadcastSendGetsEveryServersReply) {
  auto r = client({"send", "udp://255.255.255.255:" + kPort, "hello"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(lines_of(r.out), every_server(kPort, " HELLO")) << r.out;
  // A subnet's broadcast address is an address like any other unless --broadcast says so.
  r = client({"send", "--broadcast", "udp://10.200.0.255:" + kPort, "subnet"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(lines_of(r.out), every_server(kPort, " SUBNET")) << r.out;
}

TEST_F(MultiHost, UnicastReachesOneServerOnly) {
  const auto r = client({"send", fmt::format("udp://{}:{}", NetnsLab::address(1), kPort), "hi"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HI\n");
}

TEST_F(MultiHost, GroupWithNoServerIsTheOneLineFailure) {
  const auto r = client({"send", "--timeout", "0.3", "udp://239.255.42.100:" + kGroupPort, "x"});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from udp://239.255.42.100:{} within 0.3 s (3 "
                               "tries)\n",
                               kGroupPort));
}

TEST_F(MultiHost, DiscoverFindsEveryServerByBroadcast) {
  const auto r = client({"discover", "--via", "broadcast", "--json"});
  ASSERT_EQ(r.status, kOk) << r.err;
  const auto found = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(found.is_array()) << r.out;
  ASSERT_EQ(found.size(), static_cast<std::size_t>(kServers)) << r.out;
  std::set<std::string> addresses;
  std::set<std::int64_t> pids, want_pids;
  for (const auto& s : servers_)
    want_pids.insert(s->pid());
  for (const auto& s : found) {
    addresses.insert(s.value("address", ""));
    pids.insert(s.value("pid", std::int64_t{0}));
    const auto services = s.value("services", std::vector<std::string>{});
    EXPECT_NE(std::find(services.begin(), services.end(), "upper"), services.end()) << s;
    EXPECT_FALSE(s.value("listeners", std::vector<std::string>{}).empty()) << s;
    EXPECT_FALSE(s.value("version", "").empty()) << s;
  }
  EXPECT_EQ(addresses, every_server(kPort, "")) << r.out;
  EXPECT_EQ(pids, want_pids) << "every server answered for itself:\n" << r.out;
}

TEST_F(MultiHost, DiscoverByMulticastAndBothWaysListsEachServerOnce) {
  auto r = client({"discover", "--via", "multicast", "--port", kGroupPort, "--json"});
  ASSERT_EQ(r.status, kOk) << r.err;
  auto found = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(found.is_array()) << r.out;
  EXPECT_EQ(found.size(), static_cast<std::size_t>(kServers)) << r.out;

  // Both probes reach the servers on the default port: each is still listed once.
  r = client({"discover"});
  ASSERT_EQ(r.status, kOk) << r.err;
  const auto rows = lines_of(r.out);
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), kServers + 1) << r.out;
  EXPECT_EQ(r.out.rfind("ADDRESS", 0), 0u) << r.out;
  for (int i = 0; i < kServers; ++i)
    EXPECT_NE(r.out.find(fmt::format("udp://{}:{} ", NetnsLab::address(i), kPort)),
              std::string::npos)
        << r.out;
}

TEST_F(MultiHost, DiscoverWithNoServerSaysSoAndExitsOne) {
  auto r = client({"discover", "--port", "9999", "--timeout", "0.3"});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "duplex: no servers found on udp port 9999 within 0.3 s\n");
  r = client({"discover", "--port", "9999", "--timeout", "0.3", "--json"});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "[]\n");
}

// ---- Loss: netem on the loopback interface of a host of its own -----------------------------

TEST(Loss, RetriesCarryTheClientThroughThirtyPercentLoss) {
  std::string why;
  auto lab = NetnsLab::create_loopback_only(why);
  if (!lab) GTEST_SKIP() << "loss test skipped: " << why;
  const auto tc =
      run(lab->in(0, {"tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "30%"}), {}, 10s);
  if (tc.status != kOk)
    GTEST_SKIP() << "loss test skipped: netem is not available in this kernel (tc said: "
                 << tc.err.substr(0, tc.err.find('\n')) << ")";
  HostProcess server(lab->in(0, {duplex_bin(), "serve", "--listen", "udp://127.0.0.1:0"}));
  const auto urls = server.wait_lines("listening on ", 1);
  ASSERT_EQ(urls.size(), 1u) << server.stderr_text();

  // A try succeeds when neither the request nor its reply is lost: 0.7 x 0.7 = 0.49. With 21
  // tries a message fails with probability 0.51^21 < 1e-6.
  std::vector<std::string> argv{duplex_bin(), "send", "--timeout", "0.2",
                                "--retries",  "20",   urls[0]};
  std::string want;
  for (int i = 0; i < 10; ++i) {
    argv.push_back(fmt::format("lossy {}", i));
    want += fmt::format("LOSSY {}\n", i);
  }
  auto r = run(lab->in(0, argv), {}, 120s);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, want);

  // Without retries, 20 messages all answered has probability 0.49^20 < 1e-6.
  argv = {duplex_bin(), "send", "--timeout", "0.2", "--retries", "0", urls[0]};
  for (int i = 0; i < 20; ++i)
    argv.push_back(fmt::format("lossy {}", i));
  r = run(lab->in(0, argv), {}, 60s);
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.2 s (1 try)\n", urls[0]));
}

}  // namespace
}  // namespace duplex::test
