// Socket activation: `duplex serve` under systemd-socket-activate (Debian's systemd package) and
// with LISTEN_FDS set by hand on sockets it inherits — TCP, Unix stream and UDP, judged from the
// fds, made close-on-exec; and `--inetd`, one connection on stdin/stdout (pipes or a socket).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
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

// A port nothing listens on now (the kernel's pick, released at once).
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

// A bound socket of ours without close-on-exec: what a service manager hands its child.
int bound_socket(int family, int type, const std::string& unix_path = {}) {
  const int fd = ::socket(family, type, 0);
  if (family == AF_UNIX) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, unix_path.c_str(), sizeof(a.sun_path) - 1);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  }
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd, 16), 0);
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// fdinfo's octal "flags:" line of `fd` in process `pid`.
long fd_flags(pid_t pid, int fd) {
  std::ifstream in(fmt::format("/proc/{}/fdinfo/{}", pid, fd));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags:", 0) == 0) return std::stol(line.substr(6), nullptr, 8);
  return -1;
}

// Waits for systemd-socket-activate's "Listening on … as N." for its last socket `last_fd` (the
// event: every socket is bound and listening, so a client may connect); true when it came.
bool wait_until_listening(Process& launcher, int last_fd) {
  const std::string want = fmt::format(" as {}.", last_fd);
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (err.find(want) == std::string::npos && std::chrono::steady_clock::now() < deadline)
    err += launcher.read_stderr_some(1s).value_or("");
  return err.find(want) != std::string::npos;
}

// bash puts `a` at fd 3 and `b` at fd 4, closes the originals, and execs duplex serve with
// LISTEN_PID set to its own pid (exec keeps it) and the rest of `env`.
std::unique_ptr<Process> serve_with_fds(int a, int b, const std::string& env,
                                        std::vector<std::string> args = {}) {
  // Out of the way of 3 and 4 first (a socket of ours may be one of them); no close-on-exec.
  const int high_a = ::fcntl(a, F_DUPFD, 100);
  const int high_b = ::fcntl(b, F_DUPFD, 100);
  std::vector<std::string> argv{
      "/bin/bash", "-c",
      fmt::format("eval \"exec 3<&{0} 4<&{1} {0}<&- {1}<&-\"; LISTEN_PID=$$ {2} exec \"$0\" serve "
                  "\"$@\"",
                  high_a, high_b, env),
      duplex_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = std::make_unique<Process>(argv);
  ::close(high_a);
  ::close(high_b);
  return p;
}

TEST(SocketActivation, ServesTheSocketsSystemdSocketActivateBinds) {
  if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is not installed (systemd)";
  TempDir dir;
  const int port = free_port();
  const std::string path = dir.file("activated.sock");
  // --listen naming the inherited TCP address is served by that socket, not bound again.
  Process server({kActivate, "-l", fmt::format("127.0.0.1:{}", port), "-l", path, duplex_bin(),
                  "serve", "--listen", fmt::format("tcp://127.0.0.1:{}", port)});
  ASSERT_TRUE(wait_until_listening(server, 4));
  // systemd-socket-activate starts the service at the first connection, as systemd does.
  const auto tcp = run({duplex_bin(), "send", fmt::format("tcp://127.0.0.1:{}", port), "hello"});
  EXPECT_EQ(tcp.status, kOk) << tcp.err;
  EXPECT_EQ(tcp.out, "HELLO\n");
  EXPECT_EQ(server.read_line(), fmt::format("listening on tcp://127.0.0.1:{}", port));
  EXPECT_EQ(server.read_line(), "listening on unix://" + path);
  const auto unix_reply = run({duplex_bin(), "send", "unix://" + path, "over unix"});
  EXPECT_EQ(unix_reply.out, "OVER UNIX\n") << unix_reply.err;
  // Commands and helpers started later must not inherit the listening sockets.
  EXPECT_NE(fd_flags(server.pid(), 3) & O_CLOEXEC, 0) << "fd 3 is not close-on-exec";
  EXPECT_NE(fd_flags(server.pid(), 4) & O_CLOEXEC, 0) << "fd 4 is not close-on-exec";
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(10s), kOk);
}

TEST(SocketActivation, ListenFdsByHandWithAStreamAndADatagramSocket) {
  TempDir dir;
  const std::string path = dir.file("stream.sock");
  const int stream = bound_socket(AF_UNIX, SOCK_STREAM, path);
  const int udp = bound_socket(AF_INET, SOCK_DGRAM);
  const int udp_port = port_of(udp);
  auto server = serve_with_fds(stream, udp, "LISTEN_FDS=2 LISTEN_FDNAMES=stream:udp");
  ::close(stream);  // the server holds its own copies now
  ::close(udp);
  // No default address: only what was passed.
  EXPECT_EQ(server->read_line(), "listening on unix://" + path);
  EXPECT_EQ(server->read_line(), fmt::format("listening on udp://127.0.0.1:{}", udp_port));
  const auto s = run({duplex_bin(), "send", "unix://" + path, "stream"});
  EXPECT_EQ(s.out, "STREAM\n") << s.err;
  const auto d = run({duplex_bin(), "send", fmt::format("udp://127.0.0.1:{}", udp_port), "dgram"});
  EXPECT_EQ(d.out, "DGRAM\n") << d.err;
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(10s), kOk);
  // The socket file belongs to whoever bound it: the server leaves it in place.
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
}

TEST(SocketActivation, AConnectedSocketInsteadOfAListeningOneIsAOneLineError) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  auto server = serve_with_fds(pair[0], pair[1], "LISTEN_FDS=2");
  ::close(pair[0]);
  ::close(pair[1]);
  const auto status = server->wait(10s);
  const std::string err = server->read_all_stderr(5s);
  EXPECT_EQ(status, (ExitStatus{true, 1})) << err;
  EXPECT_NE(err.find("fd 3 is a stream socket that is not listening"), std::string::npos) << err;
  EXPECT_NE(err.find("--inetd"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line: " << err;
}

TEST(SocketActivation, AGarbageListenFdsIsAOneLineError) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  auto server = serve_with_fds(pair[0], pair[1], "LISTEN_FDS=two");
  ::close(pair[0]);
  ::close(pair[1]);
  const auto status = server->wait(10s);
  const std::string err = server->read_all_stderr(5s);
  EXPECT_EQ(status, (ExitStatus{true, 1})) << err;
  EXPECT_NE(err.find("LISTEN_FDS=two"), std::string::npos) << err;
}

// --inetd: one connection on stdin/stdout, a pipe pair or the socket a launcher accepted.
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
  ASSERT_TRUE(wait_until_listening(launcher, 3));
  const auto first = run({duplex_bin(), "send", url, "first"});
  EXPECT_EQ(first.status, kOk) << first.err;
  EXPECT_EQ(first.out, "FIRST\n");
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
