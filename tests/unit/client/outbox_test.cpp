// Tests for client/outbox.hpp over an in-memory stream: control frames go ahead of queued stdin
// and never wait; data keeps its order; a dead connection never blocks a sender.
#include "duplex/client/outbox.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "duplex/net/memory_stream.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;

Bytes data_frame(char c, std::size_t n) {
  const std::string payload(n, c);
  Bytes f;
  wire::encode_frame(wire::MsgType::stdin_data, as_bytes(payload), f);
  return f;
}

Bytes signal_frame(int signo) {
  Bytes f;
  wire::encode(wire::Signal{signo}, f);
  return f;
}

Bytes window_frame(std::uint16_t rows) {
  Bytes f;
  wire::encode(wire::WindowSize{rows, 80}, f);
  return f;
}

// One frame as the test names it: "d:x" (STDIN_DATA of 'x's), "s:10" (SIGNAL 10), "w:30" (rows).
std::string describe(wire::MsgType t, ByteView payload) {
  switch (t) {
    case wire::MsgType::stdin_data: return "d:" + std::string(1, static_cast<char>(payload[0]));
    case wire::MsgType::signal: return "s:" + std::to_string(wire::decode_signal(payload)->signo);
    case wire::MsgType::window_size:
      return "w:" + std::to_string(wire::decode_window_size(payload)->rows);
    default: return "?";
  }
}

// Reads `count` frames from `in`, named as above.
awaitable<std::vector<std::string>> read_frames(net::Stream& in, std::size_t count) {
  std::vector<std::string> seen;
  Bytes buf;
  while (seen.size() < count) {
    auto d = wire::decode_frame(buf, 1u << 24);
    if (d.status == wire::DecodeStatus::frame) {
      seen.push_back(describe(d.type, d.payload));
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(d.consumed));
      continue;
    }
    std::array<std::byte, 4096> chunk;
    auto [ec, n] = co_await in.read_some(asio::buffer(chunk));
    if (ec) break;
    buf.insert(buf.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
  co_return seen;
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

TEST(Outbox, ControlFramesGoAheadOfQueuedDataAndTheLastWindowSizeWins) {
  asio::io_context ctx(1);
  auto pair = net::make_memory_pair(ctx.get_executor());
  Outbox out(ctx.get_executor(), 4);
  std::vector<std::string> seen;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        co_await out.send_data(data_frame('a', 10));
        co_await out.send_data(data_frame('b', 10));
        co_await out.send_data(data_frame('c', 10));
        EXPECT_TRUE(out.send_signal(signal_frame(2)));
        out.send_window_size(window_frame(30));
        out.send_window_size(window_frame(31));  // replaces 30, still queued
        EXPECT_TRUE(out.send_signal(signal_frame(3)));
        // The writer starts only now, with everything queued.
        auto r = co_await (out.run(*pair.a) || read_frames(*pair.b, 6));
        seen = std::get<1>(std::move(r));
      },
      rethrow);
  ctx.run();
  EXPECT_EQ(seen, (std::vector<std::string>{"s:2", "s:3", "w:31", "d:a", "d:b", "d:c"}));
}

TEST(Outbox, SignalOvertakesDataQueuedBehindABlockedWrite) {
  asio::io_context ctx(1);
  // Room for 100 bytes: the first 64 KiB frame blocks the writer half-way.
  auto pair = net::make_memory_pair(ctx.get_executor(), {}, {}, 100);
  Outbox out(ctx.get_executor(), 3);
  std::vector<std::string> seen;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        auto writer = [&]() -> awaitable<void> { co_await out.run(*pair.a); };
        auto producer = [&]() -> awaitable<std::vector<std::string>> {
          for (char c : std::string("abcd"))  // a is being written, b c d wait in the lane
            co_await out.send_data(data_frame(c, 64 * 1024));
          // The data lane is full and the writer is stuck: queuing a signal does not wait.
          EXPECT_TRUE(out.send_signal(signal_frame(2)));
          co_return co_await read_frames(*pair.b, 5);
        };
        auto r = co_await (writer() || producer());
        seen = std::get<1>(std::move(r));
      },
      rethrow);
  ctx.run();
  EXPECT_EQ(seen, (std::vector<std::string>{"d:a", "s:2", "d:b", "d:c", "d:d"}));
}

TEST(Outbox, AnIdleWriterIsWokenByASignal) {
  asio::io_context ctx(1);
  auto pair = net::make_memory_pair(ctx.get_executor());
  Outbox out(ctx.get_executor(), 4);
  std::vector<std::string> seen;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        auto reader = [&]() -> awaitable<std::vector<std::string>> {
          // The writer already waits on the empty data lane when this runs.
          co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          out.send_signal(signal_frame(15));
          co_await out.send_data(data_frame('z', 1));
          co_return co_await read_frames(*pair.b, 2);
        };
        auto r = co_await (out.run(*pair.a) || reader());
        seen = std::get<1>(std::move(r));
      },
      rethrow);
  ctx.run();
  EXPECT_EQ(seen, (std::vector<std::string>{"s:15", "d:z"}));
}

TEST(Outbox, SignalsBeyondTheLimitAreDropped) {
  asio::io_context ctx(1);
  Outbox out(ctx.get_executor(), 1);
  for (std::size_t i = 0; i < Outbox::kMaxSignals; ++i)
    EXPECT_TRUE(out.send_signal(signal_frame(10)));
  EXPECT_FALSE(out.send_signal(signal_frame(10)));
}

TEST(Outbox, ADeadConnectionNeverBlocksASender) {
  asio::io_context ctx(1);
  auto pair = net::make_memory_pair(ctx.get_executor(), {}, {}, 100);
  Outbox out(ctx.get_executor(), 2);
  int sent = 0;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        pair.b->close();  // the server is gone: every write fails
        auto producer = [&]() -> awaitable<void> {
          for (; sent < 50; ++sent)
            co_await out.send_data(data_frame('x', 1000));
        };
        co_await (out.run(*pair.a) || producer());
      },
      rethrow);
  ctx.run();
  EXPECT_EQ(sent, 50);
}

}  // namespace
}  // namespace duplex::client
