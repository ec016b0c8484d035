// Exchange over an in-memory stream: raw replies in pieces, framed replies, and every way a reply
// can be wrong.
#include "duplex/loadgen/exchange.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "duplex/net/memory_stream.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::loadgen {
namespace {

using Server = std::function<awaitable<void>(net::Stream&, std::size_t request_size)>;

// Runs one exchange of `m` against `server` (which reads the request itself) and returns it.
Outcome exchange_with(const Message& m, Server server, std::string* detail = nullptr) {
  asio::io_context ctx;
  auto pair = net::make_memory_pair(ctx.get_executor());
  Outcome out = Outcome::aborted;
  Exchanger ex;
  asio::co_spawn(ctx, server(*pair.b, m.request.size()), asio::detached);
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        out = co_await ex.run(*pair.a, m);
        if (detail) *detail = ex.detail();
      },
      asio::detached);
  ctx.run();
  return out;
}

awaitable<std::string> read_n(net::Stream& s, std::size_t n) {
  std::string got(n, '\0');
  std::size_t have = 0;
  while (have < n) {
    auto [ec, k] = co_await s.read_some(asio::buffer(got.data() + have, n - have));
    if (ec) co_return got.substr(0, have);
    have += k;
  }
  co_return got;
}

awaitable<void> send(net::Stream& s, std::string_view bytes) {
  co_await s.write(asio::buffer(bytes.data(), bytes.size()));
}

TEST(Exchange, RawReplyInPiecesIsWholeAndVerified) {
  const auto m = make_message(100, 1, Verify::upper, false);
  EXPECT_EQ(m.request.size(), 100u);
  auto server = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    const auto req = co_await read_n(s, n);
    const auto up = upper_of(req);
    co_await send(s, std::string_view(up).substr(0, 1));
    co_await send(s, std::string_view(up).substr(1, 60));
    co_await send(s, std::string_view(up).substr(61));
  };
  EXPECT_EQ(exchange_with(m, server), Outcome::ok);
}

TEST(Exchange, RawEchoFailsUpperVerification) {
  const auto m = make_message(64, 2, Verify::upper, false);
  auto echo = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    co_await send(s, co_await read_n(s, n));
  };
  std::string detail;
  EXPECT_EQ(exchange_with(m, echo, &detail), Outcome::verify);
  EXPECT_NE(detail.find("expected"), std::string::npos);
  const auto e = make_message(64, 2, Verify::echo, false);
  EXPECT_EQ(exchange_with(e, echo), Outcome::ok);
  const auto none = make_message(64, 2, Verify::none, false);
  EXPECT_EQ(exchange_with(none, echo), Outcome::ok);
}

TEST(Exchange, ServerThatClosesIsLost) {
  const auto m = make_message(64, 3, Verify::upper, false);
  auto closer = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    auto req = co_await read_n(s, n);
    co_await send(s, std::string_view(req).substr(0, 10));
    co_await s.shutdown_send();
  };
  std::string detail;
  EXPECT_EQ(exchange_with(m, closer, &detail), Outcome::lost);
  EXPECT_EQ(detail, "the server closed the connection");
}

awaitable<void> frame_reply(net::Stream& s, wire::MsgType t, std::string_view payload) {
  Bytes f;
  wire::encode_frame(t, as_bytes(payload), f);
  co_await s.write(asio::buffer(f));
}

TEST(Exchange, FramedUpperRequestGetsItsReply) {
  const auto m = make_message(32, 4, Verify::upper, true);
  ASSERT_EQ(m.request.size(), wire::kHeaderSize + 32);
  EXPECT_EQ(static_cast<wire::MsgType>(m.request[4]), wire::MsgType::upper_request);
  auto server = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    const auto req = co_await read_n(s, n);
    co_await frame_reply(s, wire::MsgType::upper_reply, upper_of(req.substr(wire::kHeaderSize)));
  };
  EXPECT_EQ(exchange_with(m, server), Outcome::ok);
}

TEST(Exchange, FramedEchoIsPingAndPong) {
  const auto m = make_message(32, 5, Verify::echo, true);
  EXPECT_EQ(static_cast<wire::MsgType>(m.request[4]), wire::MsgType::ping);
  auto server = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    const auto req = co_await read_n(s, n);
    co_await frame_reply(s, wire::MsgType::pong, req.substr(wire::kHeaderSize));
  };
  EXPECT_EQ(exchange_with(m, server), Outcome::ok);
}

TEST(Exchange, FramedWrongTypeLengthOrErrorIsProtocol) {
  const auto m = make_message(32, 6, Verify::upper, true);
  auto wrong_type = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    const auto req = co_await read_n(s, n);
    co_await frame_reply(s, wire::MsgType::pong, upper_of(req.substr(wire::kHeaderSize)));
  };
  EXPECT_EQ(exchange_with(m, wrong_type), Outcome::protocol);
  auto short_reply = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    co_await read_n(s, n);
    co_await frame_reply(s, wire::MsgType::upper_reply, "ABC");
  };
  EXPECT_EQ(exchange_with(m, short_reply), Outcome::protocol);
  auto error = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    co_await read_n(s, n);
    Bytes f;
    wire::encode(wire::Error{36, "slow down"}, f);
    co_await s.write(asio::buffer(f));
  };
  std::string detail;
  EXPECT_EQ(exchange_with(m, error, &detail), Outcome::protocol);
  EXPECT_NE(detail.find("slow down"), std::string::npos) << detail;
  auto bad_bytes = [](net::Stream& s, std::size_t n) -> awaitable<void> {
    const auto req = co_await read_n(s, n);
    co_await frame_reply(s, wire::MsgType::upper_reply, req.substr(wire::kHeaderSize));
  };
  EXPECT_EQ(exchange_with(m, bad_bytes), Outcome::verify);
}

TEST(Exchange, CancelledWaitIsAborted) {
  const auto m = make_message(16, 7, Verify::upper, false);
  asio::io_context ctx;
  auto pair = net::make_memory_pair(ctx.get_executor());
  Exchanger ex;
  Outcome out = Outcome::ok;
  bool finished = false;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        out = co_await ex.run(*pair.a, m);
        finished = true;
      },
      asio::detached);
  // The server never answers: the exchange waits until it is cancelled. A cancel only ends
  // operations already started, so it is repeated each turn of the loop until one lands.
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        while (!finished) {
          pair.a->cancel();
          co_await asio::post(ctx, asio::use_awaitable);
        }
      },
      asio::detached);
  ctx.run();
  EXPECT_EQ(out, Outcome::aborted);
}

}  // namespace
}  // namespace duplex::loadgen
