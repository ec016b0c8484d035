// `duplex shell` (issue 3, test 9) driven through a pseudo-terminal the test opens: typed
// commands run in the remote login shell, its exit status comes back, the window size follows
// the local terminal, Ctrl-C reaches the remote foreground job, and the local terminal is
// restored when the client ends.
#include <signal.h>
#include <termios.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"
#include "exec/pty_process.hpp"

namespace duplex::test {
namespace {

class ShellTest : public ::testing::Test {
 protected:
  ExecServer server_;
  // A login shell may read profiles; a fixed prompt marks "ready for the next line".
  std::unique_ptr<PtyProcess> open_shell(unsigned short rows = 24, unsigned short cols = 80) {
    auto p =
        std::make_unique<PtyProcess>(std::vector<std::string>{duplex_bin(), "shell", "--token-file",
                                                              server_.token_path(), server_.url()},
                                     std::vector<std::string>{"TERM=xterm"}, rows, cols);
    before_ = p->settings();
    return p;
  }
  // Waits for the remote shell's first prompt: then the client has its terminal in raw mode
  // and what we type goes to the remote shell.
  void ready(PtyProcess& p) {
    ASSERT_TRUE(p.wait_until(ends_with_shell_prompt, std::chrono::seconds(15)))
        << "no prompt from the remote shell; screen:\n"
        << p.screen();
    // Quoted in two parts so that the echo of this line does not contain the prompt itself.
    const auto from = p.screen().size();
    p.type("PS1='READY''> '\n");
    ASSERT_TRUE(p.wait_for("READY> ", std::chrono::seconds(10), from)) << p.screen();
  }
  termios before_{};
};

TEST_F(ShellTest, RunsTypedCommandsAndReturnsTheExitStatus) {
  auto p = open_shell();
  ready(*p);
  p->type("echo $((6*7)); exit 3\n");
  const auto st = p->wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << "the client did not exit; screen:\n" << p->screen();
  EXPECT_EQ(*st, (ExitStatus{true, 3})) << p->screen();
  EXPECT_NE(p->screen().find("42"), std::string::npos) << p->screen();
}

TEST_F(ShellTest, RemoteIsATerminalOfTheLocalSize) {
  auto p = open_shell(33, 111);
  ready(*p);
  p->type("[ -t 0 ] && echo remote-tty; stty size; exit 0\n");
  ASSERT_TRUE(p->wait(std::chrono::seconds(10)).has_value()) << p->screen();
  EXPECT_NE(p->screen().find("remote-tty"), std::string::npos) << p->screen();
  EXPECT_NE(p->screen().find("33 111"), std::string::npos) << p->screen();
}

TEST_F(ShellTest, WindowSizeFollowsTheLocalTerminal) {
  auto p = open_shell(24, 80);
  ready(*p);
  p->resize(40, 100);  // SIGWINCH to the client; it sends WINDOW_SIZE
  // The resize travels on its own: ask until the remote side has seen it.
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    const auto from = p->screen().size();
    p->type("stty size\n");
    ASSERT_TRUE(p->wait_for("READY> ", std::chrono::seconds(10), from)) << p->screen();
    seen = p->screen().find("40 100", from) != std::string::npos;
  }
  EXPECT_TRUE(seen) << p->screen();
  p->type("exit 0\n");
  EXPECT_EQ(p->wait(std::chrono::seconds(10)), (ExitStatus{true, 0}));
}

TEST_F(ShellTest, CtrlCInterruptsTheRemoteForegroundJob) {
  auto p = open_shell();
  ready(*p);
  p->type("sleep 100\n");
  // The remote sleep runs; Ctrl-C (typed, not a signal to the client) interrupts it.
  ASSERT_TRUE(eventually(
      [&] {
        for (pid_t d : descendants_of(server_.pid()))
          if (proc_cmdline(d) == "sleep 100") return true;
        return false;
      },
      std::chrono::seconds(10)));
  const auto from = p->screen().size();
  p->type("\x03");
  // An interactive shell drops the rest of a line whose job was interrupted: ask separately.
  ASSERT_TRUE(p->wait_for("READY> ", std::chrono::seconds(5), from)) << p->screen();
  p->type("echo status=$?\n");
  EXPECT_TRUE(p->wait_for("status=130", std::chrono::seconds(5), from)) << p->screen();
  p->type("exit 5\n");
  EXPECT_EQ(p->wait(std::chrono::seconds(10)), (ExitStatus{true, 5})) << p->screen();
}

TEST_F(ShellTest, LocalTerminalIsRestoredOnExit) {
  auto p = open_shell();
  ready(*p);
  // While the client runs, the local terminal is raw: no local echo, no line editing.
  const termios during = p->settings();
  EXPECT_EQ(during.c_lflag & (ECHO | ICANON), 0u)
      << "the client did not put the terminal in raw mode";
  p->type("exit 0\n");
  ASSERT_TRUE(p->wait(std::chrono::seconds(10)).has_value());
  const termios after = p->settings();
  EXPECT_EQ(after.c_lflag, before_.c_lflag);
  EXPECT_EQ(after.c_iflag, before_.c_iflag);
  EXPECT_EQ(after.c_oflag, before_.c_oflag);
}

TEST_F(ShellTest, LocalTerminalIsRestoredWhenTheClientIsTerminated) {
  auto p = open_shell();
  ready(*p);
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(std::chrono::seconds(10)).has_value());
  const termios after = p->settings();
  EXPECT_EQ(after.c_lflag, before_.c_lflag);
  EXPECT_EQ(after.c_iflag, before_.c_iflag);
}

TEST_F(ShellTest, LocalTerminalIsRestoredWhenTheServerGoesAway) {
  auto p = open_shell();
  ready(*p);
  server_.server().stop();
  const auto st = p->wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << "the client hung after the server left; screen:\n" << p->screen();
  EXPECT_NE(*st, (ExitStatus{true, 0}));
  const termios after = p->settings();
  EXPECT_EQ(after.c_lflag, before_.c_lflag);
  EXPECT_EQ(after.c_iflag, before_.c_iflag);
}

}  // namespace
}  // namespace duplex::test
