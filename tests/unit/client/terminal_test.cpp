// Tests for client/terminal.hpp on a real pseudo-terminal.
// Raw mode in and out, window size, standard fds reopened on /dev/null, whole writes.
#include "duplex/client/terminal.hpp"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <thread>

namespace duplex::client {
namespace {

class Pty : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::openpty(&master_, &slave_, nullptr, nullptr, nullptr), 0); }
  void TearDown() override {
    ::close(master_);
    ::close(slave_);
  }
  termios attrs() {
    termios t{};
    EXPECT_EQ(::tcgetattr(slave_, &t), 0);
    return t;
  }
  int master_ = -1, slave_ = -1;
};

TEST_F(Pty, RawModeIsEnteredAndRestored) {
  const termios before = attrs();
  ASSERT_TRUE(before.c_lflag & ICANON);
  {
    RawMode raw(slave_);
    EXPECT_TRUE(raw.active());
    const termios during = attrs();
    EXPECT_FALSE(during.c_lflag & (ICANON | ECHO | ISIG));
    EXPECT_FALSE(during.c_oflag & OPOST);
  }
  const termios after = attrs();
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
}

TEST_F(Pty, RestoreIsIdempotent) {
  const termios before = attrs();
  RawMode raw(slave_);
  raw.restore();
  EXPECT_FALSE(raw.active());
  EXPECT_EQ(attrs().c_lflag, before.c_lflag);
  raw.restore();
  EXPECT_EQ(attrs().c_lflag, before.c_lflag);
}

TEST_F(Pty, WindowSize) {
  winsize ws{};
  ws.ws_row = 33;
  ws.ws_col = 111;
  ASSERT_EQ(::ioctl(master_, TIOCSWINSZ, &ws), 0);
  auto s = terminal_size(slave_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->rows, 33);
  EXPECT_EQ(s->cols, 111);
  EXPECT_TRUE(is_terminal(slave_));
}

TEST(Terminal, NotATerminal) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_FALSE(is_terminal(p[0]));
  EXPECT_FALSE(terminal_size(p[0]));
  RawMode raw(p[0]);  // a no-op
  EXPECT_FALSE(raw.active());
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Terminal, ClosedStandardFdsAreReopenedOnDevNull) {
  // In a child: closing our own stdin would disturb the test runner.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(0);
    ensure_std_fds();
    struct stat st {
    }, null{};
    const bool ok =
        ::fstat(0, &st) == 0 && ::stat("/dev/null", &null) == 0 && st.st_rdev == null.st_rdev;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(WriteAll, WritesEverythingEvenToANonBlockingPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  const std::string data(1 << 20, 'x');  // far more than a pipe holds
  std::size_t got = 0;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0)
      got += static_cast<std::size_t>(n);
  });
  EXPECT_TRUE(write_all(p[1], as_bytes(data)));
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  EXPECT_EQ(got, data.size());
}

TEST(WriteAll, FalseWhenTheReaderIsGone) {
  std::signal(SIGPIPE, SIG_IGN);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  EXPECT_FALSE(write_all(p[1], as_bytes("x")));
  ::close(p[1]);
}

}  // namespace
}  // namespace duplex::client
