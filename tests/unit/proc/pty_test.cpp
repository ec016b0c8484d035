// Tests for open_pty and set_window_size on a real pseudo-terminal pair (no child processes here).
#include "duplex/proc/pty.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>

namespace {

using namespace duplex::proc;

winsize window_of(int fd) {
  winsize ws{};
  EXPECT_EQ(::ioctl(fd, TIOCGWINSZ, &ws), 0);
  return ws;
}

TEST(Pty, OpensMasterWithSlaveNameAndWindowSize) {
  auto pty = open_pty(24, 80);
  ASSERT_TRUE(pty) << pty.error().message();
  EXPECT_TRUE(pty->master);
  EXPECT_EQ(pty->slave_name.rfind("/dev/pts/", 0), 0u) << pty->slave_name;
  EXPECT_NE(::fcntl(pty->master.get(), F_GETFD) & FD_CLOEXEC, 0);
  winsize ws = window_of(pty->master.get());
  EXPECT_EQ(ws.ws_row, 24);
  EXPECT_EQ(ws.ws_col, 80);
}

TEST(Pty, SetWindowSizeIsSeenOnTheSlave) {
  auto pty = open_pty(24, 80);
  ASSERT_TRUE(pty);
  duplex::proc::UniqueFd slave(::open(pty->slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave);
  ASSERT_FALSE(set_window_size(pty->master.get(), 50, 132));
  winsize ws = window_of(slave.get());
  EXPECT_EQ(ws.ws_row, 50);
  EXPECT_EQ(ws.ws_col, 132);
}

TEST(Pty, SlaveOutputArrivesOnMasterWithTerminalLineEndings) {
  auto pty = open_pty(0, 0);
  ASSERT_TRUE(pty);
  duplex::proc::UniqueFd slave(::open(pty->slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave);
  ASSERT_EQ(::write(slave.get(), "hi\n", 3), 3);
  std::string got;
  while (got.size() < 4) {
    pollfd p{pty->master.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no output from the pty within 5 s";
    char buf[16];
    ssize_t n = ::read(pty->master.get(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, "hi\r\n");  // ONLCR, the default output mode
}

TEST(Pty, SetWindowSizeReportsBadFd) {
  EXPECT_EQ(set_window_size(-1, 1, 1), std::errc::bad_file_descriptor);
}

}  // namespace
