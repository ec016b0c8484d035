// Hostile TLS (issue 7, proof 2, cases 6-11): handshake garbage and truncated hellos, the wrong
// protocol on each kind of listener, wrong and changed server keys, an unknown client key and a
// key restricted by command=, --user checked in the child, and SIGTERM with 50 commands running
// over TLS. Every case checks the server stays up and serves honest clients, and leaks nothing.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hostile/hostile_fixture.hpp"
#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr std::uint16_t kTlsRequired = 37;

std::string tls_url(const TestServer& s) {
  return "tls://127.0.0.1:" + std::to_string(s.port());
}

std::string first_line_of(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// `duplex keygen -f FILE`: the key's fingerprint (the first word it prints).
std::string keygen(const std::string& file) {
  const auto r = run({duplex_bin(), "keygen", "-f", file});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  return r.out.substr(0, r.out.find(' '));
}

std::size_t lines(const std::string& s) {
  return line_count(s);
}

// Case 6. 100 connections send 0x16 and then random bytes, 100 a truncated ClientHello and then
// nothing: the first are closed as soon as OpenSSL sees the garbage (or at the deadline when the
// garbage happens to read as a long record), the second at the 1 s deadline. Honest TLS and
// plaintext clients are served during and after; every fd comes back.
TEST(Hostile, TlsGarbageAndTruncatedClientHellos) {
  const NoQuarantine no_quarantine;
  TempDir dir;
  TestServer server(
      {"--tls", "--tls-key", dir.file("key.pem"), "--auth-timeout", "1", "--threads", "2"});
  const pid_t pid = server.pid();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(serves_raw_over_tls(tls_url(server)));
    ASSERT_TRUE(serves_raw(server.url()));
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }));
  const Usage baseline = usage_of(pid);

  constexpr std::size_t kEach = 100;
  for (int round = 0; round < 2; ++round) {
    RssPeak peak(pid);
    Crowd garbage(server.port(), kEach);
    for (std::size_t i = 0; i < kEach; ++i)
      garbage.send_to(i,
                      "\x16" + random_bytes(300, i + 1 + static_cast<std::size_t>(round) * kEach));
    Crowd truncated(server.port(), kEach);
    // A handshake record announcing 512 bytes of which a few come.
    truncated.send_each(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(serves_raw_over_tls(tls_url(server), "during"));
      EXPECT_TRUE(serves_framed(server.url()));
    }
    const Ms latest(1000 + 500 + 1000 * kSlowdown);  // deadline, its sweep, the server's work
    ASSERT_TRUE(garbage.wait_all_closed(latest)) << garbage.closed_count() << " closed";
    ASSERT_TRUE(truncated.wait_all_closed(latest)) << truncated.closed_count() << " closed";
    int garbage_early = 0;
    for (std::size_t i = 0; i < kEach; ++i) {
      garbage_early += *garbage.closed_at(i) - garbage.opened(i) < Ms(900);
      const auto held = *truncated.closed_at(i) - truncated.opened(i);
      EXPECT_GE(held, Ms(900)) << "truncated hello " << i << " closed before the deadline";
    }
    // Random bytes after 0x16 are a bad record version 255 times in 256: most fail at once.
    EXPECT_GT(garbage_early, static_cast<int>(kEach) / 2);
    EXPECT_TRUE(fds_back(pid, baseline, 1));
    const long peak_kib = peak.stop(), now = rss_kib(pid);
    std::printf(
        "round %d: %d of %zu garbage handshakes closed before the deadline; RSS %ld KiB "
        "at start, peak %ld, after %ld\n",
        round, garbage_early, kEach, baseline.rss_kib, peak_kib, now);
    // A connection in its handshake holds an OpenSSL object with its record buffers (~17 KiB
    // each way), the handshake's state and the session's: 256 KiB each is the bound, all 200 at
    // once. Later rounds reuse what the first left in the allocator.
    // ThreadSanitizer's memory cost is 5-10x by its own documentation, and OpenSSL's many small
    // allocations sit at the top of that range (seen: 217 MiB here against 31 MiB uninstrumented),
    // so its factor is 8, not the 4 of plain shadow memory.
    constexpr long kScale = kTsan ? 8 : kShadow;
    EXPECT_LT(peak_kib - baseline.rss_kib, kScale * 2 * static_cast<long>(kEach) * 256);
  }
  // Nothing kept per connection. Not judged across the rounds: the allocator keeps its heap at
  // each round's peak, which the scheduler decides (seen under ASan: +7.8 MiB from one round to
  // the next). One handshake at a time reuses the same memory, so a leak adds up instead.
  const long before_serial = rss_kib(pid);
  constexpr int kSerial = 200;
  for (int i = 0; i < kSerial; ++i) {
    SocketClient c(server.url());
    c.send_all("\x16" + random_bytes(300, 1000 + static_cast<std::size_t>(i)));
    (void)c.recv_until_eof(Ms(3000 * kSlowdown));
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }));
  const long grown = rss_kib(pid) - before_serial;
  std::printf("%d more garbage handshakes, one at a time: RSS %+ld KiB\n", kSerial, grown);
  // 1 KiB left per handshake would be 200 KiB; allow a few pages of allocator noise.
  EXPECT_LT(grown, kShadow * 256) << "KiB kept after " << kSerial << " handshakes";
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server), "after"));
  EXPECT_TRUE(serves_framed(server.url()));
}

// Case 7. The wrong protocol on each kind of listener gets a clear error, both ways: a plaintext
// framed client on a --tls-only listener reads ERROR tls_required and a raw one a line saying
// what to do; a TLS client on a plaintext-only listener gets a handshake_failure alert (openssl
// s_client prints it, `duplex send tls://` says it in one line).
TEST(Hostile, WrongProtocolOnEachListenerGetsAClearError) {
  TempDir dir;
  TestServer tls_only({"--tls-only", "--tls-key", dir.file("key.pem")});
  {
    SocketClient c(tls_only.url());
    c.send_all(preface_and_hello());
    const RawFrame f = read_frame(c);
    ASSERT_EQ(f.type, msg::error);
    const auto e = parse_error(f.payload);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, kTlsRequired);
    EXPECT_NE(e->text.find("tls://"), std::string::npos) << e->text;
    EXPECT_TRUE(c.wait_closed(Ms(5000)));
  }
  {
    SocketClient c(tls_only.url());
    c.send_all("hello\n");
    const std::string said = c.recv_until_eof();
    EXPECT_EQ(lines(said), 1u) << said;
    EXPECT_NE(said.find("TLS clients only"), std::string::npos) << said;
    EXPECT_EQ(said.find("HELLO"), std::string::npos) << "plaintext was served: " << said;
  }
  EXPECT_TRUE(serves_raw_over_tls(tls_url(tls_only)));

  TestServer plain;
  if (!find_program("openssl").empty()) {
    const auto r =
        run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(plain.port())}, "",
            Ms(20'000));
    EXPECT_NE(r.status, (ExitStatus{true, 0}));
    EXPECT_NE(r.err.find("alert handshake failure"), std::string::npos) << r.err;
  }
  const auto sent = run({duplex_bin(), "send", tls_url(plain), "hello"});
  EXPECT_NE(sent.status, (ExitStatus{true, 0}));
  EXPECT_EQ(lines(sent.err), 1u) << sent.err;
  EXPECT_NE(sent.err.find("handshake failure"), std::string::npos) << sent.err;
  EXPECT_EQ(sent.out, "");
  EXPECT_TRUE(serves_raw(plain.url()));
  EXPECT_TRUE(serves_framed(plain.url()));
}

// An exec server over TLS with a token, and what a client needs to reach it.
class TlsExec : public ::testing::Test {
 protected:
  void start(std::vector<std::string> more = {}) {
    std::vector<std::string> args{"--exec",       "--tls",     "--tls-key", dir_.file("key.pem"),
                                  "--token-file", token_file()};
    args.insert(args.end(), more.begin(), more.end());
    server_ = std::make_unique<TestServer>(args);
  }
  std::string token_file() const { return dir_.file("token"); }
  std::string known_hosts() const { return dir_.file("known_hosts"); }
  // `duplex exec` against the server over TLS with `flags` before the URL.
  RunResult exec(std::vector<std::string> flags, std::vector<std::string> command,
                 Ms timeout = Ms(30'000)) {
    std::vector<std::string> argv{duplex_bin(), "exec", "--known-hosts", known_hosts()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(tls_url(*server_));
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    return run(argv, {}, timeout);
  }
  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

// Case 8. A wrong --fingerprint, and a known_hosts that pins another key for this host: exit 255,
// one line naming the host and both fingerprints, and the server never hears an authentication
// attempt (the client stops after the handshake). The right fingerprint then works, and the
// server logs that one: the log is where an attempt would have shown.
TEST_F(TlsExec, WrongAndChangedServerKeysAreRefusedBeforeAuthentication) {
  start();
  const std::string host = "127.0.0.1:" + std::to_string(server_->port());
  const std::string real = server_->fingerprint();
  const std::string other = keygen(dir_.file("other_key"));
  ASSERT_EQ(other.rfind("SHA256:", 0), 0u) << other;
  ASSERT_NE(other, real);

  const auto wrong = exec({"--token-file", token_file(), "--fingerprint", other}, {"echo", "hi"});
  EXPECT_EQ(wrong.status, (ExitStatus{true, 255})) << wrong.err;
  EXPECT_EQ(wrong.out, "");
  EXPECT_EQ(lines(wrong.err), 1u) << wrong.err;
  for (const auto& word : {host, real, other})
    EXPECT_NE(wrong.err.find(word), std::string::npos) << word << " not in: " << wrong.err;

  {
    std::ofstream(known_hosts()) << host << " " << other << "\n";
    ::chmod(known_hosts().c_str(), 0600);
  }
  // Changed is refused whatever the trust flags say.
  const auto changed =
      exec({"--token-file", token_file(), "--trust", "accept-new"}, {"echo", "hi"});
  EXPECT_EQ(changed.status, (ExitStatus{true, 255})) << changed.err;
  EXPECT_EQ(changed.out, "");
  EXPECT_EQ(lines(changed.err), 1u) << changed.err;
  for (const auto& word : {host, real, other})
    EXPECT_NE(changed.err.find(word), std::string::npos) << word << " not in: " << changed.err;
  EXPECT_EQ(first_line_of(known_hosts()), host + " " + other) << "the pin was replaced";

  EXPECT_EQ(server_->stderr_text().find("exec:"), std::string::npos)
      << "the server heard from a client that should have stopped:\n"
      << server_->stderr_text();
  std::filesystem::remove(known_hosts());
  const auto right = exec({"--token-file", token_file(), "--fingerprint", real}, {"echo", "hi"});
  EXPECT_EQ(right.status, (ExitStatus{true, 0})) << right.err;
  EXPECT_EQ(right.out, "hi\n");
  EXPECT_TRUE(server_->wait_stderr("authenticated as token")) << server_->stderr_text();
}

// Case 9. A key made with `duplex keygen` that authorized_keys does not name is refused (exit 255,
// the server logs its fingerprint); a key restricted by command="echo forced" that asks for `id`
// gets "forced" and id never runs.
TEST_F(TlsExec, UnknownClientKeyRefusedAndForcedCommandWins) {
  const std::string alice = keygen(dir_.file("alice_key"));
  const std::string mallory = keygen(dir_.file("mallory_key"));
  {
    std::ofstream(dir_.file("authorized_keys"))
        << "command=\"echo forced\" " << alice << " alice\n";
    ::chmod(dir_.file("authorized_keys").c_str(), 0600);
  }
  start({"--authorized-keys", dir_.file("authorized_keys")});
  const std::string fp = server_->fingerprint();

  // No token on the client's side: only the key could let it in.
  const auto refused = exec({"-i", dir_.file("mallory_key"), "--fingerprint", fp}, {"echo", "hi"});
  EXPECT_EQ(refused.status, (ExitStatus{true, 255})) << refused.err;
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(lines(refused.err), 1u) << refused.err;
  EXPECT_TRUE(server_->wait_stderr("unknown key " + mallory)) << server_->stderr_text();

  const auto forced = exec({"-i", dir_.file("alice_key"), "--fingerprint", fp}, {"id"});
  EXPECT_EQ(forced.status, (ExitStatus{true, 0})) << forced.err;
  EXPECT_EQ(forced.out, "forced\n") << "id ran?";
  EXPECT_TRUE(server_->wait_stderr("authenticated as key " + alice)) << server_->stderr_text();
  EXPECT_TRUE(server_->wait_stderr("forced command")) << server_->stderr_text();
  EXPECT_EQ(server_->stderr_text().find("authenticated as key " + mallory), std::string::npos);
  EXPECT_TRUE(serves_raw_over_tls(tls_url(*server_)));
  EXPECT_TRUE(eventually([&] { return children_of(server_->pid()).empty(); }));
}

// Case 10. --user nobody (the server started as root): the command runs as nobody with no
// supplementary groups, as `id` and the kernel (/proc/self/status) say in the child.
TEST_F(TlsExec, UserNobodyInTheChild) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs a server started as root";
  const passwd* pw = ::getpwnam("nobody");
  if (!pw) GTEST_SKIP() << "no account named nobody";
  start({"--user", "nobody"});
  const auto r = exec({"--token-file", token_file(), "--fingerprint", server_->fingerprint()},
                      {"sh", "-c", "id -u; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status"});
  ASSERT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  const std::string uid = std::to_string(pw->pw_uid), gid = std::to_string(pw->pw_gid);
  std::istringstream out(r.out);
  std::string line;
  std::getline(out, line);
  EXPECT_EQ(line, uid);
  std::getline(out, line);
  EXPECT_EQ(line, gid) << "supplementary groups, or the wrong group";
  std::getline(out, line);
  EXPECT_EQ(line, "Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid);
  std::getline(out, line);
  EXPECT_EQ(line, "Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" + gid);
  std::getline(out, line);
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  EXPECT_TRUE(line == "Groups:\t" || line == "Groups:\t" + gid) << line;
}

// Case 11. SIGTERM while 50 commands (`sleep 300`) run over TLS: the server exits 0 within its
// grace, and every command's process group is gone (each printed its shell's pid, $$, which leads
// its group).
TEST_F(TlsExec, SigtermWithFiftyCommandsRunningOverTls) {
  constexpr int kCommands = 50;
  constexpr double kGrace = 3;
  start({"--grace", "3", "--max-commands", "64", "--max-commands-per-client", "64"});
  const std::string fp = server_->fingerprint();
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 0; i < kCommands; ++i)
    clients.push_back(std::make_unique<Process>(std::vector<std::string>{
        duplex_bin(), "exec", "--known-hosts", known_hosts(), "--token-file", token_file(),
        "--fingerprint", fp, tls_url(*server_), "--", "sh", "-c", "echo $$; sleep 300"}));
  std::vector<pid_t> groups;
  for (auto& c : clients) {
    const auto line = c->read_line(Ms(30'000));
    ASSERT_TRUE(line) << "a command did not start: " << c->read_all_stderr(Ms(1000));
    groups.push_back(std::stoi(*line));
  }
  for (const pid_t g : groups)
    ASSERT_TRUE(eventually([&] { return group_members(g).size() >= 2; }))
        << "group " << g << " is not sh and sleep";
  const auto t0 = Clock::now();
  EXPECT_EQ(server_->stop(Ms(static_cast<long>(kGrace * 1000) + 2000 * kSlowdown)),
            (ExitStatus{true, 0}));
  std::printf("server exited %.0f ms after SIGTERM (grace %.0f s)\n", ms_since(t0), kGrace);
  for (const pid_t g : groups)
    EXPECT_TRUE(eventually([&] { return group_members(g).empty(); }))
        << "group " << g << " still has " << group_members(g).size() << " processes";
  for (auto& c : clients)
    EXPECT_TRUE(c->wait(Ms(10'000)).has_value()) << "a client outlived its server";
  // After a failure: the commands this test started do not outlive it.
  for (const pid_t g : groups)
    if (!group_members(g).empty()) ::kill(-g, SIGKILL);
}

}  // namespace
}  // namespace duplex::test
