// Many clients at once, each with its own messages, while one client sits connected and silent:
// the seed's server (one client at a time) would block everyone behind the silent one.
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr int kClients = 200;
constexpr int kRoundTrips = 5;

// Distinct for every (client, round): an id, UTF-8 text, and a length that varies from a few
// bytes to a few kilobytes so that some messages span several reads.
std::string message_for(int client, int round) {
  std::string m =
      fmt::format("client {:03} round {}: héllo wörld — 你好, ça va? ✓ ", client, round);
  const auto extra = static_cast<std::size_t>((client * 37 + round * 101) % 5000);
  for (std::size_t k = 0; k < extra; ++k)
    m.push_back(static_cast<char>('a' + (k + static_cast<std::size_t>(client)) % 26));
  return m;
}

// The silent client: connected before everyone, never sends, still open at the end.
void expect_still_open_and_silent(SocketClient& silent) {
  const auto pending = silent.recv_some(16, std::chrono::milliseconds(0));
  EXPECT_FALSE(pending.has_value()) << "the silent client was sent something or closed";
}

TEST(Concurrency, TwoHundredRawClientsWhileOneSitsSilent) {
  TestServer server;
  SocketClient silent(server.url());

  std::vector<std::string> failures(kClients);
  std::latch all_connected(kClients);
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto& failure = failures[static_cast<std::size_t>(i)];
      bool arrived = false;
      try {
        SocketClient c(server.url());
        arrived = true;
        all_connected.arrive_and_wait();  // every client is connected before anyone talks
        for (int r = 0; r < kRoundTrips; ++r) {
          const std::string m = message_for(i, r);
          c.send_all(m);
          const std::string reply = c.recv_exact(m.size(), std::chrono::seconds(20));
          if (reply != ascii_upper(m)) {
            failure =
                fmt::format("client {} round {}: wrong reply of {} bytes", i, r, reply.size());
            return;
          }
        }
      } catch (const std::exception& e) {
        failure = fmt::format("client {}: {}", i, e.what());
        if (!arrived) all_connected.count_down();  // never leave the others waiting
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& f : failures)
    EXPECT_EQ(f, "");

  expect_still_open_and_silent(silent);
  // The silent client is a normal client too once it speaks.
  silent.send_all("finally, i speak");
  EXPECT_EQ(silent.recv_exact(16), "FINALLY, I SPEAK");
}

TEST(Concurrency, TwoHundredFramedClientsWhileOneSitsSilent) {
  TestServer server;
  SocketClient silent(server.url());
  // A second silent client that finished its handshake and then says nothing more.
  SocketClient silent_framed(server.url());
  ASSERT_TRUE(framed_handshake(silent_framed));

  std::vector<std::string> failures(kClients);
  std::latch all_ready(kClients);
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto& failure = failures[static_cast<std::size_t>(i)];
      bool arrived = false;
      try {
        SocketClient c(server.url());
        c.send_all(preface_and_hello(fmt::format("test-client-{}", i)));
        const RawFrame w = read_frame(c, std::chrono::seconds(20));
        const auto welcome = parse_welcome(w.payload);
        if (w.type != msg::welcome || !welcome || welcome->version != 1) {
          failure = fmt::format("client {}: no valid WELCOME (type {})", i, unsigned{w.type});
          all_ready.count_down();
          return;
        }
        arrived = true;
        all_ready.arrive_and_wait();
        for (int r = 0; r < kRoundTrips; ++r) {
          const std::string m = message_for(i, r);
          c.send_all(frame(msg::upper_request, m));
          const RawFrame reply = read_frame(c, std::chrono::seconds(20));
          if (reply.type != msg::upper_reply || reply.payload != ascii_upper(m)) {
            failure = fmt::format("client {} round {}: type {}, {} bytes", i, r,
                                  unsigned{reply.type}, reply.payload.size());
            return;
          }
        }
        // Pipelined: three requests in one write, three replies in request order.
        std::string batch;
        for (int r = 0; r < 3; ++r)
          batch += frame(msg::upper_request, message_for(i, 10 + r));
        c.send_all(batch);
        for (int r = 0; r < 3; ++r) {
          const RawFrame reply = read_frame(c, std::chrono::seconds(20));
          if (reply.type != msg::upper_reply ||
              reply.payload != ascii_upper(message_for(i, 10 + r))) {
            failure = fmt::format("client {} pipelined reply {} wrong or out of order", i, r);
            return;
          }
        }
      } catch (const std::exception& e) {
        failure = fmt::format("client {}: {}", i, e.what());
        if (!arrived) all_ready.count_down();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& f : failures)
    EXPECT_EQ(f, "");

  expect_still_open_and_silent(silent);
  expect_still_open_and_silent(silent_framed);
  silent_framed.send_all(frame(msg::upper_request, "last word"));
  const RawFrame r = read_frame(silent_framed);
  EXPECT_EQ(r.type, msg::upper_reply);
  EXPECT_EQ(r.payload, "LAST WORD");
}

}  // namespace
}  // namespace duplex::test
