// send and chat as nc/socat users expect: lines from stdin, pipelined in order, blank lines and CR
// kept, --stream byte-exact with half-close, --show and --timestamps, and their usage errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kFailure{true, 1};
constexpr ExitStatus kUsage{true, 2};

// A one-connection raw TCP server on 127.0.0.1 run by a test thread: `serve` gets the accepted
// fd and does what the test needs (the fd is closed after it returns).
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(int)> serve) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listen_, 1) != 0 || ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len))
      throw std::runtime_error("OneShotServer: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, serve = std::move(serve)] {
      const int fd = ::accept(listen_, nullptr, nullptr);
      if (fd < 0) return;
      serve(fd);
      ::close(fd);
    });
  }
  ~OneShotServer() {
    join();
    ::close(listen_);
  }
  /// Waits for the served connection to be done (what its function wrote may then be read).
  void join() {
    if (!thread_.joinable()) return;
    ::shutdown(listen_, SHUT_RDWR);  // wakes an accept that never got its client
    thread_.join();
  }
  std::string url() const { return fmt::format("tcp://127.0.0.1:{}", port_); }

 private:
  int listen_ = -1;
  int port_ = 0;
  std::thread thread_;
};

bool send_all_fd(int fd, std::string_view b) {
  while (!b.empty()) {
    const ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    b.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string numbered_lines(int n, const char* fmt_text) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += fmt::format(fmt::runtime(fmt_text), i) + "\n";
  return out;
}

TEST(SendChat, SendReadsLinesFromStdinWhenNoMessageIsGiven) {
  TestServer server;
  const auto r =
      run({duplex_bin(), "send", server.url()}, "one\n\nTwo  ü\r\n   \nlast, no newline");
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ONE\n\nTWO  ü\n   \nLAST, NO NEWLINE\n");
  EXPECT_EQ(r.err, "");
}

TEST(SendChat, EmptyMessagesAreBlankRepliesOnEveryProtocol) {
  TestServer server;
  for (const char* flag : {"--raw", "--framed"}) {
    const auto r = run({duplex_bin(), "send", flag, server.url(), "", "a", "", "", "b", ""});
    EXPECT_EQ(r.status, kOk) << flag << ": " << r.err;
    EXPECT_EQ(r.out, "\nA\n\n\nB\n\n") << flag;
  }
}

TEST(SendChat, TwentyThousandLinesComeBackInOrderThroughSendAndChat) {
  TestServer server;
  const std::string in = numbered_lines(20000, "line {} of many, wörld");
  const std::string want = ascii_upper(in);
  for (const std::string cmd : {"send", "chat"}) {
    for (const std::string flag : {"--framed", "--raw"}) {
      const auto r = run({duplex_bin(), cmd, flag, server.url()}, in, 120s);
      EXPECT_EQ(r.status, kOk) << cmd << " " << flag << ": " << r.err;
      EXPECT_TRUE(same_bytes(r.out, want)) << cmd << " " << flag;
    }
  }
  EXPECT_TRUE(serves_raw(server.url()));
}

TEST(SendChat, RawLinesArePipelinedNotOneRoundTripEach) {
  // This server answers nothing until it holds 40 lines: a client that waits for each reply
  // before sending the next line never gets there (and fails on its --timeout).
  const std::string in = numbered_lines(200, "request {:03}");  // 12 bytes a line
  OneShotServer server([&](int fd) {
    std::string got;
    char buf[4096];
    while (got.size() < 40 * 11) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      got.append(buf, static_cast<std::size_t>(n));
    }
    for (;;) {
      if (!send_all_fd(fd, ascii_upper(got))) return;
      got.clear();
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  const auto r = run({duplex_bin(), "send", "--raw", "--timeout", "20", server.url()}, in, 60s);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_TRUE(same_bytes(r.out, ascii_upper(in)));
}

TEST(SendChat, StreamIsByteExactOnRawAndFramedConnections) {
  TestServer server;
  // Any byte, NUL included, no newline at the end, larger than any frame or window.
  std::string data = random_bytes(3u << 20, 7);
  data.back() = 'x';
  for (const std::string cmd : {"send", "chat"}) {
    for (const std::string flag : {"--framed", "--raw"}) {
      // A duplex server takes a raw client's first NUL for the framed handshake (that is how one
      // port serves both); framed, a stream may start with anything.
      data[0] = flag == "--raw" ? 'f' : '\0';
      const auto r = run({duplex_bin(), cmd, "--stream", flag, server.url()}, data, 120s);
      EXPECT_EQ(r.status, kOk) << cmd << " " << flag << ": " << r.err;
      EXPECT_TRUE(same_bytes(r.out, ascii_upper(data))) << cmd << " " << flag;
      EXPECT_EQ(r.err, "") << cmd << " " << flag;
    }
  }
}

TEST(SendChat, StreamHalfClosesAtEndOfStdinAndReadsUntilTheServerCloses) {
  // nc's contract with a server that is not an upper server: it reads to EOF (which comes only
  // from our half-close), then answers with bytes of its own and closes.
  std::string received;
  const std::string answer = std::string("answer\0with NUL\r\n and no newline", 33);
  OneShotServer server([&](int fd) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      received.append(buf, static_cast<std::size_t>(n));
    }
    send_all_fd(fd, answer);
  });
  const std::string in = std::string("\0raw bytes\nno newline", 21);
  const auto r = run({duplex_bin(), "send", "--raw", "--stream", server.url()}, in, 30s);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_TRUE(same_bytes(r.out, answer));
  EXPECT_EQ(r.err, "");
  server.join();
  EXPECT_TRUE(same_bytes(received, in));
}

TEST(SendChat, ShowAndTimestampsFormatEachReply) {
  TestServer server;
  auto r = run({duplex_bin(), "send", "--show", "escaped", server.url()},
               std::string("a\tb\x01\\ ü\x7f\n", 10));
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "A\\tB\\x01\\\\ ü\\x7f\n");
  r = run({duplex_bin(), "send", "--show", "hex", server.url(), "hi", ""});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "48 49\n\n");
  r = run({duplex_bin(), "chat", "--timestamps", server.url()}, "one\ntwo\n");
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"((\d\d:\d\d:\d\d\.\d{3} ONE\n)"
                                                 R"(\d\d:\d\d:\d\d\.\d{3} TWO\n))")))
      << r.out;
}

TEST(SendChat, StreamUsageErrors) {
  TestServer server;
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{"send", "--stream", server.url(), "msg"},
                                             {"send", "--stream", "--show", "hex", server.url()},
                                             {"chat", "--stream", "--timestamps", server.url()},
                                             {"send", "--stream", "udp://127.0.0.1:9"},
                                             {"send", "--show", "octal", server.url(), "x"}}) {
    std::vector<std::string> argv{duplex_bin()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto r = run(argv, "data\n", 20s);
    EXPECT_EQ(r.status, kUsage) << fmt::format("{}", fmt::join(extra, " ")) << ": " << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(SendChat, ALineAboveTheFrameLimitIsOneLineThatPointsToStream) {
  TestServer server({"--max-frame", "1024"});
  std::string in = "short\n" + std::string(5000, 'y') + "\nnever sent\n";
  const auto r = run({duplex_bin(), "send", server.url()}, in, 30s);
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "SHORT\n");
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--stream"), std::string::npos) << r.err;
  EXPECT_TRUE(serves_raw(server.url()));
}

TEST(SendChat, AServerThatAnswersWhatNobodyAskedIsAnError) {
  OneShotServer server([](int fd) {
    char buf[64];
    if (::recv(fd, buf, sizeof buf, 0) > 0) send_all_fd(fd, "HELLO and more\n");
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  });
  const auto r = run({duplex_bin(), "send", "--raw", server.url(), "hello"}, {}, 30s);
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("answer nothing we sent"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace duplex::test
