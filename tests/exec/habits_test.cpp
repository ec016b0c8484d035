// ssh habits with `duplex exec` and `duplex shell` (issue 10, "Using it"): a shell line given as
// the program gets a hint for -c; no command opens a shell; without a terminal there is no PTY
// (one warning) and commands from stdin still run; `~.` after a newline leaves a hung session.
#include <signal.h>
#include <termios.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"
#include "exec/pty_process.hpp"

namespace duplex::test {
namespace {

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

class ExecHabitsTest : public ::testing::Test {
 protected:
  ExecServer server_;

  /// duplex CMD --token-file TOKEN URL ARGS...
  RunResult dx(const std::string& cmd, std::vector<std::string> args, std::string_view input = {}) {
    std::vector<std::string> argv{duplex_bin(), cmd, "--token-file", server_.token_path(),
                                  server_.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input, std::chrono::seconds(60));
  }
};

TEST_F(ExecHabitsTest, AShellLineAsTheCommandFailsWithAHintForDashC) {
  const auto r = dx("exec", {"ls | wc -l"});
  EXPECT_EQ(r.status, (ExitStatus{true, 127})) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_TRUE(contains(r.err, "use -c 'ls | wc -l'")) << r.err;
  EXPECT_EQ(r.out, "");
  // The hint works: the same string after -c runs in the shell.
  const auto c = dx("exec", {"-c", "printf 'a\\nb\\n' | wc -l"});
  EXPECT_EQ(c.status, (ExitStatus{true, 0})) << c.err;
  EXPECT_EQ(c.out, "2\n");
}

int count_of(const std::string& s, std::string_view part) {
  int n = 0;
  for (auto at = s.find(part); at != std::string::npos; at = s.find(part, at + part.size()))
    ++n;
  return n;
}

constexpr std::string_view kNoPtyWarning =
    "pseudo-terminal will not be allocated because stdin is not a terminal";

TEST_F(ExecHabitsTest, ShellWithoutATerminalRunsCommandsFromStdinWithoutAPty) {
  // `duplex shell URL < script`, as `ssh host < script`: one warning, no PTY, the lines run.
  const auto r = dx("shell", {}, "[ -t 0 ] || echo no-tty-here\necho from-stdin\nexit 4\n");
  EXPECT_EQ(r.status, (ExitStatus{true, 4})) << r.err;
  EXPECT_TRUE(contains(r.out, "no-tty-here\nfrom-stdin\n")) << r.out;
  EXPECT_EQ(count_of(r.err, kNoPtyWarning), 1) << r.err;
}

TEST_F(ExecHabitsTest, ShellDashTForcesAPtyAndDashTQuietsTheWarning) {
  const auto forced = dx("shell", {"-t"}, "[ -t 0 ] && echo remote-tty\nexit 0\n");
  EXPECT_EQ(forced.status, (ExitStatus{true, 0})) << forced.err;
  EXPECT_TRUE(contains(forced.out, "remote-tty")) << forced.out;
  EXPECT_EQ(count_of(forced.err, kNoPtyWarning), 0) << forced.err;
  const auto plain = dx("shell", {"-T"}, "[ -t 0 ] || echo no-tty-here\n");
  EXPECT_EQ(plain.status, (ExitStatus{true, 0})) << plain.err;
  EXPECT_TRUE(contains(plain.out, "no-tty-here")) << plain.out;
  EXPECT_EQ(count_of(plain.err, kNoPtyWarning), 0) << "-T asked for it: " << plain.err;
}

TEST_F(ExecHabitsTest, ExecWithNoCommandOpensAShellReadingStdin) {
  const auto r = dx("exec", {}, "echo \"$((6*7))\"\nexit 5\n");
  EXPECT_EQ(r.status, (ExitStatus{true, 5})) << r.err;
  EXPECT_TRUE(contains(r.out, "42\n")) << r.out;
  EXPECT_EQ(count_of(r.err, kNoPtyWarning), 1) << r.err;
  // The same after `--` with nothing behind it.
  const auto dashes = dx("exec", {"--"}, "exit 6\n");
  EXPECT_EQ(dashes.status, (ExitStatus{true, 6})) << dashes.err;
}

// Typed at a terminal: the tests below drive the client through a pty of their own.
class TerminalHabitsTest : public ::testing::Test {
 protected:
  ExecServer server_;

  std::unique_ptr<PtyProcess> open(const std::string& cmd) {
    auto p =
        std::make_unique<PtyProcess>(std::vector<std::string>{duplex_bin(), cmd, "--token-file",
                                                              server_.token_path(), server_.url()},
                                     std::vector<std::string>{"TERM=xterm"}, 24, 80);
    before_ = p->settings();
    return p;
  }
  // The remote shell's first prompt, then a fixed one (see shell_test.cpp).
  void ready(PtyProcess& p) {
    ASSERT_TRUE(p.wait_until(ends_with_shell_prompt, std::chrono::seconds(15))) << p.screen();
    const auto from = p.screen().size();
    p.type("PS1='READY''> '\r");
    ASSERT_TRUE(p.wait_for("READY> ", std::chrono::seconds(10), from)) << p.screen();
  }
  pid_t remote(const std::string& cmdline) {
    pid_t found = -1;
    eventually(
        [&] {
          for (pid_t d : descendants_of(server_.pid()))
            if (proc_cmdline(d) == cmdline && !not_running(d)) found = d;
          return found > 0;
        },
        std::chrono::seconds(10));
    return found;
  }
  termios before_{};
};

TEST_F(TerminalHabitsTest, ExecWithNoCommandOpensAShellOnAPty) {
  auto p = open("exec");
  ready(*p);
  p->type("[ -t 0 ] && echo remote-tty; exit 3\r");
  const auto st = p->wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << p->screen();
  EXPECT_EQ(*st, (ExitStatus{true, 3})) << p->screen();
  EXPECT_TRUE(contains(p->screen(), "remote-tty")) << p->screen();
  EXPECT_FALSE(contains(p->screen(), kNoPtyWarning)) << p->screen();
}

TEST_F(TerminalHabitsTest, TildeDotAfterANewlineLeavesAHungSession) {
  auto p = open("shell");
  ready(*p);
  // The remote side ignores what we type while `sleep` holds the terminal: a hung session.
  p->type("trap '' INT; sleep 100\r");
  const pid_t sleeper = remote("sleep 100");
  ASSERT_GT(sleeper, 0) << p->screen();
  p->type("~.");
  const auto st = p->wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << "~. did not end the client; screen:\n" << p->screen();
  EXPECT_EQ(*st, (ExitStatus{true, 255})) << p->screen();
  EXPECT_TRUE(contains(p->screen(), "closed by ~.")) << p->screen();
  const termios after = p->settings();
  EXPECT_EQ(after.c_lflag, before_.c_lflag) << "the terminal is restored";
  EXPECT_EQ(after.c_iflag, before_.c_iflag);
  // We disconnected: the server ends the remote command.
  EXPECT_TRUE(eventually([&] { return not_running(sleeper); }, std::chrono::seconds(15)));
}

TEST_F(TerminalHabitsTest, TildeQuestionListsEscapesAndDoubleTildeSendsOne) {
  auto p = open("shell");
  ready(*p);
  auto from = p->screen().size();
  p->type("~?");
  ASSERT_TRUE(p->wait_for("Supported escape sequences", std::chrono::seconds(10), from))
      << p->screen();
  // `cat` shows what reached the remote side: the echo of the line, then cat's copy of it.
  p->type("cat\r");
  ASSERT_TRUE(remote("cat") > 0) << p->screen();
  from = p->screen().size();
  p->type("~~x\r");
  ASSERT_TRUE(
      p->wait_until([&](const std::string& s) { return count_of(s.substr(from), "~x\r\n") >= 2; },
                    std::chrono::seconds(10)))
      << p->screen().substr(from);
  EXPECT_FALSE(contains(p->screen().substr(from), "~~")) << p->screen().substr(from);
  // A ~ inside a line is plain text.
  from = p->screen().size();
  p->type("a~.b\r");
  ASSERT_TRUE(
      p->wait_until([&](const std::string& s) { return count_of(s.substr(from), "a~.b\r\n") >= 2; },
                    std::chrono::seconds(10)))
      << p->screen().substr(from);
  p->type("\x04");  // cat ends
  ASSERT_TRUE(p->wait_for("READY> ", std::chrono::seconds(10), from)) << p->screen();
  p->type("exit 7\r");
  EXPECT_EQ(p->wait(std::chrono::seconds(10)), (ExitStatus{true, 7})) << p->screen();
}

TEST(TlsUnixPinning, ExecOverTlsUnixPinsTheSocketPathInKnownHosts) {
  // tls+unix:// is pinned like tls://: first contact with accept-new, then known by its path.
  TempDir dir;
  ExecServer server(
      {.args = {"--tls", "--tls-key", dir.file("key.pem"), "--tls-cert", dir.file("cert.pem")},
       .tcp = false,
       .unix_socket = true});
  const std::string path = server.unix_url().substr(std::string("unix://").size());
  const std::string url = "tls+unix://" + path;
  const std::string kh = dir.file("known_hosts");
  auto exec = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{duplex_bin(), "exec", "--known-hosts", kh};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {url, "--", "echo", "over-tls"});
    return run(argv, {}, std::chrono::seconds(60));
  };
  const auto unknown = exec({});
  EXPECT_EQ(unknown.status, (ExitStatus{true, 255})) << "first contact, nobody to ask";
  EXPECT_TRUE(one_line(unknown.err)) << unknown.err;
  const auto first = exec({"--trust", "accept-new"});
  EXPECT_EQ(first.status, (ExitStatus{true, 0})) << first.err;
  EXPECT_EQ(first.out, "over-tls\n");
  const auto fp = run({duplex_bin(), "fingerprint", "--tls-key", dir.file("key.pem")});
  EXPECT_EQ(first_line(kh), path + " " + fp.out.substr(0, fp.out.find('\n')));
  const auto again = exec({});
  EXPECT_EQ(again.status, (ExitStatus{true, 0})) << again.err;
  EXPECT_EQ(again.out, "over-tls\n");
}

}  // namespace
}  // namespace duplex::test
