// Type=notify: `duplex serve` started with $NOTIFY_SOCKET says READY=1 once it listens, and
// STOPPING=1 when it stops — checked on our own datagram socket standing in for systemd.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace duplex::test {
namespace {

// A bound unixgram socket: what systemd listens on for a Type=notify service.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_DGRAM, 0)) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
  }
  ~NotifySocket() { ::close(fd_); }
  // The next datagram, or "" after `timeout`.
  std::string receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  int fd_;
};

TEST(SystemdNotify, ReadyOnceListeningThenStopping) {
  TempDir dir;
  const std::string path = dir.file("notify");
  NotifySocket systemd(path);
  Process server({duplex_bin(), "serve", "--listen", "tcp://127.0.0.1:0"},
                 {"NOTIFY_SOCKET=" + path});
  const std::string listening = server.read_line().value_or("");
  ASSERT_EQ(listening.rfind("listening on tcp://127.0.0.1:", 0), 0u) << listening;
  const std::string ready = systemd.receive(std::chrono::seconds(10));
  EXPECT_EQ(ready, "READY=1\nSTATUS=" + listening);
  server.signal(SIGTERM);
  EXPECT_EQ(systemd.receive(std::chrono::seconds(10)), "STOPPING=1");
  const auto st = server.wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, (ExitStatus{true, 0}));
}

}  // namespace
}  // namespace duplex::test
