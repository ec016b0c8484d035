// --raw-exec (issue 3, test 7): the seed's remote_client.py, only its port changed, against our
// server; the documented reply to a command without output; refusal on non-loopback listeners.
// Issue 6: a half-close means "no more commands" (bug 6), a reset ends the command; a Unix client
// counts as its uid, as in the framed protocol (bug 2); a command over the share waits its turn.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compat/seed_programs.hpp"
#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

class SeedRemoteClient : public SeedTest {};

TEST_F(SeedRemoteClient, RunsCommandsAgainstRawExec) {
  TempDir dir;
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  const auto client = seed_copy(dir, "remote_client.py", server.port());
  // remote_client.py loops on input(); at the end of our input it stops with EOFError.
  const auto r =
      run(python(client), "echo hello\ntrue\necho oops 1>&2; false\necho out; echo err >&2\n", 30s);
  const auto replies = printed_replies(r.out);
  ASSERT_EQ(replies.size(), 4u) << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(replies[0], "hello");
  // A command without output gets this line, so that the seed's client (which waits for a reply)
  // never hangs; documented in exec.hpp (run_raw_command).
  EXPECT_EQ(replies[1], "[no output; exit status 0]");
  EXPECT_EQ(replies[2], "oops");  // stderr of a failing command comes back
  EXPECT_EQ(replies[3], "out");   // stdout, then stderr, as the seed's server sends them
  EXPECT_NE(r.out.find("\nerr\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("客户端输入命令:echo hello,等待服务器的响应..."), std::string::npos)
      << r.out;
}

TEST(RawExec, RepliesStdoutThenStderrAndTheNoOutputLine) {
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  auto ask = [&](std::string_view command, std::string_view want) {
    c.send_all(command);
    EXPECT_EQ(c.recv_exact(want.size()), want) << command;
  };
  ask("echo hello", "hello\n");
  ask("true", "[no output; exit status 0]\n");
  ask("exit 3", "[no output; exit status 3]\n");
  ask("kill -TERM $$", "[no output; exit status 143]\n");
  ask("echo err >&2; echo out", "out\nerr\n");
  ask("printf '%s|' 'a b' ';x'", "a b|;x|");
  // Any size: no 1024-byte limit on our side.
  const std::string big(100'000, 'x');
  ask("head -c 100000 /dev/zero | tr '\\0' x", big);
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "");
}

TEST(RawExec, AllowedOnAUnixSocket) {
  TempDir dir;
  TestServer server({"-q", "--raw-exec", "--listen", "unix://" + dir.file("raw.sock")});
  SocketClient c(server.url());
  c.send_all("echo via unix");
  EXPECT_EQ(c.recv_exact(9), "via unix\n");
}

TEST(RawExec, FramedClientsStillServedBesideRawExec) {
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  c.send_all(preface_and_hello() + frame(msg::upper_request, "framed"));
  EXPECT_EQ(read_frame(c).type, msg::welcome);
  const auto f = read_frame(c);
  EXPECT_EQ(f.type, msg::upper_reply);
  EXPECT_EQ(f.payload, "FRAMED");
}

TEST(RawExec, WithoutRawExecARawCommandIsOnlyUpperCased) {
  // --exec serves framed, authenticated clients only: raw text is never a command.
  ExecServer server;
  const auto marker = server.dir().file("ran");
  SocketClient c(server.url());
  const std::string command = "touch " + marker;
  c.send_all(command);
  std::string want = command;
  std::transform(want.begin(), want.end(), want.begin(),
                 [](char ch) { return ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 32) : ch; });
  EXPECT_EQ(c.recv_exact(want.size()), want);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

// Protected mode is judged from the bound sockets (exit 2, one line saying which flag fixes it).
void expect_refused_at_start(std::vector<std::string> args, const std::string& flag,
                             const std::string& fix) {
  // As root (tests here, CI too), --allow-root: the refusal looked at is protected mode's.
  std::vector<std::string> argv{duplex_bin(), "serve", "--allow-root"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run(argv, {}, std::chrono::seconds(10));
  EXPECT_EQ(r.status, (ExitStatus{true, 2})) << r.err;
  EXPECT_EQ(r.out, "") << "it must not start listening";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, got:\n" << r.err;
  EXPECT_NE(r.err.find("refusing " + flag), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fix), std::string::npos) << r.err;
}

constexpr const char* kRawFix =
    "loopback addresses or Unix sockets only; use --exec with --tls-only";
constexpr const char* kExecFix = "without TLS: add --tls-only";

TEST(RawExec, RefusedOnANonLoopbackListener) {
  expect_refused_at_start({"--raw-exec", "--listen", "tcp://0.0.0.0:0"}, "--raw-exec", kRawFix);
}

TEST(RawExec, RefusedWhenAnyListenerIsNotLoopback) {
  expect_refused_at_start(
      {"--raw-exec", "--listen", "tcp://127.0.0.1:0", "--listen", "tcp://0.0.0.0:0"}, "--raw-exec",
      kRawFix);
}

TEST(RawExec, RefusedOnANonLoopbackListenerEvenWithTls) {
  TempDir dir;
  expect_refused_at_start(
      {"--raw-exec", "--tls-only", "--tls-key", dir.file("key.pem"), "--listen", "tcp://0.0.0.0:0"},
      "--raw-exec", kRawFix);
  EXPECT_FALSE(std::filesystem::exists(dir.file("key.pem"))) << "refused before making a key";
}

TEST(RawExec, ExecRefusedOnANonLoopbackListener) {
  TempDir dir;
  expect_refused_at_start(
      {"--exec", "--token-file", dir.file("token"), "--listen", "tcp://0.0.0.0:0"}, "--exec",
      kExecFix);
}

TEST(RawExec, ExecRefusedOnIpv6Any) {
  TempDir dir;
  expect_refused_at_start({"--exec", "--token-file", dir.file("token"), "--listen", "tcp://[::]:0"},
                          "--exec", kExecFix);
}

// Audit item 5: "localhost" was accepted by its spelling and bound to whatever the resolver said.
// Here the resolver says 0.0.0.0 (a hosts file bind-mounted over /etc/hosts in a mount namespace
// of the server's own; a network namespace of its own too, so 0.0.0.0 reaches nobody).
bool can_unshare() {
  return ::geteuid() == 0 &&
         run({"unshare", "--mount", "--net", "true"}).status == (ExitStatus{true, 0});
}

std::vector<std::string> with_hosts_saying_localhost_is_any(const std::string& hosts,
                                                            std::vector<std::string> serve_args) {
  std::vector<std::string> argv{
      "unshare", "--mount",    "--net", "--propagation",
      "private", "sh",         "-c",    "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
      hosts,     duplex_bin(), "serve", "--allow-root"};
  argv.insert(argv.end(), serve_args.begin(), serve_args.end());
  return argv;
}

TEST(RawExec, RefusedWhenLocalhostResolvesToTheAnyAddress) {
  if (!can_unshare()) GTEST_SKIP() << "needs root and unshare(1) for a mount namespace";
  TempDir dir;
  const std::string hosts = dir.file("hosts");
  {
    std::ofstream f(hosts);
    f << "0.0.0.0 localhost\n";
  }
  // Control: the trick works, i.e. without --raw-exec the server really listens on 0.0.0.0.
  {
    Process plain(with_hosts_saying_localhost_is_any(hosts, {"--listen", "tcp://localhost:0"}));
    const auto line = plain.read_line(15s);
    ASSERT_TRUE(line.has_value()) << plain.read_all_stderr(1s);
    const int port = std::stoi(line->substr(line->rfind(':') + 1));
    std::ifstream tcp("/proc/" + std::to_string(plain.pid()) + "/net/tcp");
    std::string text((std::istreambuf_iterator<char>(tcp)), std::istreambuf_iterator<char>());
    char want[32];
    std::snprintf(want, sizeof want, "00000000:%04X 00000000:0000 0A", port);
    EXPECT_NE(text.find(want), std::string::npos) << "not on 0.0.0.0:" << port << "\n" << text;
    plain.signal(SIGTERM);
    EXPECT_TRUE(plain.wait(5s).has_value());
  }
  const auto r = run(
      with_hosts_saying_localhost_is_any(hosts, {"--raw-exec", "--listen", "tcp://localhost:0"}),
      {}, 15s);
  EXPECT_EQ(r.status, (ExitStatus{true, 2})) << r.out << r.err;
  EXPECT_EQ(r.out, "") << "it must not start listening";
  // The bound address is named: that is what the check looked at.
  EXPECT_NE(r.err.find("refusing --raw-exec on tcp://0.0.0.0:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(kRawFix), std::string::npos) << r.err;
}

// --exec with --tls (not --tls-only) on a network listener starts: plaintext clients there may
// use the upper service, and the exec service refuses them (errc::insecure_channel). In a
// network namespace of its own, so that 0.0.0.0 reaches nobody.
TEST(RawExec, ExecWithTlsStartsOnANetworkListener) {
  if (!can_unshare()) GTEST_SKIP() << "needs root and unshare(1) for a network namespace";
  TempDir dir;
  Process server({"unshare", "--net", duplex_bin(), "serve", "--exec", "--allow-root", "--tls",
                  "--tls-key", dir.file("key.pem"), "--token-file", dir.file("token"), "--listen",
                  "tcp://0.0.0.0:0"});
  const auto line = server.read_line(15s);
  ASSERT_TRUE(line.has_value()) << server.read_all_stderr(1s);
  EXPECT_EQ(line->rfind("listening on tcp://0.0.0.0:", 0), 0u) << *line;
  const auto fp = server.read_line(5s);
  ASSERT_TRUE(fp.has_value());
  EXPECT_EQ(fp->rfind("fingerprint SHA256:", 0), 0u) << *fp;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(5s), (std::optional<ExitStatus>(ExitStatus{true, 0})));
}

TEST(RawExec, HalfCloseAfterACommandStillGetsTheReply) {
  // Bug 6: the FIN after the command was taken for "peer went away" and the command was killed.
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  c.send_all("sleep 0.3; echo hi");
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "hi\n") << "the reply, then the server closes";
}

TEST(RawExec, HalfCloseOnAUnixSocketStillGetsTheReply) {
  TempDir dir;
  TestServer server({"-q", "--raw-exec", "--listen", "unix://" + dir.file("raw.sock")});
  SocketClient c(server.url());
  c.send_all("sleep 0.3; echo via unix");
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "via unix\n");
}

TEST(RawExec, NetcatWithHalfClosePrintsTheReply) {
  // The issue's own reproduction: printf 'echo hi' | nc -N 127.0.0.1 PORT
  if (!std::filesystem::exists("/bin/nc") && !std::filesystem::exists("/usr/bin/nc"))
    GTEST_SKIP() << "no nc on this machine";
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  const auto r = run(
      {"sh", "-c", "printf 'echo hi' | nc -N 127.0.0.1 " + std::to_string(server.port())}, {}, 30s);
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "hi\n");
}

// The raw command's processes under the server whose command line is `cmdline` (0: none yet).
pid_t raw_command_pid(pid_t server, const std::string& cmdline) {
  pid_t found = 0;
  eventually(
      [&] {
        for (pid_t p : descendants_of(server))
          if (proc_cmdline(p) == cmdline && !not_running(p)) found = p;
        return found > 0;
      },
      10s);
  return found;
}

// "PID STATE CMDLINE; " for each child of pid (a zombie shows as Z).
std::string describe_children(pid_t pid) {
  std::string s;
  for (pid_t p : children_of(pid))
    s += std::to_string(p) + " " + proc_state(p).value_or('?') + " " + proc_cmdline(p) + "; ";
  return s;
}

TEST(RawExec, ResetWhileACommandRunsEndsAndReapsIt) {
  // A reset (not a FIN) is a peer that really vanished: its command is killed and reaped.
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  {
    SocketClient c(server.url());
    c.send_all("sleep 301; echo never");
    const pid_t sleeper = raw_command_pid(server.pid(), "sleep 301");
    ASSERT_GT(sleeper, 0) << "the command never started";
    c.reset();
    EXPECT_TRUE(eventually([&] { return not_running(sleeper); }, 5s)) << "sleep still runs";
  }
  EXPECT_TRUE(eventually([&] { return children_of(server.pid()).empty(); }, 5s))
      << "the command's shell was not reaped: " << describe_children(server.pid());
  SocketClient next(server.url());
  next.send_all("echo still serving");
  EXPECT_EQ(next.recv_exact(14), "still serving\n");
}

// Reads up to and including a newline (or until EOF or a timeout).
std::string recv_line(SocketClient& c) {
  std::string got;
  while (got.empty() || got.back() != '\n') {
    const auto more = c.recv_some(65536, 10s);
    if (!more || more->empty()) break;
    got += *more;
  }
  return got;
}

TEST(RawExec, UnixClientCountsAsItsUidLikeAFramedOne) {
  // Bug 2: raw-exec cut its per-client key from "unix:pid=..,uid=.." at the last ':', so every
  // raw Unix client was "unix", apart from the same user's framed commands ("uid:N").
  ExecServer server(
      {.args = {"--raw-exec", "--max-commands-per-client", "1", "--max-queued-per-client", "0"},
       .tcp = false,
       .unix_socket = true});
  ExecClient framed(server.unix_url());
  ExecRequest cat;
  cat.argv = {"cat"};
  framed.start(server.token(), cat);
  framed.send_stdin("ping\n");
  framed.wait_for_stdout("ping\n");

  SocketClient raw(server.unix_url());
  raw.send_all("echo raw");
  const std::string want = "duplex: too many commands running for this client (limit 1)\n";
  EXPECT_EQ(recv_line(raw), want) << "the user's framed command holds the one slot";

  framed.send_eof();
  EXPECT_TRUE(exited_with(framed.finish(), 0));
  raw.send_all("echo raw again");
  EXPECT_EQ(raw.recv_exact(10), "raw again\n");
}

TEST(RawExec, CommandOverTheShareWaitsItsTurn) {
  TestServer server(
      {"-q", "--raw-exec", "--max-commands-per-client", "1", "--listen", "tcp://127.0.0.1:0"});
  SocketClient first(server.url());
  first.send_all("sleep 301");
  ASSERT_GT(raw_command_pid(server.pid(), "sleep 301"), 0);
  SocketClient second(server.url());
  second.send_all("echo second");
  EXPECT_FALSE(second.recv_some(1, 300ms).has_value()) << "it waits, it is not refused";
  first.reset();  // the sleep ends, its slot goes to the waiting command
  EXPECT_EQ(second.recv_exact(7), "second\n");
}

}  // namespace
}  // namespace duplex::test
