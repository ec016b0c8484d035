// Clients nobody here wrote, over UDP: OpenBSD nc -u, socat, and a Python SOCK_DGRAM client in
// the style of the tutorial's UDP chapter. Each gets the exact reply.
#include <string>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

TEST(DatagramClients, NetcatUdp) {
  const std::string nc = find_program("nc");
  if (nc.empty()) GTEST_SKIP() << "nc is not installed";
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  // -w1: quit one second after stdin's EOF; the reply comes long before.
  const auto r = run({nc, "-u", "-w1", "127.0.0.1", std::to_string(server.port())}, "hello",
                     std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HELLO");
}

TEST(DatagramClients, NetcatUdpIpv6) {
  const std::string nc = find_program("nc");
  if (nc.empty()) GTEST_SKIP() << "nc is not installed";
  TestServer server({"--listen", "udp://[::1]:0"});
  const auto r = run({nc, "-6", "-u", "-w1", "::1", std::to_string(server.port())}, "over ipv6 ✓\n",
                     std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "OVER IPV6 ✓\n");
}

TEST(DatagramClients, Socat) {
  const std::string socat = find_program("socat");
  if (socat.empty()) GTEST_SKIP() << "socat is not installed";
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  // -t2: after stdin's EOF, wait up to 2 s for the reply, then exit.
  const auto r = run({socat, "-t2", "-", "UDP:127.0.0.1:" + std::to_string(server.port())},
                     "from socat\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "FROM SOCAT\n");
}

TEST(DatagramClients, SocatUnixgram) {
  const std::string socat = find_program("socat");
  if (socat.empty()) GTEST_SKIP() << "socat is not installed";
  TempDir dir;
  TestServer server({"--listen", "unixgram://" + dir.file("s")});
  // socat binds its own path: the server's reply needs an address to go to.
  const auto r = run({socat, "-t2", "-", "UNIX-SENDTO:" + dir.file("s") + ",bind=" + dir.file("c")},
                     "unix datagram\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "UNIX DATAGRAM\n");
}

// The tutorial's UDP client: socket(AF_INET, SOCK_DGRAM), sendto, recvfrom; nothing else.
constexpr const char* kPythonClient = R"(
import socket, sys
port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
for message in [b"hello from python", b"second datagram", b""]:
    sock.sendto(message, ("127.0.0.1", port))
    data, server = sock.recvfrom(65535)
    print(repr(data), server[0], server[1] == port)
sock.close()
)";

TEST(DatagramClients, PythonTutorialClient) {
  const std::string python = find_program("python3");
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  const auto r = run({python, "-c", kPythonClient, std::to_string(server.port())}, {},
                     std::chrono::seconds(30));
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out,
            "b'HELLO FROM PYTHON' 127.0.0.1 True\n"
            "b'SECOND DATAGRAM' 127.0.0.1 True\n"
            "b'' 127.0.0.1 True\n");
}

}  // namespace
}  // namespace duplex::test
