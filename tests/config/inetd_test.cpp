// `duplex serve --inetd`: one connection on stdin/stdout — a pipe pair, or the connected socket
// systemd-socket-activate --inetd passes — served to its end, then the server exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr const char* kActivate = "/usr/bin/systemd-socket-activate";

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(Inetd, APipePairIsServedToItsEndAndNothingElseReachesStdout) {
  const auto r = run({duplex_bin(), "serve", "--inetd"}, "hello, pipes\n");
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO, PIPES\n") << "stdout is the connection: no 'listening on' line";
}

TEST(Inetd, TheFramedProtocolWorksOverPipesToo) {
  // A framed client's first bytes (preface and HELLO) and one request: WELCOME, then the reply.
  const auto r = run({duplex_bin(), "serve", "--inetd"},
                     preface_and_hello() + frame(msg::upper_request, "over a pipe"));
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_NE(r.out.find("duplex"), std::string::npos) << "no WELCOME naming the server";
  EXPECT_NE(r.out.find("OVER A PIPE"), std::string::npos) << "no reply to the request";
}

TEST(Inetd, ARegularFileIsAOneLineError) {
  TempDir dir;
  const auto r = run({"/bin/sh", "-c", "exec \"$0\" serve --inetd < /dev/null > \"$1\"",
                      duplex_bin(), dir.file("out")});
  EXPECT_EQ(r.status, (ExitStatus{true, 1})) << r.err;
  EXPECT_NE(r.err.find("--inetd: stdout is a regular file"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

TEST(Inetd, EachConnectionSystemdSocketActivateAcceptsIsServedByOneServer) {
  if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is not installed (systemd)";
  const int port = free_port();
  Process launcher({kActivate, "-a", "--inetd", "-l", fmt::format("127.0.0.1:{}", port),
                    duplex_bin(), "serve", "--inetd"});
  const std::string url = fmt::format("tcp://127.0.0.1:{}", port);
  // The launcher may not listen yet: the client's connect is retried until it does.
  ASSERT_TRUE(eventually(
      [&] {
        return run({duplex_bin(), "send", url, "first"}, {}, 10s).out == "FIRST\n";
      },
      10s));
  const auto second = run({duplex_bin(), "send", url, "second", "third"});
  EXPECT_EQ(second.status, kOk) << second.err;
  EXPECT_EQ(second.out, "SECOND\nTHIRD\n");
  // Each connection's server exits 0 when the connection ends (the launcher says so).
  const std::string err = launcher.read_stderr_some(5s).value_or("");
  launcher.signal(SIGTERM);
  launcher.wait(10s);
  const std::string all = err + launcher.read_all_stderr(5s);
  EXPECT_NE(all.find("died with code 0"), std::string::npos) << all;
  EXPECT_EQ(all.find("died with code 1"), std::string::npos) << all;
}

}  // namespace
}  // namespace duplex::test
