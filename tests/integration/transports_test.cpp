// Every stream transport the server listens on (IPv4, IPv6, Unix sockets), the address-ownership
// rules (no two servers on one address, stale Unix socket files replaced), and standard tools as
// clients (nc, socat).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

bool ipv6_loopback_available() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string lower(std::string s) {
  for (auto& ch : s)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return s;
}

// A TLS ClientHello (first byte 0x16) on a listener without TLS gets a fatal handshake_failure
// alert and a close, not an upper-cased echo of the hello; raw and framed clients are unaffected.
TEST(Transports, TlsClientOnAPlainListenerGetsAHandshakeFailureAlert) {
  TestServer server({"--listen", "tcp://127.0.0.1:0"});
  SocketClient tls(server.url());
  tls.send_all(std::string("\x16\x03\x01\x00\x05hello", 10));
  EXPECT_EQ(tls.recv_until_eof(), std::string("\x15\x03\x03\x00\x02\x02\x28", 7));
  EXPECT_TRUE(serves_raw(server.url(), "still upper"));
  EXPECT_TRUE(serves_framed(server.url()));
  // A client nobody here wrote: openssl reports the failed handshake and exits non-zero.
  const auto r = run(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(server.port())}, "", 20s);
  EXPECT_NE(r.status, (ExitStatus{true, 0}));
  EXPECT_NE((r.out + r.err).find("handshake failure"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
}

TEST(Transports, Ipv6Loopback) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "::1 is not available on this machine";
  TestServer server({"--listen", "tcp://[::1]:0"});
  EXPECT_EQ(server.url().rfind("tcp://[::1]:", 0), 0u) << server.url();
  EXPECT_GT(server.port(), 0);
  EXPECT_TRUE(serves_raw(server.url(), "over ipv6: ünïcode ok"));
  EXPECT_TRUE(serves_framed(server.url()));
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
}

TEST(Transports, Ipv4AndIpv6AndUnixAtOnce) {
  TempDir dir;
  const std::string path = dir.file("both.sock");
  std::vector<std::string> args{"--listen", "tcp://127.0.0.1:0", "--listen", "unix://" + path};
  const bool v6 = ipv6_loopback_available();
  if (v6) args.insert(args.end(), {"--listen", "tcp://[::1]:0"});
  TestServer server(args);
  ASSERT_EQ(server.urls().size(), v6 ? 3u : 2u);
  for (const auto& url : server.urls()) {
    EXPECT_TRUE(serves_raw(url)) << url;
    EXPECT_TRUE(serves_framed(url)) << url;
  }
}

TEST(Transports, UnixSocketIsOwnerOnlyAndRemovedAtExit) {
  TempDir dir;
  const std::string path = dir.file("duplex.sock");
  TestServer server({"--listen", "unix://" + path});
  EXPECT_EQ(server.url(), "unix://" + path);

  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);

  EXPECT_TRUE(serves_raw(server.url(), "over a unix socket: ça marche"));
  EXPECT_TRUE(serves_framed(server.url()));
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)))
      << path << " left behind";
}

TEST(Transports, SecondServerOnSameUnixPathIsRefused) {
  TempDir dir;
  const std::string path = dir.file("taken.sock");
  TestServer first({"--listen", "unix://" + path});

  const auto second =
      run({duplex_bin(), "serve", "--listen", "unix://" + path}, {}, std::chrono::seconds(10));
  EXPECT_TRUE(second.status.exited);
  EXPECT_NE(second.status.code, 0);
  EXPECT_EQ(line_count(second.err), 1u) << second.err;
  EXPECT_NE(second.err.find(path), std::string::npos) << second.err;
  EXPECT_EQ(second.out.find("listening on"), std::string::npos) << second.out;

  // The first server keeps its address: the file is still there and still answers.
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  EXPECT_TRUE(serves_raw(first.url()));
}

TEST(Transports, StaleUnixSocketFromKilledServerIsReplaced) {
  TempDir dir;
  const std::string path = dir.file("stale.sock");
  {
    Process killed({duplex_bin(), "serve", "--listen", "unix://" + path});
    const auto line = killed.read_line();
    ASSERT_TRUE(line.has_value()) << killed.read_all_stderr(std::chrono::seconds(1));
    ASSERT_EQ(*line, "listening on unix://" + path);
    killed.signal(SIGKILL);
    const auto st = killed.wait();
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(*st, (ExitStatus{false, SIGKILL}));
  }
  ASSERT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path)))
      << "a SIGKILLed server cannot remove its socket file; the test needs it to be stale";

  TestServer server({"--listen", "unix://" + path});
  EXPECT_TRUE(serves_raw(server.url(), "fresh server on a stale path"));
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
}

TEST(Transports, UnixPathThatIsNotASocketIsLeftAlone) {
  TempDir dir;
  const std::string path = dir.file("precious.txt");
  {
    std::ofstream f(path);
    f << "do not delete";
  }
  const auto r =
      run({duplex_bin(), "serve", "--listen", "unix://" + path}, {}, std::chrono::seconds(10));
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  std::ifstream f(path);
  std::string content;
  std::getline(f, content);
  EXPECT_EQ(content, "do not delete");
}

TEST(Transports, SecondServerOnSameTcpPortIsRefused) {
  TestServer first;
  const std::string addr = "tcp://127.0.0.1:" + std::to_string(first.port());
  const auto second = run({duplex_bin(), "serve", "--listen", addr}, {}, std::chrono::seconds(10));
  EXPECT_TRUE(second.status.exited);
  EXPECT_NE(second.status.code, 0);
  EXPECT_NE(lower(second.err).find("address already in use"), std::string::npos) << second.err;
  EXPECT_EQ(line_count(second.err), 1u) << second.err;
  EXPECT_EQ(second.out.find("listening on"), std::string::npos) << second.out;
  EXPECT_TRUE(serves_raw(first.url()));
}

// A datagram address that cannot be bound fails the whole server in one line, like a stream one:
// a UDP port another socket holds, a unixgram path that is a regular file.
TEST(Transports, UnbindableDatagramAddressIsRefusedInOneLineAndNothingListens) {
  TempDir dir;
  const int holder = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  { std::ofstream(dir.file("g")) << "not a socket"; }
  const std::string taken = "udp://127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  for (const std::string& url : {taken, "unixgram://" + dir.file("g")}) {
    const auto r = run({duplex_bin(), "serve", "--listen", "tcp://127.0.0.1:0", "--listen", url},
                       {}, std::chrono::seconds(10));
    EXPECT_TRUE(r.status.exited);
    EXPECT_NE(r.status.code, 0);
    EXPECT_NE(r.err.find("cannot listen on " + url), std::string::npos) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("g")));  // never replaced
  ::close(holder);
}

TEST(Transports, NetcatAsClient) {
  const std::string nc = find_program("nc");
  if (nc.empty()) GTEST_SKIP() << "nc is not installed";
  TestServer server;
  // -N: shut the socket down after EOF on stdin; the server answers, then closes; nc exits.
  const auto r = run({nc, "-N", "127.0.0.1", std::to_string(server.port())}, "hello nc\n",
                     std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HELLO NC\n");
}

TEST(Transports, NetcatOverUnixSocket) {
  const std::string nc = find_program("nc");
  if (nc.empty()) GTEST_SKIP() << "nc is not installed";
  TempDir dir;
  const std::string path = dir.file("nc.sock");
  TestServer server({"--listen", "unix://" + path});
  const auto r = run({nc, "-N", "-U", path}, "hello unix nc ✓\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HELLO UNIX NC ✓\n");
}

TEST(Transports, SocatOverUnixSocket) {
  const std::string socat = find_program("socat");
  if (socat.empty()) GTEST_SKIP() << "socat is not installed";
  TempDir dir;
  const std::string path = dir.file("socat.sock");
  TestServer server({"--listen", "unix://" + path});
  const auto r =
      run({socat, "-", "UNIX-CONNECT:" + path}, "hello socat, grüße\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HELLO SOCAT, GRüßE\n");
}

}  // namespace
}  // namespace duplex::test
