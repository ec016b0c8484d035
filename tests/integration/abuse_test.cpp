// Clients that misbehave: resets mid-message, garbage, broken framing, half-closes, slow writers.
// Each gets the answer PROTOCOL.md §8 promises, the server keeps serving others, and after a
// thousand of them its fds and memory are back where they started.
#include <array>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

// Error codes of docs/PROTOCOL.md §6.
constexpr std::uint16_t kBadPreface = 10;
constexpr std::uint16_t kBadFrame = 12;
constexpr std::uint16_t kUnknownMessage = 13;
constexpr std::uint16_t kUnexpectedMessage = 15;
constexpr std::uint16_t kVersionUnsupported = 16;

// After every scenario: a well-behaved client of each kind is still served correctly.
void expect_server_still_serves(const TestServer& server) {
  EXPECT_TRUE(serves_raw(server.url()));
  EXPECT_TRUE(serves_framed(server.url()));
}

TEST(Abuse, AbruptResetsMidMessageHundredTimes) {
  TestServer server;
  const std::string big(64 * 1024, 'r');
  for (int i = 0; i < 100; ++i) {
    SocketClient c(server.url());
    switch (i % 4) {
      case 0:  // raw: half a message, then RST
        c.send_all("half a mess");
        break;
      case 1:  // framed: handshake and half a frame, then RST
        c.send_all(preface_and_hello() + frame_header(msg::upper_request, 100) +
                   "only forty bytes of the hundred.......");
        break;
      case 2:  // raw: a large message, RST while the server is still writing the reply
        c.send_all(big);
        break;
      default:  // framed: a request in flight, RST before reading its reply
        c.send_all(preface_and_hello() + frame(msg::upper_request, big));
        break;
    }
    c.reset();
    if (i % 25 == 24) {
      ASSERT_TRUE(serves_raw(server.url())) << "after " << i + 1 << " resets";
    }
  }
  expect_server_still_serves(server);
}

TEST(Abuse, RandomGarbageInRawModeIsAnsweredWithItsUpper) {
  TestServer server;
  SocketClient c(server.url());
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    std::string garbage = random_bytes(16 * 1024 + seed * 777, seed);
    if (seed == 1) garbage[0] = '\x01';  // not NUL: a raw client, whatever follows
    c.send_all(garbage);
    EXPECT_TRUE(same_bytes(c.recv_exact(garbage.size()), ascii_upper(garbage))) << "seed " << seed;
  }
  expect_server_still_serves(server);
}

TEST(Abuse, PrefaceFollowedByGarbageGetsErrorThenClose) {
  TestServer server;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SocketClient c(server.url());
    // Garbage where HELLO should be; the half-close ends any frame the garbage seems to start.
    c.send_all(std::string("\0DPX", 4) + random_bytes(4096, seed));
    c.shutdown_write();
    const RawFrame f = read_frame(c);
    ASSERT_EQ(f.type, msg::error) << "seed " << seed;
    const auto e = parse_error(f.payload);
    ASSERT_TRUE(e) << "seed " << seed;
    EXPECT_TRUE(std::set<std::uint16_t>({11, 12, 13, 14, 15}).count(e->code)) << "code " << e->code;
    EXPECT_EQ(c.recv_until_eof(), "") << "seed " << seed;
  }
  expect_server_still_serves(server);
}

TEST(Abuse, WrongPrefaceIsBadPreface) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all(std::string("\0XYZ", 4));
  EXPECT_TRUE(error_then_close(c, kBadPreface));
  expect_server_still_serves(server);
}

TEST(Abuse, WrongPrefaceSplitAcrossWritesIsBadPreface) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all(std::string("\0D", 2));
  // The server must wait for the rest of the preface rather than judge two bytes.
  EXPECT_FALSE(c.recv_some(64, std::chrono::milliseconds(100)).has_value());
  c.send_all("PY");
  EXPECT_TRUE(error_then_close(c, kBadPreface));
  expect_server_still_serves(server);
}

TEST(Abuse, HelloWithUnsupportedVersionRangeIsRefused) {
  TestServer server;
  {
    SocketClient c(server.url());
    c.send_all(preface_and_hello_range(2, 3));
    EXPECT_TRUE(error_then_close(c, kVersionUnsupported));
  }
  {
    SocketClient c(server.url());
    c.send_all(preface_and_hello_range(1, 0));  // empty range
    EXPECT_TRUE(error_then_close(c, kVersionUnsupported));
  }
  {
    // A range that includes 1 is fine and the server picks 1.
    SocketClient c(server.url());
    c.send_all(preface_and_hello_range(0, 7));
    const RawFrame f = read_frame(c);
    ASSERT_EQ(f.type, msg::welcome);
    const auto w = parse_welcome(f.payload);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->version, 1);
  }
  expect_server_still_serves(server);
}

TEST(Abuse, FrameWithNonZeroFlagsIsBadFrame) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(frame_with_flags(msg::upper_request, 0x01, "flagged"));
  EXPECT_TRUE(error_then_close(c, kBadFrame));
  expect_server_still_serves(server);
}

TEST(Abuse, UnknownMessageTypeIsUnknownMessage) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(frame(0x7f, "who knows"));
  EXPECT_TRUE(error_then_close(c, kUnknownMessage));
  expect_server_still_serves(server);
}

TEST(Abuse, UpperRequestBeforeHelloIsUnexpected) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all(std::string("\0DPX", 4) + frame(msg::upper_request, "too early"));
  EXPECT_TRUE(error_then_close(c, kUnexpectedMessage));
  expect_server_still_serves(server);
}

TEST(Abuse, SecondHelloIsUnexpected) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(preface_and_hello().substr(4));  // HELLO again, without the preface
  EXPECT_TRUE(error_then_close(c, kUnexpectedMessage));
  expect_server_still_serves(server);
}

TEST(Abuse, TruncatedFrameThenHalfCloseIsBadFrameThenClose) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(frame_header(msg::upper_request, 100) + "ten bytes.");
  c.shutdown_write();
  EXPECT_TRUE(error_then_close(c, kBadFrame));
  expect_server_still_serves(server);
}

TEST(Abuse, TruncatedHeaderThenHalfCloseIsBadFrameThenClose) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(frame_header(msg::upper_request, 5).substr(0, 3));
  c.shutdown_write();
  EXPECT_TRUE(error_then_close(c, kBadFrame));
  expect_server_still_serves(server);
}

TEST(Abuse, FramedHalfCloseAfterRequestsGetsAllRepliesThenClose) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all(preface_and_hello() + frame(msg::upper_request, "one") +
             frame(msg::upper_request, "two"));
  c.shutdown_write();
  EXPECT_EQ(read_frame(c).type, msg::welcome);
  EXPECT_EQ(read_frame(c).payload, "ONE");
  EXPECT_EQ(read_frame(c).payload, "TWO");
  EXPECT_EQ(c.recv_until_eof(), "");
  expect_server_still_serves(server);
}

TEST(Abuse, RawHalfCloseIsAnsweredBeforeClose) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all("abc");
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "ABC");
  expect_server_still_serves(server);
}

TEST(Abuse, SlowRawClientOneByteAtATime) {
  TestServer server;
  std::string message = "slow and steady, ünïcödé too: ";
  while (message.size() < 200)
    message += "the quick brown fox ";
  message.resize(200);
  SocketClient c(server.url());
  for (char ch : message) {
    c.send_all(std::string_view(&ch, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pacing, not synchronisation
  }
  EXPECT_EQ(c.recv_exact(message.size()), ascii_upper(message));
  expect_server_still_serves(server);
}

// One abusive connection of kind `k`; never waits for the server except where noted.
void abuse_once(const std::string& url, int k, std::uint64_t seed) {
  SocketClient c(url);
  switch (k % 8) {
    case 0:
      c.send_all("half a message");
      c.reset();
      break;
    case 1:
      c.send_all(preface_and_hello() + frame_header(msg::upper_request, 1000) + "partial");
      c.reset();
      break;
    case 2: {
      std::string g = random_bytes(2048, seed);
      g[0] = 'g';
      c.send_all(g);
      c.close();  // the reply goes to a closed socket
      break;
    }
    case 3:
      c.send_all(std::string("\0XYZ", 4));
      c.close();
      break;
    case 4:
      c.send_all(std::string("\0DPX", 4) + random_bytes(256, seed));
      c.shutdown_write();
      c.wait_closed(std::chrono::seconds(5));
      break;
    case 5:
      c.send_all(preface_and_hello() + frame_header(msg::upper_request, 50) + "short");
      c.shutdown_write();
      c.wait_closed(std::chrono::seconds(5));
      break;
    case 6:
      c.close();  // connect and leave without a word
      break;
    default:
      c.send_all(std::string(32 * 1024, 'z'));
      c.reset();
      break;
  }
}

TEST(Abuse, FdsAndMemoryReturnToBaselineAfterThousandAbusiveConnections) {
  // Under AddressSanitizer freed memory waits in a quarantine (up to 256 MiB) before reuse,
  // which would read as growth here; without it the sanitizer still checks every access.
  // (No effect on an uninstrumented server.)
  const ScopedEnv asan(
      "ASAN_OPTIONS",
      with_sanitizer_options("ASAN_OPTIONS",
                             "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"));
  TestServer server({"--threads", "2"});
  const pid_t pid = server.pid();

  // Warm up: buffers, pools and lazily created state exist before the baseline is taken.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(serves_raw(server.url()));
    ASSERT_TRUE(serves_framed(server.url()));
    abuse_once(server.url(), i, static_cast<std::uint64_t>(i));
  }
  // Baseline: every client connection closed on the server's side too (only the listener left).
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1; }))
      << "sockets after warm-up: " << socket_fd_count(pid);
  const int fds_baseline = fd_count(pid);
  const long rss_baseline = rss_kib(pid);
  ASSERT_GT(rss_baseline, 0);

  constexpr int kThreads = 4, kEach = 250;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kEach; ++i)
          abuse_once(server.url(), i + t, static_cast<std::uint64_t>(t * kEach + i));
      } catch (const std::exception& e) {
        failures[static_cast<std::size_t>(t)] = e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& f : failures)
    EXPECT_EQ(f, "");

  // Sockets (what sessions own) must return to exactly the listener. The total must not grow;
  // it may shrink: a sanitizer runtime can hold a transient fd of its own at baseline time
  // (seen once under ASan: 20 at baseline, 19 after, with the single listener socket both times).
  EXPECT_TRUE(eventually([&] { return socket_fd_count(pid) == 1 && fd_count(pid) <= fds_baseline; },
                         std::chrono::seconds(10)))
      << "fds: " << fd_count(pid) << " (" << socket_fd_count(pid) << " sockets), baseline "
      << fds_baseline;
  // ThreadSanitizer keeps 4 bytes of shadow per byte of application memory and releases freed
  // memory to the system lazily: the same server reads 4x larger there (seen: 9-12 MiB of
  // growth with the pre-seams server too), so the bound scales with the shadow.
#if defined(__SANITIZE_THREAD__)
  constexpr long kGrowthKib = 4 * 8 * 1024;
#else
  constexpr long kGrowthKib = 8 * 1024;
#endif
  const long rss_after = rss_kib(pid);
  EXPECT_LE(rss_after, rss_baseline + kGrowthKib)
      << "RSS grew from " << rss_baseline << " KiB to " << rss_after << " KiB";
  expect_server_still_serves(server);
}

}  // namespace
}  // namespace duplex::test
