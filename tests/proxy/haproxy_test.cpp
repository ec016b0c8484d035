// Behind the real thing: Debian's haproxy (a child of the test, in the foreground) in front of two
// `duplex serve --proxy-protocol` backends, round robin, `send-proxy-v2`, health checks. Raw,
// framed, TLS-passthrough and exec clients work through it; the servers see each client's own
// address (127.0.0.7 where the test picks it; haproxy itself connects from 127.0.0.2), and so does
// `duplex stats`; stopping one backend loses no new connection once haproxy's check has marked it
// down.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/exec_fixture.hpp"
#include "support/exec_frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr const char* kHaproxy = "/usr/sbin/haproxy";
using Json = nlohmann::json;

// A free loopback port for haproxy's frontend (it binds the port itself).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::runtime_error("no free port");
  ::close(fd);
  return ntohs(sa.sin_port);
}

// One word per field of the line of `show servers state` for server `name` (haproxy's management
// guide, 9.3: be_id be_name srv_id srv_name srv_addr srv_op_state ...; op_state 2 is running, 0
// stopped). Empty when the socket or the line is not there yet.
std::vector<std::string> server_state(const std::string& admin, const std::string& name) {
  try {
    SocketClient c("unix://" + admin);
    c.send_all("show servers state\n");
    std::istringstream in(c.recv_until_eof(5s));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::vector<std::string> w;
      for (std::string x; words >> x;)
        w.push_back(x);
      if (w.size() > 5 && w[3] == name) return w;
    }
  } catch (const std::exception&) {
  }
  return {};
}

bool op_state_is(const std::string& admin, const std::string& name, const std::string& state) {
  const auto w = server_state(admin, name);
  return !w.empty() && w[5] == state;
}

class Haproxy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kHaproxy, X_OK) != 0)
      GTEST_SKIP() << kHaproxy << " is not installed (apt-get install haproxy; scripts/deps.sh)";
    // Both backends share the token and the TLS key, as servers behind one name do.
    for (int i = 0; i < 2; ++i)
      backends_.push_back(std::make_unique<TestServer>(std::vector<std::string>{
          "-v", "--listen", "tcp://127.0.0.1:0", "--exec", "--tls", "--token-file",
          dir_.file("token"), "--tls-key", dir_.file("server.pem"), "--proxy-protocol",
          "--trusted-proxy", "127.0.0.2"}));
    token_ = first_line(dir_.file("token"));
    fingerprint_ = backends_[0]->fingerprint();
    ASSERT_EQ(backends_[1]->fingerprint(), fingerprint_);

    port_ = free_port();
    admin_ = dir_.file("admin.sock");
    std::ofstream cfg(dir_.file("haproxy.cfg"));
    cfg << "global\n"
        << "  stats socket " << admin_ << " mode 600 level admin\n"
        << "defaults\n"
        << "  mode tcp\n"
        << "  timeout connect 5s\n"
        << "  timeout client 60s\n"
        << "  timeout server 60s\n"
        << "frontend front\n"
        << "  bind 127.0.0.1:" << port_ << "\n"
        << "  default_backend duplex\n"
        << "backend duplex\n"
        << "  balance roundrobin\n"
        // The balancer's own address differs from every client's: a carried address cannot
        // be mistaken for the balancer's.
        << "  source 127.0.0.2\n"
        << "  default-server send-proxy-v2 check inter 100ms fall 1 rise 1\n"
        << "  server s1 127.0.0.1:" << backends_[0]->port() << "\n"
        << "  server s2 127.0.0.1:" << backends_[1]->port() << "\n";
    cfg.close();
    haproxy_ = std::make_unique<Process>(
        std::vector<std::string>{kHaproxy, "-db", "-f", dir_.file("haproxy.cfg")});
    // Ready when its checks have found both servers up (which needs its frontend bound too).
    ASSERT_TRUE(eventually(
        [&] { return op_state_is(admin_, "s1", "2") && op_state_is(admin_, "s2", "2"); }, 20s))
        << haproxy_->read_stderr_some(1s).value_or("");
    front_ = "tcp://127.0.0.1:" + std::to_string(port_);
  }

  void TearDown() override {
    if (haproxy_) {
      haproxy_->signal(SIGTERM);
      EXPECT_TRUE(haproxy_->wait(10s).has_value());
    }
  }

  // Every backend's log so far.
  std::string logs() {
    std::string all;
    for (auto& b : backends_)
      all += b->stderr_text();
    return all;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<TestServer>> backends_;
  std::string token_, fingerprint_, admin_, front_;
  int port_ = 0;
  std::unique_ptr<Process> haproxy_;
};

TEST_F(Haproxy, RawFramedTlsAndExecClientsWorkThroughIt) {
  const auto send_raw = run({duplex_bin(), "send", "--raw", front_, "raw hello"});
  EXPECT_EQ(send_raw.status, (ExitStatus{true, 0})) << send_raw.err;
  EXPECT_EQ(send_raw.out, "RAW HELLO\n");

  const auto framed = run({duplex_bin(), "send", "--framed", front_, "framed hello"});
  EXPECT_EQ(framed.status, (ExitStatus{true, 0})) << framed.err;
  EXPECT_EQ(framed.out, "FRAMED HELLO\n");

  // TLS passes through haproxy untouched: the backend's key, pinned by its fingerprint.
  const auto tls = run({duplex_bin(), "send", "--tls", "--fingerprint", fingerprint_,
                        "--known-hosts", dir_.file("known_hosts"), front_, "tls hello"});
  EXPECT_EQ(tls.status, (ExitStatus{true, 0})) << tls.err;
  EXPECT_EQ(tls.out, "TLS HELLO\n");

  const auto exec = run({duplex_bin(), "exec", "--token-file", dir_.file("token"), front_, "-c",
                         "echo $DUPLEX_CLIENT; exit 3"});
  EXPECT_EQ(exec.status, (ExitStatus{true, 3})) << exec.err;
  // Our own client connects from 127.0.0.1; haproxy from 127.0.0.2.
  EXPECT_EQ(exec.out.rfind("127.0.0.1:", 0), 0u) << exec.out;

  const auto tls_exec = run({duplex_bin(), "exec", "--tls", "--fingerprint", fingerprint_,
                             "--known-hosts", dir_.file("known_hosts"), "--token-file",
                             dir_.file("token"), front_, "--", "printf", "%s", "over tls"});
  EXPECT_EQ(tls_exec.status, (ExitStatus{true, 0})) << tls_exec.err;
  EXPECT_EQ(tls_exec.out, "over tls");

  // Round robin: both backends served clients carried by haproxy.
  for (auto& b : backends_)
    EXPECT_TRUE(b->wait_stderr(" via 127.0.0.2:")) << b->stderr_text();
  // Health checks arrive as LOCAL headers and are never refused.
  EXPECT_NE(logs().find("PROXY v2 LOCAL"), std::string::npos);
  EXPECT_EQ(logs().find("refused"), std::string::npos) << logs();
}

TEST_F(Haproxy, ServersSeeTheClientsOwnAddress) {
  // A raw client from 127.0.0.7: the log line names it, and haproxy as what it came through.
  SocketClient raw(front_, "127.0.0.7");
  raw.send_all("from seven");
  EXPECT_EQ(raw.recv_exact(10), "FROM SEVEN");
  EXPECT_TRUE(
      eventually([&] { return logs().find("client 127.0.0.7:") != std::string::npos; }, 10s))
      << logs();

  // An exec client from 127.0.0.7: the command and the audit line see that address.
  for (int i = 0; i < 2; ++i) {  // once on each backend
    ExecClient c{SocketClient(front_, "127.0.0.7")};
    ExecRequest req;
    req.argv = {"echo $DUPLEX_CLIENT"};
    req.shell = true;
    c.start(token_, req);
    const auto& o = c.finish();
    ASSERT_TRUE(exited_with(o, 0));
    EXPECT_EQ(o.out.rfind("127.0.0.7:", 0), 0u) << o.out;
  }
  for (auto& b : backends_)
    EXPECT_TRUE(b->wait_stderr("exec: peer=127.0.0.7:")) << b->stderr_text();
  EXPECT_NE(logs().find("via=127.0.0.2:"), std::string::npos);
}

// `duplex stats` on a backend, asked as an operator would (the token file, straight to the
// backend): a client connected through haproxy from 127.0.0.7 is listed as itself, address and
// port exactly, with haproxy's 127.0.0.2 beside it as what it came through, in the JSON and in
// the table.
TEST_F(Haproxy, StatsShowTheClientsOwnAddressAndTheBalancer) {
  SocketClient raw(front_, "127.0.0.7");
  raw.send_all("live");
  ASSERT_EQ(raw.recv_exact(4), "LIVE");
  const std::string client = raw.local_address();
  ASSERT_EQ(client.rfind("127.0.0.7:", 0), 0u) << client;

  const auto stats = [&](const TestServer& b, std::vector<std::string> args) {
    std::vector<std::string> argv{duplex_bin(), "stats", "--token-file", dir_.file("token")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(b.url());
    return run(argv, {}, 60s, {"DUPLEX_TOKEN="});
  };
  const TestServer* holder = nullptr;
  Json found;
  for (const auto& b : backends_) {
    const auto r = stats(*b, {"--json"});
    ASSERT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
    const Json doc = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(doc.is_object()) << r.out;
    for (const auto& c : doc["connections"]) {
      const std::string peer = c.value("peer", "");
      // Only haproxy's own health checks (LOCAL headers) may show its address, never as
      // carrying a client.
      if (peer.rfind("127.0.0.2:", 0) == 0) {
        EXPECT_EQ(c.value("via", "?"), "") << c.dump();
      }
      if (peer != client) continue;
      EXPECT_EQ(holder, nullptr) << "listed twice";
      holder = b.get();
      found = c;
    }
  }
  ASSERT_NE(holder, nullptr) << "no backend lists " << client;
  EXPECT_EQ(found.value("via", "").rfind("127.0.0.2:", 0), 0u) << found.dump();
  EXPECT_EQ(found.value("protocol", ""), "raw") << found.dump();
  EXPECT_EQ(found.value("service", ""), "upper") << found.dump();
  EXPECT_EQ(found.value("bytes_out", 0), 4) << found.dump();

  // The table: the client under PEER, haproxy under VIA, on one line.
  const auto table = stats(*holder, {});
  ASSERT_EQ(table.status, (ExitStatus{true, 0})) << table.err;
  std::istringstream lines(table.out);
  std::string head, line, ours;
  std::getline(lines, head);
  while (std::getline(lines, line))
    if (line.find(client + " ") != std::string::npos) ours = line;
  ASSERT_FALSE(ours.empty()) << table.out;
  const auto peer_col = head.find("PEER"), via_col = head.find("VIA");
  ASSERT_NE(via_col, std::string::npos) << table.out;
  EXPECT_EQ(ours.substr(peer_col, client.size()), client) << table.out;
  EXPECT_EQ(ours.substr(via_col, 10), "127.0.0.2:") << table.out;
}

TEST_F(Haproxy, StoppingOneBackendLosesNoNewConnection) {
  // Both take turns until one stops.
  for (int i = 0; i < 4; ++i) {
    const auto r = run({duplex_bin(), "send", "--raw", front_, "before"});
    EXPECT_EQ(r.out, "BEFORE\n") << r.err;
  }
  const auto stopped = backends_[0]->stop();
  EXPECT_EQ(stopped, (ExitStatus{true, 0}));
  // haproxy's own view, from its stats socket: s1 down, s2 still up.
  ASSERT_TRUE(eventually([&] { return op_state_is(admin_, "s1", "0"); }, 20s))
      << "haproxy did not mark s1 down";
  ASSERT_TRUE(op_state_is(admin_, "s2", "2"));
  for (int i = 0; i < 20; ++i) {
    SocketClient c(front_, "127.0.0.7");
    c.send_all("after " + std::to_string(i));
    const std::string want = "AFTER " + std::to_string(i);
    EXPECT_EQ(c.recv_exact(want.size()), want) << "connection " << i;
  }
  const auto framed = run({duplex_bin(), "send", "--framed", front_, "still framed"});
  EXPECT_EQ(framed.out, "STILL FRAMED\n") << framed.err;
}

}  // namespace
}  // namespace duplex::test
