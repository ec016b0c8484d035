// Tests for net::bound_to_loopback: judged from the bound socket's own address (issue 7, audit
// item 5). Sockets are bound but never listen, so binding the any-address exposes nothing.
#include "duplex/net/socket_ops.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace duplex::net {
namespace {

// A TCP socket bound (not listening) to `addr` port 0; -1 when the address cannot be bound here.
int bound_tcp(int family, const char* addr) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc = -1;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, addr, &a.sin_addr);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, addr, &a.sin6_addr);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

TEST(BoundToLoopback, AnyAddressIn127Slash8) {
  Fd s{bound_tcp(AF_INET, "127.0.0.2")};
  ASSERT_GE(s.fd, 0);
  EXPECT_TRUE(bound_to_loopback(s.fd));
}

TEST(BoundToLoopback, Ipv6Loopback) {
  Fd s{bound_tcp(AF_INET6, "::1")};
  if (s.fd < 0) GTEST_SKIP() << "::1 cannot be bound on this machine";
  EXPECT_TRUE(bound_to_loopback(s.fd));
}

TEST(BoundToLoopback, AnyAddressIsNot) {
  Fd v4{bound_tcp(AF_INET, "0.0.0.0")};
  ASSERT_GE(v4.fd, 0);
  EXPECT_FALSE(bound_to_loopback(v4.fd));
  Fd v6{bound_tcp(AF_INET6, "::")};
  if (v6.fd >= 0) {
    EXPECT_FALSE(bound_to_loopback(v6.fd));
  }
}

TEST(BoundToLoopback, UnixSocketIs) {
  test::TempDir dir;
  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  ASSERT_GE(s.fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string path = dir.file("s");
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_TRUE(bound_to_loopback(s.fd));
}

TEST(BoundToLoopback, NotASocketIsNot) {
  EXPECT_FALSE(bound_to_loopback(-1));
}

}  // namespace
}  // namespace duplex::net
