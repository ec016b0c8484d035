// Floods (issue 7, proof 2, cases 1, 2 and 4): more connections than the cap, a server with 64
// fds, a thousand 4 GiB length prefixes. The server keeps serving honest clients during and after,
// and gives back every fd and its memory.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "hostile/hostile_fixture.hpp"
#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr std::uint16_t kFrameTooLarge = 11;
constexpr std::uint16_t kTooManyConnections = 30;

// Case 1. Five times --max-connections at once: each one over the cap is refused at once (a framed
// client is told why), the owner on the Unix socket takes its reserved slot during the flood, and
// once the flood leaves every fd is back.
TEST(Hostile, ConnectionFloodFiveTimesTheCap) {
  const NoQuarantine no_quarantine;
  TempDir dir;
  constexpr int kCap = 20, kReserved = 1, kFlood = 5 * kCap;
  const std::string owner = "unix://" + dir.file("owner.sock");
  TestServer server({"--listen", "tcp://127.0.0.1:0", "--listen", owner, "--max-connections",
                     std::to_string(kCap), "--reserved-connections", std::to_string(kReserved),
                     "--threads", "2"});
  const pid_t pid = server.pid();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(serves_raw(server.url()));
    ASSERT_TRUE(serves_framed(server.url()));
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 2; }));
  const Usage baseline = usage_of(pid);

  Crowd flood(server.port(), kFlood);
  const auto sent = Clock::now();
  flood.send_each(preface_and_hello());
  // Every connection gets its answer: WELCOME (and stays) or ERROR and a close.
  ASSERT_TRUE(eventually(
      [&] {
        flood.poll_now();
        for (std::size_t i = 0; i < flood.size(); ++i)
          if (!first_frame(flood.received(i)) && !flood.is_closed(i)) return false;
        return true;
      },
      Ms(10'000)));
  int welcomed = 0, told = 0;
  double slowest_refusal_ms = 0;
  for (std::size_t i = 0; i < flood.size(); ++i) {
    const auto f = first_frame(flood.received(i));
    if (f && f->type == msg::welcome) {
      ++welcomed;
      continue;
    }
    if (f) {
      ASSERT_EQ(f->type, msg::error) << "connection " << i;
      const auto e = parse_error(f->payload);
      ASSERT_TRUE(e) << "connection " << i;
      EXPECT_EQ(e->code, kTooManyConnections) << e->text;
      ++told;
    }
  }
  // A refused one is closed as soon as its answer is written.
  ASSERT_TRUE(eventually([&] {
    flood.poll_now();
    return flood.closed_count() == flood.size() - static_cast<std::size_t>(welcomed);
  })) << flood.closed_count()
      << " closed, " << welcomed << " welcomed of " << flood.size();
  for (std::size_t i = 0; i < flood.size(); ++i)
    if (const auto at = flood.closed_at(i))
      slowest_refusal_ms = std::max(slowest_refusal_ms,
                                    std::chrono::duration<double, std::milli>(*at - sent).count());
  std::printf("%d welcomed, %d refused (%d told why); slowest refusal %.1f ms after its HELLO\n",
              welcomed, kFlood - welcomed, told, slowest_refusal_ms);
  EXPECT_EQ(welcomed, kCap - kReserved);
  EXPECT_GT(told, 0);
  // Quick: answered from the first bytes (the server waits at most 500 ms for them, and they were
  // sent at once). Scaled by the sanitizer's slowdown.
  EXPECT_LT(slowest_refusal_ms, 300.0 * kSlowdown);
  // During the flood the owner has its reserved slot; the welcomed ones are still served.
  EXPECT_TRUE(serves_framed(owner));
  EXPECT_EQ(server.process().wait(Ms(0)), std::nullopt) << "the server died";

  flood.close_all();
  EXPECT_TRUE(fds_back(pid, baseline, 2));
  EXPECT_TRUE(serves_raw(server.url()));
  EXPECT_TRUE(serves_framed(server.url()));
  const Usage after = usage_of(pid);
  // A hundred sessions came and went: what they held is freed (quarantine off), so a few MiB of
  // allocator caches at most.
  EXPECT_LT(after.rss_kib - baseline.rss_kib, kShadow * 4 * 1024) << after << " vs " << baseline;
  EXPECT_EQ(after.children, 0u);
}

// Starts `duplex serve` with RLIMIT_NOFILE at 64 (soft and hard, so the server cannot raise it):
// DUPLEX_BIN points at a script that execs prlimit, which execs the server (one pid throughout).
std::string limited_duplex(const TempDir& dir, int nofile) {
  const std::string script = dir.file("duplex-limited");
  std::ofstream(script) << "#!/bin/sh\nexec prlimit --nofile=" << nofile << ":" << nofile << " -- '"
                        << duplex_bin() << "' \"$@\"\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  return script;
}

// Case 2. With 64 fds, 200 clients at once: the server hits EMFILE (or its clamped cap), sheds and
// backs off rather than spinning on accept, and an honest client is served after.
TEST(Hostile, TwoHundredClientsAgainstSixtyFourFds) {
  if (find_program("prlimit").empty()) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  TempDir dir;
  std::unique_ptr<TestServer> server;
  {
    const ScopedEnv bin("DUPLEX_BIN", limited_duplex(dir, 64));
    server = std::make_unique<TestServer>(std::vector<std::string>{"--threads", "1"});
  }
  const pid_t pid = server->pid();
  {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(maps, line);)
      if (line.find("libubsan") != std::string::npos)
        GTEST_SKIP() << "UBSan-instrumented server: its vptr check probes memory through pipe(), "
                        "so with no fd left a virtual call is reported as 'invalid vptr' and "
                        "-fno-sanitize-recover ends the server (as Limits.OutOfFileDescriptors* "
                        "says); the uninstrumented and TSan builds run this test.";
  }
  {
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    bool seen = false;
    while (std::getline(limits, line))
      if (line.rfind("Max open files", 0) == 0) {
        seen = true;
        EXPECT_NE(line.find(" 64 "), std::string::npos) << line;
      }
    ASSERT_TRUE(seen);
  }
  // The cap was clamped to what 64 fds hold, and the server said so.
  EXPECT_TRUE(server->wait_stderr("--max-connections lowered"));
  ASSERT_TRUE(eventually([&] { return serves_raw(server->url()); }));
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }));
  const Usage baseline = usage_of(pid);

  const double cpu_before = cpu_seconds(pid);
  const auto t0 = Clock::now();
  Crowd flood(server->port(), 200);
  flood.send_each(preface_and_hello());
  // Hold the crowd for two seconds: a loop spinning on EMFILE would burn a core the whole time.
  const auto hold_until = t0 + Ms(2000);
  while (Clock::now() < hold_until)
    flood.poll(Ms(100));
  const double cpu = cpu_seconds(pid) - cpu_before;
  const double wall = ms_since(t0) / 1000.0;
  std::printf("server CPU %.3f s over %.2f s with 200 clients and 64 fds; %zu closed by it\n", cpu,
              wall, flood.closed_count());
  // 200 accepts, refusals and closes cost a few ms of CPU; a busy loop would cost ~wall. A fifth of
  // one core leaves room for a slow sanitizer build.
  EXPECT_LT(cpu, 0.2 * wall * (kSlowdown > 1 ? 2 : 1)) << "busy loop?";
  EXPECT_EQ(server->process().wait(Ms(0)), std::nullopt) << "the server died";

  flood.close_all();
  EXPECT_TRUE(eventually([&] { return serves_raw(server->url()); }, Ms(10'000)));
  EXPECT_TRUE(eventually([&] { return serves_framed(server->url()); }, Ms(10'000)));
  EXPECT_TRUE(fds_back(pid, baseline, 1));
}

// Case 4. A thousand clients each announce a 4 GiB HELLO before authenticating, all at once: each
// is refused from its header (ERROR frame_too_large, then close) and the server's memory stays
// bounded; honest clients are served in the middle of it and after. Three rounds, then 500 more
// one at a time, after which the server must hold no more memory than before them.
TEST(Hostile, ThousandFourGibibyteLengthPrefixes) {
  const NoQuarantine no_quarantine;
  TestServer server({"--threads", "2"});
  const pid_t pid = server.pid();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(serves_framed(server.url()));
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }));
  const Usage baseline = usage_of(pid);

  constexpr std::size_t kClients = 1000;
  const std::string header = std::string("\0DPX", 4) + frame_header(msg::hello, 0xffffffffu);
  for (int round = 0; round < 3; ++round) {
    RssPeak peak(pid);
    Crowd crowd(server.port(), kClients);
    for (std::size_t i = 0; i < kClients; ++i) {
      crowd.send_to(i, header);
      if (i == kClients / 2) {
        EXPECT_TRUE(serves_framed(server.url()));
        EXPECT_TRUE(serves_raw(server.url()));
      }
    }
    ASSERT_TRUE(crowd.wait_all_closed(Ms(20'000))) << crowd.closed_count() << " closed";
    const long peak_kib = peak.stop();
    int refused = 0;
    for (std::size_t i = 0; i < kClients; ++i) {
      const auto f = first_frame(crowd.received(i));
      if (!f || f->type != msg::error) continue;
      const auto e = parse_error(f->payload);
      // Exactly one frame, then the close.
      refused +=
          e && e->code == kFrameTooLarge && crowd.received(i).size() == 6 + f->payload.size();
    }
    EXPECT_EQ(refused, static_cast<int>(kClients)) << "round " << round;
    EXPECT_TRUE(fds_back(pid, baseline, 1)) << "round " << round;
    const long now = rss_kib(pid);
    std::printf(
        "round %d: RSS %ld KiB at start, peak %ld KiB during %zu 4 GiB headers, %ld after\n", round,
        baseline.rss_kib, peak_kib, kClients, now);
    // The bound: a session in flight holds at most one read chunk (Limits::read_chunk, 64 KiB,
    // taken while it has bytes to process) and its own state (a few KiB): 72 KiB each, all
    // thousand at once. Allocating what a header announces would be 4 GiB; even the 1 MiB
    // --max-frame per connection would be 1000 MiB.
    EXPECT_LT(peak_kib - baseline.rss_kib, kShadow * static_cast<long>(kClients) * 72)
        << "round " << round;
    (void)now;
  }
  // Nothing kept per connection. Not judged from the rounds above: how many of a thousand
  // sessions are in flight at once depends on the scheduler, and the allocator keeps its heap at
  // each round's peak (seen: 37, 40, then 50 MiB after rounds of the same load, while eight
  // rounds in a row outside the test stayed flat at 37 MiB). One client at a time reuses the
  // same memory, so whatever a connection leaves behind adds up instead.
  const long before_serial = rss_kib(pid);
  constexpr int kSerial = 500;
  for (int i = 0; i < kSerial; ++i) {
    SocketClient c(server.url());
    c.send_all(header);
    (void)c.recv_until_eof(std::chrono::seconds(10));
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }));
  const long grown = rss_kib(pid) - before_serial;
  std::printf("%d more, one at a time: RSS %+ld KiB\n", kSerial, grown);
  // 1 KiB left per connection would be 500 KiB; allow a few pages of allocator noise.
  EXPECT_LT(grown, kShadow * 256) << "KiB kept after " << kSerial << " connections";
  EXPECT_TRUE(serves_framed(server.url()));
}

}  // namespace
}  // namespace duplex::test
