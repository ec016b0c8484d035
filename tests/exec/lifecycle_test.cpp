// Process lifecycle (issue 3, test 4, and the limits): a client that vanishes takes its command's
// whole process group with it; hundreds of commands leave no zombies and no fds behind; the
// command timeout, the output limit and a server stop each end a command cleanly.
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

using Clock = std::chrono::steady_clock;

ExecRequest shell(std::string script) {
  ExecRequest r;
  r.argv = {std::move(script)};
  r.shell = true;
  return r;
}

// The group of `sh -c 'sleep 1000 & sleep 1001; wait'`: the shell and both sleeps, once running.
struct Group {
  pid_t leader = -1;
  std::vector<pid_t> all;
};

Group wait_for_group(pid_t server_pid, const std::string& marker) {
  Group g;
  const bool up = eventually(
      [&] {
        g = {};
        for (pid_t kid : children_of(server_pid)) {
          if (proc_cmdline(kid).find(marker) == std::string::npos) continue;
          g.leader = kid;
          g.all = {kid};
          for (pid_t d : descendants_of(kid))
            g.all.push_back(d);
        }
        return g.all.size() >= 3;
      },
      std::chrono::seconds(10));
  if (!up) ADD_FAILURE() << "the command's processes did not appear under the server";
  return g;
}

::testing::AssertionResult all_gone(const std::vector<pid_t>& pids) {
  std::string running;
  for (pid_t p : pids)
    if (!not_running(p)) running += " " + std::to_string(p) + " (" + proc_cmdline(p) + ")";
  if (running.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "still running:" << running;
}

ExecRequest argv_of(std::vector<std::string> a) {
  ExecRequest r;
  r.argv = std::move(a);
  return r;
}

const char* const kGroupScript = "sleep 1000 & sleep 1001; wait";

TEST(ExecLifecycle, ClientResetKillsTheWholeGroupWithinTwoSeconds) {
  ExecServer server;
  ExecClient c(server.url());
  c.start(server.token(), shell(kGroupScript));
  c.wait_for(msg::auth_ok);
  const Group g = wait_for_group(server.pid(), "sleep 1000");
  ASSERT_GE(g.all.size(), 3u);
  c.socket().reset();  // as a client killed with SIGKILL: the kernel resets its socket
  const auto t0 = Clock::now();
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::seconds(2)))
      << all_gone(g.all);
  RecordProperty(
      "ms_to_gone",
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
  // The leader is the server's child: it must be reaped, not left a zombie.
  EXPECT_TRUE(
      eventually([&] { return !proc_state(g.leader).has_value(); }, std::chrono::seconds(2)))
      << "leader " << g.leader << " state " << proc_state(g.leader).value_or('?');
}

TEST(ExecLifecycle, ClientCloseKillsTheWholeGroup) {
  ExecServer server;
  ExecClient c(server.url());
  c.start(server.token(), shell(kGroupScript));
  c.wait_for(msg::auth_ok);
  const Group g = wait_for_group(server.pid(), "sleep 1000");
  ASSERT_GE(g.all.size(), 3u);
  c.socket().close();  // orderly FIN, nothing else
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::seconds(2)))
      << all_gone(g.all);
}

TEST(ExecLifecycle, ClientGoneWhileCommandIgnoresSigtermIsKilledAfterGrace) {
  // SIGTERM ignored by the whole group: SIGKILL after --kill-grace must still end it.
  ExecServer server({.args = {"--kill-grace", "0.3"}});
  ExecClient c(server.url());
  c.start(server.token(), shell("trap '' TERM; sleep 1000 & sleep 1001; wait"));
  c.wait_for(msg::auth_ok);
  const Group g = wait_for_group(server.pid(), "sleep 1000");
  ASSERT_GE(g.all.size(), 3u);
  c.socket().reset();
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::seconds(2)))
      << all_gone(g.all);
}

TEST(ExecLifecycle, ClientGoneWhileCommandBlocksOnStdinAndFloodsOutput) {
  // The command is stuck writing (nobody reads) and the client also had stdin in flight.
  ExecServer server;
  ExecClient c(server.url());
  c.start(server.token(), shell("yes flood & sleep 1000; wait"));
  c.wait_for(msg::stdout_data);
  c.send_stdin(std::string(256 * 1024, 'i'));
  const Group g = wait_for_group(server.pid(), "yes flood");
  ASSERT_GE(g.all.size(), 3u);
  c.socket().reset();
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::seconds(2)))
      << all_gone(g.all);
}

// Bug 4 (issue 6): clients that go away while their command's stdin is full. Reproduced with
// eight clients each sending 80 KB to `sleep 200` and closing: the sockets stayed in CLOSE-WAIT,
// the sleeps ran on, and the next command from 127.0.0.1 was refused (per-client limit 8).
void clients_leave_with_unread_input(std::size_t input_bytes, bool reset) {
  ExecServer server;
  std::vector<pid_t> sleeps;
  for (int i = 0; i < 8; ++i) {
    ExecClient c(server.url());
    c.start(server.token(), argv_of({"sleep", "200"}));
    c.wait_for(msg::auth_ok);
    ASSERT_TRUE(eventually(
        [&] {
          for (pid_t kid : children_of(server.pid()))
            if (proc_cmdline(kid).find("sleep 200") != std::string::npos &&
                std::find(sleeps.begin(), sleeps.end(), kid) == sleeps.end()) {
              sleeps.push_back(kid);
              return true;
            }
          return false;
        },
        std::chrono::seconds(10)));
    c.send_stdin(std::string(input_bytes, 'i'));  // in 64 KiB frames
    if (reset)
      c.socket().reset();
    else
      c.socket().close();  // a clean FIN after the input
  }
  ASSERT_EQ(sleeps.size(), 8u);
  EXPECT_TRUE(eventually([&] { return bool(all_gone(sleeps)); }, std::chrono::seconds(3)))
      << all_gone(sleeps);
  // And the same client may run its next command at once.
  const auto t0 = Clock::now();
  const auto o = exec_once(server.url(), server.token(), argv_of({"echo", "next"}));
  EXPECT_TRUE(exited_with(o, 0)) << (o.error ? o.error->text : "");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
}

TEST(ExecLifecycle, ClientsThatCloseWithInputTheCommandNeverReadsLeaveNothingRunning) {
  clients_leave_with_unread_input(80 * 1024, /*reset=*/false);
}

// 7 x 64 KiB: the pipe holds one frame's worth, the server's input queue and its writer five
// more, so the server's reader waits with the seventh and reads no further: the FIN behind it
// must be noticed without reading up to it.
constexpr std::size_t kBeyondWhatTheServerHolds = 7 * 64 * 1024;

TEST(ExecLifecycle, ClientsThatCloseWhileTheServerWaitsToWriteTheirInputAreNoticed) {
  clients_leave_with_unread_input(kBeyondWhatTheServerHolds, /*reset=*/false);
}

TEST(ExecLifecycle, ClientsResetWhileTheServerWaitsToWriteTheirInputAreNoticed) {
  clients_leave_with_unread_input(kBeyondWhatTheServerHolds, /*reset=*/true);
}

TEST(ExecLifecycle, SignalBehindInputTheCommandDoesNotReadReachesIt) {
  // Bug 5's server half: 200 KB that `sleep` never reads fill its pipe; the SIGNAL sent after
  // them must still reach it (it used to wait behind the blocked stdin write).
  ExecServer server;
  ExecClient c(server.url());
  c.start(server.token(), argv_of({"sleep", "200"}));
  c.wait_for(msg::auth_ok);
  c.send_stdin(std::string(200 * 1024, 'i'));
  c.send_signal(SIGUSR1);
  const auto& o = c.finish(std::chrono::seconds(5));
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  EXPECT_TRUE(signaled_with(o, SIGUSR1));
}

// The server side of a loopback TCP connection as `ss -tno` shows it, timers included.
std::string server_socket_line(int port, int client_port) {
  const auto r = run({"ss", "-tno", "state", "established",
                      "( sport = :" + std::to_string(port) +
                          " and dport = :" + std::to_string(client_port) + " )"});
  return r.out;
}

int local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// Bytes the kernel holds in a client socket that it has not yet put on the wire.
int unsent_bytes(int fd) {
  int n = 0;
  return ::ioctl(fd, SIOCOUTQNSD, &n) == 0 ? n : -1;
}

// Bytes waiting in the server's end of a loopback TCP connection (/proc/net/tcp's rx_queue).
long server_receive_queue(int port, int client_port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    unsigned local_port = 0, remote_port = 0;
    unsigned long tx = 0, rx = 0;
    if (std::sscanf(line.c_str(), " %*d: %*8x:%x %*8x:%x %*x %lx:%lx", &local_port, &remote_port,
                    &tx, &rx) == 4 &&
        int(local_port) == port && int(remote_port) == client_port)
      return long(rx);
  }
  return -1;
}

TEST(ExecLifecycle, HalfCloseWhileInputWaitsEndsTheCommandAndStillTellsItsExit) {
  // A client that stops sending while its input waits for a command that never reads: its
  // command ends (as for any client EOF), and a client still reading hears EXIT, then EOF.
  ExecServer server;
  ExecClient c(server.url());
  const int client_port = local_port(c.socket().fd());
  const int port = server.server().port();
  c.start(server.token(), argv_of({"sleep", "200"}));
  c.wait_for(msg::auth_ok);
  // Small frames until the server's reader stops taking them (it waits on the command's full
  // input, and bytes stay in its socket), each delivered before the next: the FIN must reach
  // the server's kernel, and a FIN queued behind bytes a full receive window holds back never
  // would. A fixed amount raced the window, which on loopback can close at 16 KiB.
  bool reader_waits = false;
  for (int i = 0; i < 256 && !reader_waits; ++i) {  // at most 1 MiB
    c.send_stdin(std::string(4096, 'i'));
    ASSERT_TRUE(
        eventually([&] { return unsent_bytes(c.socket().fd()) == 0; }, std::chrono::seconds(5)))
        << "the server's receive window closed after " << i + 1 << " frames";
    reader_waits = !eventually([&] { return server_receive_queue(port, client_port) == 0; },
                               std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(reader_waits) << "the server read 1 MiB of input that `sleep` never reads";
  c.socket().shutdown_write();
  const auto& o = c.finish(std::chrono::seconds(5));
  EXPECT_TRUE(signaled_with(o, SIGTERM));
  EXPECT_TRUE(c.exit_was_last()) << "the server closes after EXIT";
}

TEST(ExecLifecycle, AnAuthenticatedTcpSessionProbesAVanishedPeer) {
  // A client host that vanishes (no FIN, no reset) while its command runs is found by TCP
  // keepalive: the server's socket of an authenticated exec session has a keepalive timer.
  ExecServer server;
  ExecClient c(server.url());
  const int client_port = local_port(c.socket().fd());
  const int port = server.server().port();
  c.send(preface_and_hello());
  c.wait_for(msg::welcome);
  EXPECT_EQ(server_socket_line(port, client_port).find("keepalive"), std::string::npos)
      << "not before AUTH: " << server_socket_line(port, client_port);
  ASSERT_TRUE(c.authenticate(server.token(), /*with_hello=*/false));
  c.send(exec_start_frame(argv_of({"sleep", "200"})));
  c.wait_for(msg::auth_ok);
  EXPECT_TRUE(eventually(
      [&] { return server_socket_line(port, client_port).find("keepalive") != std::string::npos; },
      std::chrono::seconds(2)))
      << server_socket_line(port, client_port);
}

TEST(ExecLifecycle, TwoHundredCommandsLeaveNoZombiesAndNoFds) {
  ExecServer server({.args = {"--max-commands-per-client", "64"}});
  const pid_t spid = server.pid();
  // Variety: output, a status, a background grandchild, a failed start, a PTY, stdin, a reset.
  auto one = [&](int i) {
    ExecRequest r;
    switch (i % 7) {
      case 0: r.argv = {"true"}; break;
      case 1: r = shell("echo out; echo err >&2; exit 3"); break;
      case 2: r = shell("sleep 0 & echo bg"); break;
      case 3: r.argv = {"duplex-no-such-program-xyz"}; break;
      case 4:
        r.argv = {"tty"};
        r.pty = true;
        r.rows = 24;
        r.cols = 80;
        break;
      case 5: r.argv = {"cat"}; break;
      default: r = shell("echo reset-me; sleep 1000"); break;
    }
    ExecClient c(server.url());
    c.start(server.token(), r);
    if (i % 7 == 6) {
      c.wait_for_stdout("reset-me");
      c.socket().reset();
      return;
    }
    c.send_stdin("in\n");
    c.send_eof();
    const auto& o = c.finish();
    ASSERT_TRUE(o.exit) << "command " << i << (o.error ? ": ERROR " + o.error->text : "");
    if (i % 7 == 5) {
      EXPECT_EQ(o.out, "in\n");
    }
  };
  for (int i = 0; i < 14; ++i)
    one(i);  // warm-up: every kind once, twice
  auto settled = [&] { return children_of(spid).empty(); };
  ASSERT_TRUE(eventually(settled, std::chrono::seconds(5)));
  // Fds settle once the last connection's socket is closed on the server's side.
  int fds0 = fd_count(spid);
  eventually(
      [&] {
        const int n = fd_count(spid);
        const bool same = n == fds0;
        fds0 = n;
        return same;
      },
      2s);
  for (int i = 0; i < 200; ++i)
    one(i);
  // Every child reaped (EXIT comes after the reap; the reset ones within the kill grace).
  EXPECT_TRUE(eventually(settled, std::chrono::seconds(5)));
  for (pid_t k : children_of(spid))
    ADD_FAILURE() << "child " << k << " state " << proc_state(k).value_or('?') << ": "
                  << proc_cmdline(k);
  EXPECT_TRUE(eventually([&] { return fd_count(spid) <= fds0; }, std::chrono::seconds(5)))
      << "server fds: " << fds0 << " before, " << fd_count(spid) << " after 200 commands";
}

TEST(ExecLifecycle, CommandTimeoutEndsSleepWithSigterm) {
  ExecServer server({.args = {"--command-timeout", "0.5"}});
  ExecRequest r;
  r.argv = {"sleep", "10"};
  const auto t0 = Clock::now();
  const auto o = exec_once(server.url(), server.token(), r);
  const auto wall = Clock::now() - t0;
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  EXPECT_EQ(o.exit->limit, ExitPayload::timeout) << describe(*o.exit);
  EXPECT_EQ(o.exit->how, ExitPayload::signaled) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, SIGTERM) << describe(*o.exit);
  EXPECT_GE(wall, std::chrono::milliseconds(450));
  EXPECT_LT(wall, std::chrono::seconds(2));
}

TEST(ExecLifecycle, CommandTimeoutCapsALongerRequestedTimeout) {
  ExecServer server({.args = {"--command-timeout", "0.5"}});
  ExecRequest r;
  r.argv = {"sleep", "10"};
  r.timeout_ms = 60'000;  // asks for more than the server allows
  const auto o = exec_once(server.url(), server.token(), r, {}, std::chrono::seconds(5));
  ASSERT_TRUE(o.exit);
  EXPECT_EQ(o.exit->limit, ExitPayload::timeout) << describe(*o.exit);
  EXPECT_LT(o.exit->duration_us, 2'000'000u);
}

TEST(ExecLifecycle, CommandTimeoutKillsTheWholeGroup) {
  ExecServer server({.args = {"--command-timeout", "0.5", "--kill-grace", "0.5"}});
  ExecClient c(server.url());
  c.start(server.token(), shell("trap '' TERM; " + std::string(kGroupScript)));
  c.send_eof();
  const Group g = wait_for_group(server.pid(), "sleep 1000");
  const auto& o = c.finish(std::chrono::seconds(5));
  ASSERT_TRUE(o.exit);
  EXPECT_EQ(o.exit->limit, ExitPayload::timeout) << describe(*o.exit);
  EXPECT_EQ(o.exit->how, ExitPayload::signaled) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, SIGKILL) << describe(*o.exit);
  // The pipes reached EOF, so every process has closed its fds; the kernel may still be a moment
  // from marking the last one exited.
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::milliseconds(500)))
      << all_gone(g.all);
}

TEST(ExecLifecycle, MaxOutputEndsYes) {
  ExecServer server({.args = {"--max-output", "1000"}});
  ExecRequest r;
  r.argv = {"yes"};
  const auto o = exec_once(server.url(), server.token(), r, {}, std::chrono::seconds(10));
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  EXPECT_EQ(o.exit->limit, ExitPayload::output) << describe(*o.exit);
  EXPECT_LE(o.out.size(), 1000u);
  EXPECT_GT(o.out.size(), 0u);
  EXPECT_EQ(o.out.find_first_not_of("y\n"), std::string::npos);
  EXPECT_EQ(o.err, "");
}

TEST(ExecLifecycle, MaxOutputCountsStderrToo) {
  ExecServer server({.args = {"--max-output", "1000"}});
  const auto o =
      exec_once(server.url(), server.token(), shell("yes err >&2"), {}, std::chrono::seconds(10));
  ASSERT_TRUE(o.exit);
  EXPECT_EQ(o.exit->limit, ExitPayload::output) << describe(*o.exit);
  EXPECT_LE(o.out.size() + o.err.size(), 1000u);
}

TEST(ExecLifecycle, OutputBelowTheLimitIsUntouched) {
  ExecServer server({.args = {"--max-output", "1000"}});
  const auto o = exec_once(server.url(), server.token(), shell("printf '%0999d' 0"));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, std::string(999, '0'));
}

TEST(ExecLifecycle, ServerSigtermEndsRunningCommandAndExitsZero) {
  ExecServer server;
  ExecClient c(server.url());
  c.start(server.token(), shell(kGroupScript));
  c.wait_for(msg::auth_ok);
  const Group g = wait_for_group(server.pid(), "sleep 1000");
  ASSERT_GE(g.all.size(), 3u);
  const auto t0 = Clock::now();
  const auto st = server.server().stop(std::chrono::milliseconds(2500));
  EXPECT_EQ(st, (ExitStatus{true, 0}));
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(eventually([&] { return bool(all_gone(g.all)); }, std::chrono::milliseconds(500)))
      << all_gone(g.all);
  // The client learns that it is over: the connection ends, after an EXIT marked "shutdown" if
  // any EXIT arrives at all.
  const auto& o = c.finish(std::chrono::seconds(2));
  if (o.exit) {
    EXPECT_EQ(o.exit->limit, ExitPayload::shutdown) << describe(*o.exit);
  }
  if (o.error) {
    EXPECT_EQ(o.error->code, err::shutting_down) << o.error->text;
  }
}

TEST(ExecAudit, OneLinePerCommandWithPeerIdentityArgvAndExit) {
  ExecServer server({.args = {}, .quiet = false});
  ExecRequest a;
  a.argv = {"printf", "%s", "audit-word-one"};
  EXPECT_TRUE(exited_with(exec_once(server.url(), server.token(), a), 0));
  ExecRequest b;
  b.argv = {"sh", "-c", "exit 3", "audit-word-two"};
  EXPECT_TRUE(exited_with(exec_once(server.url(), server.token(), b), 3));
  const auto refused = exec_once(server.url(), std::string("wrong"), a);
  EXPECT_TRUE(refused_with(refused, err::auth_failed));
  EXPECT_EQ(server.server().stop(), (ExitStatus{true, 0}));
  const std::string log = server.server().stderr_text();
  auto lines_with = [&](const std::string& word) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < log.size()) {
      const auto end = log.find('\n', start);
      const auto line =
          log.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (line.find(word) != std::string::npos) out.push_back(line);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return out;
  };
  const auto one = lines_with("audit-word-one");
  ASSERT_EQ(one.size(), 1u) << log;
  EXPECT_NE(one[0].find("127.0.0.1"), std::string::npos) << one[0];
  EXPECT_NE(one[0].find("token"), std::string::npos) << one[0];
  EXPECT_NE(one[0].find("printf"), std::string::npos) << one[0];
  EXPECT_NE(one[0].find("=14"), std::string::npos) << "bytes out (14): " << one[0];
  const auto two = lines_with("audit-word-two");
  ASSERT_EQ(two.size(), 1u) << log;
  EXPECT_NE(two[0].find("3"), std::string::npos) << two[0];
  EXPECT_FALSE(lines_with("authentication failed").empty()) << "a refused client is logged too:\n"
                                                            << log;
}

}  // namespace
}  // namespace duplex::test
