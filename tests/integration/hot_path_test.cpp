// The server's hot path as the kernel sees it (traced with strace when it is installed): the
// system calls a raw round trip costs, which thread accepts, and what an idle connection keeps.
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int count_lines_with(const std::string& text, const std::string& what) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(what) != std::string::npos) ++n;
  return n;
}

// A raw round trip is a read and a write. Waiting for readability before each read (what keeps
// idle connections free of a buffer) re-armed the descriptor with one epoll_ctl per message;
// the read now waits with the session's small wait buffer instead.
TEST(HotPath, RawRoundTripsMakeNoEpollCtlEach) {
  const std::string strace = find_program("strace");
  if (strace.empty()) GTEST_SKIP() << "strace is not installed";
  TestServer server({"--threads", "1"});
  SocketClient c(server.url());
  c.send_all("warm up");
  ASSERT_EQ(c.recv_exact(7), "WARM UP");

  TempDir dir;
  const std::string out = dir.file("trace");
  Process tracer({strace, "-f", "-qq", "-e", "trace=epoll_ctl,sendto,sendmsg,write", "-o", out,
                  "-p", std::to_string(server.pid())});
  // Attached once the trace shows our messages' replies.
  const auto attach_deadline = std::chrono::steady_clock::now() + 10s;
  bool attached = false;
  while (!attached && std::chrono::steady_clock::now() < attach_deadline) {
    c.send_all("ping");
    ASSERT_EQ(c.recv_exact(4), "PING");
    attached = count_lines_with(read_file(out), "PING") > 0;
  }
  if (!attached) GTEST_SKIP() << "strace could not attach (ptrace not allowed here?)";

  constexpr int kRounds = 300;
  const std::string before = read_file(out);
  for (int i = 0; i < kRounds; ++i) {
    c.send_all("round trip");
    ASSERT_EQ(c.recv_exact(10), "ROUND TRIP");
  }
  c.send_all("last");
  ASSERT_EQ(c.recv_exact(4), "LAST");
  // The reply to "last" is in the trace: everything before it is too.
  const auto flushed = std::chrono::steady_clock::now() + 10s;
  std::string trace = read_file(out);
  while (count_lines_with(trace, "LAST") == 0 && std::chrono::steady_clock::now() < flushed) {
    std::this_thread::sleep_for(20ms);  // strace writes its file on its own schedule
    trace = read_file(out);
  }
  tracer.signal(SIGINT);
  tracer.wait(10s);
  trace = trace.substr(before.size());
  const int replies = count_lines_with(trace, "ROUND TRIP");
  const int epoll_ctls = count_lines_with(trace, "epoll_ctl(");
  ASSERT_GE(replies, kRounds) << trace.substr(0, 2000);
  EXPECT_LT(epoll_ctls, kRounds / 10) << "epoll_ctl per message; trace:\n" << trace.substr(0, 2000);
}

// With one worker the connections are accepted on it, not on the control thread: accepting on
// one thread and serving on another woke the worker for every connection.
TEST(HotPath, WithOneWorkerConnectionsAreAcceptedOnIt) {
  const std::string strace = find_program("strace");
  if (strace.empty()) GTEST_SKIP() << "strace is not installed";
  TestServer server({"--threads", "1"});
  TempDir dir;
  const std::string out = dir.file("trace");
  Process tracer({strace, "-f", "-qq", "-e", "trace=accept,accept4,sendto,sendmsg,write", "-o", out,
                  "-p", std::to_string(server.pid())});
  const auto attach_deadline = std::chrono::steady_clock::now() + 10s;
  bool attached = false;
  while (!attached && std::chrono::steady_clock::now() < attach_deadline) {
    SocketClient c(server.url());
    c.send_all("ping");
    ASSERT_EQ(c.recv_exact(4), "PING");
    attached = count_lines_with(read_file(out), "PING") > 0;
  }
  if (!attached) GTEST_SKIP() << "strace could not attach (ptrace not allowed here?)";

  constexpr int kConnections = 20;
  for (int i = 0; i < kConnections; ++i) {
    SocketClient c(server.url());
    c.send_all("conn");
    ASSERT_EQ(c.recv_exact(4), "CONN");
  }
  const auto flushed = std::chrono::steady_clock::now() + 10s;
  std::string trace = read_file(out);
  while (count_lines_with(trace, "CONN") < kConnections &&
         std::chrono::steady_clock::now() < flushed) {
    std::this_thread::sleep_for(20ms);  // strace writes its file on its own schedule
    trace = read_file(out);
  }
  tracer.signal(SIGINT);
  tracer.wait(10s);
  // Lines read "TID call(...)": the main thread's TID is the server's pid.
  const std::string main_thread = std::to_string(server.pid()) + " ";
  int accepted_on_main = 0, accepted = 0;
  std::istringstream in(trace);
  for (std::string line; std::getline(in, line);) {
    if (line.find("accept") == std::string::npos || line.find("EAGAIN") != std::string::npos)
      continue;
    ++accepted;
    if (line.rfind(main_thread, 0) == 0) ++accepted_on_main;
  }
  EXPECT_GE(accepted, kConnections) << trace.substr(0, 2000);
  EXPECT_EQ(accepted_on_main, 0) << trace.substr(0, 2000);
}

// W5 in small (docs/BENCHMARKS.md): a raw connection that has said something and waits costs the
// server its socket, its registration and one pending read (about 1.1 KiB with Asio's descriptor
// state), no coroutine frame (3.1 KiB before). Framed ones still sit in their coroutines.
TEST(HotPath, AnIdleRawConnectionKeepsLittleServerMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's allocator sizes every block its own way";
#endif
  constexpr int kIdle = 2000;
  rlimit fds{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &fds), 0);
  if (fds.rlim_max < 2 * kIdle + 256) GTEST_SKIP() << "RLIMIT_NOFILE too low for the clients";
  fds.rlim_cur = fds.rlim_max;  // the server, started next, inherits it
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &fds), 0);
  TestServer server({"--threads", "1", "--max-connections", std::to_string(kIdle + 100)});
  // Warm up: pools, the reactor's tables and lazily made state exist before the baseline.
  {
    std::vector<SocketClient> warm;
    for (int i = 0; i < 200; ++i) {
      warm.emplace_back(server.url());
      warm.back().send_all("warm");
      ASSERT_EQ(warm.back().recv_exact(4), "WARM");
    }
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(server.pid()) == 1; }));
  const long before = rss_kib(server.pid());
  std::vector<SocketClient> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(server.url());
    idle.back().send_all("hello");
    ASSERT_EQ(idle.back().recv_exact(5), "HELLO");
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(server.pid()) == kIdle + 1; }));
  const long after = rss_kib(server.pid());
  const double per_connection = static_cast<double>(after - before) * 1024.0 / kIdle;
  EXPECT_LT(per_connection, 1536.0)
      << before << " KiB before, " << after << " KiB with " << kIdle << " idle raw connections";
  // And they are still served.
  for (int i = 0; i < kIdle; i += 97) {
    idle[static_cast<std::size_t>(i)].send_all("again");
    EXPECT_EQ(idle[static_cast<std::size_t>(i)].recv_exact(5), "AGAIN");
  }
}

}  // namespace
}  // namespace duplex::test
