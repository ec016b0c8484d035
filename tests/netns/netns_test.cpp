// Several hosts on one machine (network namespaces on a private bridge): a multicast send and a
// broadcast reach every server, `duplex discover` finds them all, the client's retries carry it
// through a lossy link (netem), and `duplex exec tls://` runs commands on another host with a
// pinned server key and a client key. Needs root; skipped with a message saying why otherwise.
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
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

// ---- Remote exec over TLS: a server host, a client host and a third host -------------------

constexpr ExitStatus kUsage{true, 2};
constexpr ExitStatus kExecRefused{true, 255};  // connection, trust or authentication failure
constexpr int kServerHost = 0;
constexpr int kClientHost = 1;
constexpr int kOtherHost = 2;
const std::string kTlsPort = "8443";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Every host has a config directory of its own (XDG_CONFIG_HOME: token, keys, known_hosts, TLS
// sessions), as separate machines would; the file system is shared, which lets a test see whether
// a command ran (a marker file) without trusting the command's own output.
class RemoteExec : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    lab_ = NetnsLab::create(3, why);
    if (!lab_) GTEST_SKIP() << "remote exec test skipped: " << why;
    for (int i = 0; i < 3; ++i)
      ASSERT_EQ(::mkdir(config(i).c_str(), 0700), 0) << config(i);
  }

  std::string config(int host) const { return tmp_.file(fmt::format("host{}", host)); }
  static std::string url() {
    return fmt::format("tls://{}:{}", NetnsLab::address(kServerHost), kTlsPort);
  }

  // `duplex ARGS...` inside a host, with that host's config directory and no token in the
  // environment unless `env` sets one.
  std::vector<std::string> duplex_in(int host, const std::vector<std::string>& args,
                                     const std::vector<std::string>& env = {}) const {
    std::vector<std::string> argv{"env", "-u", "DUPLEX_TOKEN", "XDG_CONFIG_HOME=" + config(host)};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(duplex_bin());
    argv.insert(argv.end(), args.begin(), args.end());
    return lab_->in(host, argv);
  }
  RunResult run_in(int host, const std::vector<std::string>& args,
                   const std::vector<std::string>& env = {}) const {
    return run(duplex_in(host, args, env), {}, 30s);
  }

  // Starts `duplex serve --exec --tls-only` on every address of the server host; returns the
  // fingerprint it printed (empty, with a failure recorded, when it did not start).
  std::string start_server(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--tls-only", "--listen", "tcp://0.0.0.0:" + kTlsPort};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_server_with(args);
  }
  // `duplex serve --exec --allow-root ARGS...` on the server host, expecting one listener.
  std::string start_server_with(const std::vector<std::string>& listen_args) {
    std::vector<std::string> args{"serve", "--exec", "--allow-root"};
    args.insert(args.end(), listen_args.begin(), listen_args.end());
    server_ = std::make_unique<HostProcess>(duplex_in(kServerHost, args));
    const auto urls = server_->wait_lines("listening on ", 1);
    const auto fps = server_->wait_lines("fingerprint ", 1);
    if (urls.size() != 1 || fps.size() != 1) {
      ADD_FAILURE() << "the server did not start: " << server_->stderr_text();
      return {};
    }
    EXPECT_EQ(fps[0].rfind("SHA256:", 0), 0u) << fps[0];
    return fps[0];
  }
  std::vector<std::string> token_env() const {
    return {"DUPLEX_TOKEN=" + first_line(read_text(config(kServerHost) + "/duplex/token"))};
  }
  std::string known_hosts(int host) const {
    return read_text(config(host) + "/duplex/known_hosts");
  }

  TempDir tmp_;                    // outlives the server, which writes in it
  std::unique_ptr<NetnsLab> lab_;  // destroyed after the server
  std::unique_ptr<HostProcess> server_;
};

// The "done when": `duplex exec tls://HOST:PORT -- cmd` from another host. The command
// shows the server host's address, which the client host does not have.
TEST_F(RemoteExec, FingerprintPinsTheServerThenKnownHostsAloneIsEnoughAndTheSessionResumes) {
  const std::string fp = start_server();
  ASSERT_FALSE(fp.empty());
  const auto token = token_env();
  ASSERT_GT(token[0].size(), std::string("DUPLEX_TOKEN=").size())
      << "no token in the server's config";
  const std::vector<std::string> show_address{"--",   "ip",   "-o",  "-4",
                                              "addr", "show", "dev", "eth0"};
  const std::string server_inet = "inet " + NetnsLab::address(kServerHost) + "/24";

  std::vector<std::string> args{"exec", "-vv", "--fingerprint", fp, url()};
  args.insert(args.end(), show_address.begin(), show_address.end());
  const auto first = run_in(kClientHost, args, token);
  ASSERT_EQ(first.status, kOk) << first.err << "\nserver:\n" << server_->stderr_text();
  EXPECT_NE(first.out.find(server_inet), std::string::npos) << first.out;
  EXPECT_EQ(first.out.find(NetnsLab::address(kClientHost)), std::string::npos) << first.out;
  EXPECT_NE(first.err.find("TLS full handshake with " + url()), std::string::npos) << first.err;
  const std::string pinned = known_hosts(kClientHost);
  EXPECT_NE(pinned.find(NetnsLab::address(kServerHost)), std::string::npos) << pinned;
  EXPECT_NE(pinned.find(fp), std::string::npos) << pinned;

  // No --fingerprint: the pin is enough, and the session of the first run is resumed.
  args = {"exec", "-vv", url()};
  args.insert(args.end(), show_address.begin(), show_address.end());
  const auto second = run_in(kClientHost, args, token);
  ASSERT_EQ(second.status, kOk) << second.err;
  EXPECT_EQ(second.out, first.out);
  EXPECT_NE(second.err.find("TLS resumed with " + url()), std::string::npos) << second.err;
  EXPECT_EQ(known_hosts(kClientHost), pinned) << "nothing pinned twice";

  // A host that pinned nothing is refused without the fingerprint, before anything runs.
  const std::string marker = tmp_.file("ran-unpinned");
  const auto other = run_in(kOtherHost, {"exec", url(), "--", "touch", marker}, token);
  EXPECT_EQ(other.status, kExecRefused) << other.err;
  EXPECT_TRUE(one_line(other.err)) << other.err;
  EXPECT_NE(other.err.find("is not a known host"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find(fp), std::string::npos) << other.err;
  EXPECT_FALSE(exists(marker));
}

TEST_F(RemoteExec, ClientKeyWithoutTokenRunsAndFromAllowsOnlyItsAddress) {
  const std::string key = config(kClientHost) + "/id_client";
  const auto made = run_in(kClientHost, {"keygen", "-f", key});
  ASSERT_EQ(made.status, kOk) << made.err;
  const std::string key_line = first_line(made.out);  // "SHA256:… COMMENT"
  const std::string key_fp = key_line.substr(0, key_line.find(' '));
  ASSERT_EQ(key_fp.rfind("SHA256:", 0), 0u) << made.out;
  const std::string authorized = config(kServerHost) + "/authorized_keys";
  {
    std::ofstream f(authorized);
    f << "# the client host only\nfrom=\"" << NetnsLab::address(kClientHost) << "\" " << key_line
      << "\n";
  }
  ASSERT_EQ(::chmod(authorized.c_str(), 0600), 0);
  const std::string fp = start_server({"--authorized-keys", authorized});
  ASSERT_FALSE(fp.empty());

  // The client host has no token at all: none in its config, none in its environment.
  ASSERT_FALSE(exists(config(kClientHost) + "/duplex/token"));
  const auto r = run_in(kClientHost, {"exec", "-i", key, "--fingerprint", fp, url(), "-c",
                                      "echo \"$DUPLEX_IDENTITY|$DUPLEX_CLIENT\"; ip -o -4 addr "
                                      "show dev eth0"});
  ASSERT_EQ(r.status, kOk) << r.err << "\nserver:\n" << server_->stderr_text();
  EXPECT_EQ(r.out.rfind("key " + key_fp, 0), 0u) << "the key authenticated it:\n" << r.out;
  EXPECT_NE(r.out.find("|" + NetnsLab::address(kClientHost)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inet " + NetnsLab::address(kServerHost) + "/24"), std::string::npos)
      << r.out;

  // The same key from the third host: from= refuses it, and the command never runs.
  const std::string marker = tmp_.file("ran-from-other-host");
  const auto other =
      run_in(kOtherHost, {"exec", "-i", key, "--fingerprint", fp, url(), "--", "touch", marker});
  EXPECT_EQ(other.status, kExecRefused) << other.err;
  EXPECT_TRUE(one_line(other.err)) << other.err;
  EXPECT_FALSE(exists(marker));
  const std::string refused = "key " + key_fp + " (" + key_line.substr(key_line.find(' ') + 1) +
                              "): address " + NetnsLab::address(kOtherHost) +
                              " refused by from= on line 2";
  EXPECT_TRUE(eventually([&] { return server_->stderr_text().find(refused) != std::string::npos; }))
      << "the server's log lacks '" << refused << "':\n"
      << server_->stderr_text();
}

TEST_F(RemoteExec, ProtectedModeRefusesExecWithoutTlsOnTheNetwork) {
  const std::string all = "tcp://0.0.0.0:" + kTlsPort;
  auto r = run_in(kServerHost, {"serve", "--exec", "--allow-root", "--listen", all});
  EXPECT_EQ(r.status, kUsage) << r.err;
  EXPECT_EQ(r.err, "duplex: refusing --exec on " + all +
                       " without TLS: add --tls-only (or listen on tls://HOST:PORT)\n");
  EXPECT_EQ(r.out, "") << "no listening line for a refused start";
  EXPECT_FALSE(exists(config(kServerHost) + "/duplex/token")) << "a refused start made a token";

  // Raw exec has no authentication: not on the host's address, with TLS or without.
  const std::string host = fmt::format("tcp://{}:{}", NetnsLab::address(kServerHost), kTlsPort);
  for (const std::vector<std::string>& tls :
       {std::vector<std::string>{}, std::vector<std::string>{"--tls-only"}}) {
    std::vector<std::string> args{"serve", "--raw-exec", "--allow-root", "--listen", host};
    args.insert(args.end(), tls.begin(), tls.end());
    r = run_in(kServerHost, args);
    EXPECT_EQ(r.status, kUsage) << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_EQ(r.err.rfind(
                  "duplex: refusing --raw-exec on " + host + ": raw exec has no authentication", 0),
              0u)
        << r.err;
    EXPECT_EQ(r.out, "");
  }

  // The same address and port with TLS on: it starts, and a client elsewhere can use it.
  const std::string fp = start_server();
  ASSERT_FALSE(fp.empty());
  const auto ok =
      run_in(kClientHost, {"exec", "--fingerprint", fp, url(), "--", "true"}, token_env());
  EXPECT_EQ(ok.status, kOk) << ok.err;
}

// `--tls` without `--tls-only` on the host's own address: protected mode lets it start, plaintext
// clients get the upper service there, and exec runs over TLS only.
TEST_F(RemoteExec, TlsNotOnlyOnTheHostAddressServesUpperInPlainAndExecOverTlsOnly) {
  const std::string plain = fmt::format("tcp://{}:{}", NetnsLab::address(kServerHost), kTlsPort);
  const std::string fp = start_server_with({"--tls", "--listen", plain});
  ASSERT_FALSE(fp.empty());
  const auto upper = run_in(kClientHost, {"send", plain, "hello"});
  EXPECT_EQ(upper.status, kOk) << upper.err;
  EXPECT_EQ(upper.out, "HELLO\n");

  const auto token = token_env();
  const std::string marker = tmp_.file("ran-in-plaintext");
  const auto refused = run_in(kClientHost, {"exec", plain, "--", "touch", marker}, token);
  EXPECT_EQ(refused.status, kExecRefused) << refused.err;
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("exec needs TLS on this listener"), std::string::npos) << refused.err;
  EXPECT_FALSE(exists(marker)) << "a command ran over plaintext on a network address";

  const auto ok =
      run_in(kClientHost, {"exec", "--fingerprint", fp, url(), "--", "touch", marker}, token);
  EXPECT_EQ(ok.status, kOk) << ok.err;
  EXPECT_TRUE(exists(marker));
}

TEST_F(RemoteExec, ChangedServerKeyIsRefusedWithBothFingerprints) {
  const std::string old_fp = start_server();
  ASSERT_FALSE(old_fp.empty());
  const auto token = token_env();
  auto r = run_in(kClientHost, {"exec", "--fingerprint", old_fp, url(), "--", "true"}, token);
  ASSERT_EQ(r.status, kOk) << r.err;
  const std::string pinned = known_hosts(kClientHost);
  ASSERT_NE(pinned.find(old_fp), std::string::npos) << pinned;

  // Restarted with another key: same address, same port, same token.
  server_->process().signal(SIGTERM);
  const auto stopped = server_->process().wait(10s);
  ASSERT_TRUE(stopped.has_value()) << "the server did not stop on SIGTERM";
  EXPECT_EQ(*stopped, kOk) << server_->stderr_text();
  server_.reset();
  const std::string new_fp = start_server({"--tls-key", config(kServerHost) + "/other_key.pem",
                                           "--tls-cert", config(kServerHost) + "/other_cert.pem"});
  ASSERT_FALSE(new_fp.empty());
  ASSERT_NE(new_fp, old_fp);

  const std::string marker = tmp_.file("ran-on-changed-key");
  for (const std::vector<std::string>& trust :
       {std::vector<std::string>{}, std::vector<std::string>{"--trust", "accept-new"}}) {
    std::vector<std::string> args{"exec"};
    args.insert(args.end(), trust.begin(), trust.end());
    args.insert(args.end(), {url(), "--", "touch", marker});
    r = run_in(kClientHost, args, token);
    EXPECT_EQ(r.status, kExecRefused) << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(NetnsLab::address(kServerHost) + ":" + kTlsPort + " has changed"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(old_fp), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(new_fp), std::string::npos) << r.err;
  }
  EXPECT_FALSE(exists(marker)) << "a command ran on a server whose key changed";
  EXPECT_EQ(known_hosts(kClientHost), pinned);
}

}  // namespace
}  // namespace duplex::test
