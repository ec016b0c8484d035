// Tests for make_pipe and the fd flag helpers: close-on-exec always, non-blocking per end.
#include "duplex/proc/pipe.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

namespace {

using namespace duplex::proc;

bool has_fd_flag(int fd, int flag) {
  return (::fcntl(fd, F_GETFD) & flag) != 0;
}
bool has_fl_flag(int fd, int flag) {
  return (::fcntl(fd, F_GETFL) & flag) != 0;
}

TEST(Pipe, BothEndsAreCloseOnExecAndBlocking) {
  auto p = make_pipe();
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(has_fd_flag(p->read.get(), FD_CLOEXEC));
  EXPECT_TRUE(has_fd_flag(p->write.get(), FD_CLOEXEC));
  EXPECT_FALSE(has_fl_flag(p->read.get(), O_NONBLOCK));
  EXPECT_FALSE(has_fl_flag(p->write.get(), O_NONBLOCK));
}

TEST(Pipe, BytesFlowFromWriteToRead) {
  auto p = make_pipe();
  ASSERT_TRUE(p);
  ASSERT_EQ(::write(p->write.get(), "a\0b", 3), 3);
  p->write.reset();
  char buf[8];
  ASSERT_EQ(::read(p->read.get(), buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), std::string("a\0b", 3));
  EXPECT_EQ(::read(p->read.get(), buf, sizeof buf), 0);  // EOF once the write end is closed
}

TEST(Pipe, ExtraFlagsApplyToBothEnds) {
  auto p = make_pipe(O_NONBLOCK);
  ASSERT_TRUE(p);
  EXPECT_TRUE(has_fl_flag(p->read.get(), O_NONBLOCK));
  EXPECT_TRUE(has_fl_flag(p->write.get(), O_NONBLOCK));
  EXPECT_TRUE(has_fd_flag(p->read.get(), FD_CLOEXEC));
}

TEST(Pipe, SetNonblockingChangesOnlyThatEnd) {
  auto p = make_pipe();
  ASSERT_TRUE(p);
  ASSERT_FALSE(set_nonblocking(p->read.get(), true));
  EXPECT_TRUE(has_fl_flag(p->read.get(), O_NONBLOCK));
  EXPECT_FALSE(has_fl_flag(p->write.get(), O_NONBLOCK));
  char c;
  EXPECT_EQ(::read(p->read.get(), &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_FALSE(set_nonblocking(p->read.get(), false));
  EXPECT_FALSE(has_fl_flag(p->read.get(), O_NONBLOCK));
}

TEST(Pipe, SetCloexecToggles) {
  auto p = make_pipe();
  ASSERT_TRUE(p);
  ASSERT_FALSE(set_cloexec(p->read.get(), false));
  EXPECT_FALSE(has_fd_flag(p->read.get(), FD_CLOEXEC));
  ASSERT_FALSE(set_cloexec(p->read.get(), true));
  EXPECT_TRUE(has_fd_flag(p->read.get(), FD_CLOEXEC));
}

TEST(Pipe, FlagHelpersReportBadFd) {
  EXPECT_EQ(set_nonblocking(-1, true), std::errc::bad_file_descriptor);
  EXPECT_EQ(set_cloexec(-1, true), std::errc::bad_file_descriptor);
}

}  // namespace

namespace {

TEST(Pipe, GrowPipeEnlargesTheBufferAndNeverShrinksIt) {
  auto p = duplex::proc::make_pipe();
  ASSERT_TRUE(p);
  const int before = ::fcntl(p->read.get(), F_GETPIPE_SZ);
  ASSERT_GT(before, 0);
  const std::size_t got = duplex::proc::grow_pipe(p->read.get(), 256 * 1024);
  EXPECT_EQ(got, static_cast<std::size_t>(::fcntl(p->write.get(), F_GETPIPE_SZ)));
  EXPECT_GE(got, 256u * 1024u);  // root here, and 256 KiB is below the default pipe-max-size
  EXPECT_EQ(duplex::proc::grow_pipe(p->write.get(), 4096), got) << "asking for less shrank it";
}

TEST(Pipe, GrowPipeOnSomethingElseIsZero) {
  EXPECT_EQ(duplex::proc::grow_pipe(-1, 65536), 0u);
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(duplex::proc::grow_pipe(fd, 65536), 0u);
  ::close(fd);
}

}  // namespace
