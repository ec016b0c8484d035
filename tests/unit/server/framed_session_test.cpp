// The framed session over net::make_memory_pair: preface, HELLO, routing to services, protocol
// breaches (answer-then-drop), idle timeout, byte counts. No sockets, no processes.
#include "duplex/server/framed_session.hpp"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "duplex/net/memory_stream.hpp"
#include "duplex/server/outbox.hpp"
#include "duplex/server/session.hpp"
#include "support/exec_frames.hpp"
#include "support/frames.hpp"

namespace duplex::server {
namespace {

using test::frame;
using test::RawFrame;
namespace msg = test::msg;
using namespace std::chrono_literals;

// The first chunk as the session hands it over: `n` bytes at the start of a pooled buffer.
Chunk first_chunk(PooledBuffer buf, std::size_t n) {
  Chunk c{std::move(buf), {}};
  c.bytes = std::span(c.pooled.data(), n);
  return c;
}

constexpr std::uint16_t kBadPreface = 10, kFrameTooLarge = 11, kBadFrame = 12, kUnknown = 13,
                        kBadMessage = 14, kUnexpected = 15, kVersion = 16, kIdle = 31,
                        kDisabled = 33, kAuthRequired = 35;

// The client's end: whole frames in, whole frames out, as coroutines on the test's io_context.
class Client {
 public:
  explicit Client(net::Stream& s) : s_(s) {}

  awaitable<void> send(std::string bytes) {
    auto [ec, n] = co_await s_.write(asio::buffer(bytes));
    if (ec) throw std::runtime_error("client write failed: " + ec.message());
  }

  /// The next frame; nullopt when the server closed at a frame boundary.
  awaitable<std::optional<RawFrame>> next() {
    for (;;) {
      if (buf_.size() >= 6) {
        const std::size_t n = test::get_be32(buf_, 0);
        if (buf_.size() >= 6 + n) {
          RawFrame f{static_cast<std::uint8_t>(buf_[4]), static_cast<std::uint8_t>(buf_[5]),
                     buf_.substr(6, n)};
          buf_.erase(0, 6 + n);
          co_return f;
        }
      }
      char tmp[4096];
      auto [ec, n] = co_await s_.read_some(asio::buffer(tmp));
      if (ec) {
        if (!buf_.empty()) throw std::runtime_error("the server closed inside a frame");
        co_return std::nullopt;
      }
      buf_.append(tmp, n);
    }
  }

  /// The next frame, which must be there.
  awaitable<RawFrame> expect() {
    auto f = co_await next();
    if (!f) throw std::runtime_error("the server closed; a frame was expected");
    co_return *f;
  }

 private:
  net::Stream& s_;
  std::string buf_;
};

::testing::AssertionResult is_error(const RawFrame& f, std::uint16_t code,
                                    std::string_view text_part = {}) {
  if (f.type != msg::error)
    return ::testing::AssertionFailure() << "frame type " << int(f.type) << ", not ERROR";
  auto e = test::parse_error(f.payload);
  if (!e) return ::testing::AssertionFailure() << "malformed ERROR payload";
  if (e->code != code)
    return ::testing::AssertionFailure()
           << "ERROR " << e->code << " (" << e->text << "), not " << code;
  if (e->text.find(text_part) == std::string::npos)
    return ::testing::AssertionFailure()
           << "ERROR text '" << e->text << "' lacks '" << text_part << "'";
  return ::testing::AssertionSuccess();
}

class FramedSession : public ::testing::Test {
 protected:
  FramedSession() {
    worker_.ctx = &io_;
    state_.agent = "duplex-test";
  }

  // Opens a connection: the session runs on the server's end (as run_session would serve an
  // accepted socket), the test drives the other end.
  void open(net::Peer client_as_seen = {}) {
    auto pair = net::make_memory_pair(io_.get_executor(), {}, std::move(client_as_seen));
    client_stream_ = std::move(pair.a);
    client_.emplace(*client_stream_);
    state_.live = 1;
    asio::co_spawn(io_, run_session(std::move(pair.b), state_, worker_, listener_),
                   [this](std::exception_ptr e) {
                     session_ended_ = true;
                     if (e) session_error_ = e;
                   });
  }

  // Runs the client's part and the session until both have ended (or 10 s passed).
  void run(std::function<awaitable<void>()> body) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      done = true;
      failure = e;
    });
    io_.restart();  // a loop that ran out of work stays stopped until restarted
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(done && session_ended_) && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(100ms);
    ASSERT_TRUE(done) << "the client's part did not finish";
    if (failure) std::rethrow_exception(failure);
    ASSERT_TRUE(session_ended_) << "the session did not end";
    if (session_error_) std::rethrow_exception(session_error_);
  }

  Client& client() { return *client_; }

  asio::io_context io_;
  ServerState state_;
  Worker worker_;
  server::ListenerTraits listener_{.tls_only = false, .loopback = true, .url = nullptr};
  std::unique_ptr<net::MemoryStream> client_stream_;
  std::optional<Client> client_;
  bool session_ended_ = false;
  std::exception_ptr session_error_;
};

TEST_F(FramedSession, HelloIsAnsweredWithWelcome) {
  state_.settings.update([](Settings& s) { s.limits.max_frame = 4096; });
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello());
    const auto f = co_await client().expect();
    EXPECT_EQ(f.type, msg::welcome);
    const auto w = test::parse_welcome(f.payload);
    EXPECT_TRUE(w);
    if (w) {
      EXPECT_EQ(w->version, 1);
      EXPECT_EQ(w->max_frame, 4096u);
      EXPECT_EQ(w->agent, "duplex-test");
    }
    co_await client_stream_->shutdown_send();
    EXPECT_FALSE(co_await client().next()) << "EOF after the client's EOF";
  });
  EXPECT_EQ(state_.protocol_errors.load(), 0u);
}

TEST_F(FramedSession, PrefaceArrivingByteByByteIsAccepted) {
  open();
  run([&]() -> awaitable<void> {
    for (char c : test::preface_and_hello())
      co_await client().send(std::string(1, c));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    client_stream_->close();
  });
}

TEST_F(FramedSession, BadPrefaceIsAnsweredThenDropped) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(std::string("\0DPY", 4) + "more");
    EXPECT_TRUE(is_error(co_await client().expect(), kBadPreface));
    EXPECT_FALSE(co_await client().next()) << "the server closes after ERROR";
  });
  EXPECT_EQ(state_.protocol_errors.load(), 1u);
}

TEST_F(FramedSession, VersionOutsideTheServersIsRefused) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello_range(2, 3));
    EXPECT_TRUE(is_error(co_await client().expect(), kVersion, "version 1"));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, FirstFrameMustBeHello) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(std::string("\0DPX", 4) + frame(msg::upper_request, "abc"));
    EXPECT_TRUE(is_error(co_await client().expect(), kUnexpected, "first frame must be HELLO"));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, UpperRepliesInOrderAndAnEmptyRequestGetsAnEmptyReply) {
  open();
  run([&]() -> awaitable<void> {
    // Pipelined in one write: the empty one must neither end nor skip anything.
    co_await client().send(test::preface_and_hello() + frame(msg::upper_request, "abc") +
                           frame(msg::upper_request, "") +
                           frame(msg::upper_request, "xY\xc3\xa9z"));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    for (std::string want : {"ABC", "", "XY\xc3\xa9Z"}) {
      const auto f = co_await client().expect();
      EXPECT_EQ(f.type, msg::upper_reply);
      EXPECT_EQ(f.payload, want);
    }
    co_await client_stream_->shutdown_send();
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, PingIsAnsweredWithPongAndTheSamePayload) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(msg::ping, std::string("\0\1x", 3)) +
                           frame(msg::ping, ""));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    auto a = co_await client().expect();
    EXPECT_EQ(a.type, msg::pong);
    EXPECT_EQ(a.payload, std::string("\0\1x", 3));
    auto b = co_await client().expect();
    EXPECT_EQ(b.type, msg::pong);
    EXPECT_EQ(b.payload, "");
    client_stream_->close();
  });
}

TEST_F(FramedSession, UnknownTypeIsRefused) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(0x7f, "?"));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kUnknown, "0x7f"));
    EXPECT_FALSE(co_await client().next());
  });
  EXPECT_EQ(state_.protocol_errors.load(), 1u);
}

TEST_F(FramedSession, ServerMessagesAndASecondHelloAreUnexpected) {
  for (auto [type, name] : {std::pair<std::uint8_t, const char*>{msg::welcome, "welcome"},
                            {msg::hello, "hello"},
                            {msg::exit, "exit"}}) {
    SCOPED_TRACE(name);
    session_ended_ = false;
    open();
    run([&]() -> awaitable<void> {
      co_await client().send(test::preface_and_hello() + frame(type, ""));
      EXPECT_EQ((co_await client().expect()).type, msg::welcome);
      EXPECT_TRUE(is_error(co_await client().expect(), kUnexpected, name));
      EXPECT_FALSE(co_await client().next());
    });
  }
}

TEST_F(FramedSession, FrameAboveTheLimitIsRefusedBeforeItsPayloadArrives) {
  state_.settings.update([](Settings& s) { s.limits.max_frame = 1024; });
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() +
                           test::frame_header(msg::upper_request, 1025));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kFrameTooLarge));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, ReservedFlagsAreABadFrame) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() +
                           test::frame_with_flags(msg::upper_request, 0x80, "a"));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kBadFrame));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, ConnectionClosedInsideAFrameIsABadFrame) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + test::frame_header(msg::upper_request, 10) +
                           "abc");
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    co_await client_stream_->shutdown_send();
    EXPECT_TRUE(is_error(co_await client().expect(), kBadFrame, "in the middle of a frame"));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, ExecMessagesOnAServerWithoutExecAreRefused) {
  open();
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + test::auth_frame("t"));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kDisabled, "--exec"));
    EXPECT_FALSE(co_await client().next());
  });
}

// Stands in for the server's document: counts its calls, answers with a fixed text.
class FakeStats final : public services::StatsSource {
 public:
  awaitable<std::string> document(std::size_t max_bytes) override {
    ++calls;
    asked = max_bytes;
    co_return std::string(R"({"connections":[],"counters":{}})");
  }
  int calls = 0;
  std::size_t asked = 0;
};

TEST_F(FramedSession, StatsAreRefusedToAClientNothingIdentifies) {
  FakeStats stats;
  state_.stats = &stats;
  open();  // an upper-only client: no AUTH, no uid
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(msg::upper_request, "x") +
                           frame(0x30, ""));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_EQ((co_await client().expect()).payload, "X");
    EXPECT_TRUE(is_error(co_await client().expect(), kAuthRequired, "stats need authentication"));
    EXPECT_FALSE(co_await client().next());
  });
  EXPECT_EQ(stats.calls, 0) << "nothing was gathered for a refused client";
}

TEST_F(FramedSession, StatsAreServedToTheOwnersUidOnAUnixSocket) {
  FakeStats stats;
  state_.stats = &stats;
  state_.settings.update([](Settings& s) { s.limits.max_frame = 4096; });
  net::Peer owner;
  owner.uid = ::geteuid();
  open(owner);
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(0x30, ""));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    const auto reply = co_await client().expect();
    EXPECT_EQ(reply.type, 0x31);
    EXPECT_EQ(reply.payload, R"({"connections":[],"counters":{}})");
    client_stream_->close();
  });
  EXPECT_EQ(stats.calls, 1);
  EXPECT_EQ(stats.asked, 4096u) << "the document is bounded by the frame limit";
}

TEST_F(FramedSession, AStatsRequestWithAPayloadIsMalformed) {
  FakeStats stats;
  state_.stats = &stats;
  net::Peer owner;
  owner.uid = ::geteuid();
  open(owner);
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(0x30, "x"));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kBadMessage, "STATS_REQUEST"));
    EXPECT_FALSE(co_await client().next());
  });
  EXPECT_EQ(stats.calls, 0);
}

TEST_F(FramedSession, StatsOnAServerWithoutAStatsSourceAreDisabled) {
  net::Peer owner;
  owner.uid = ::geteuid();
  open(owner);
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() + frame(0x30, ""));
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    EXPECT_TRUE(is_error(co_await client().expect(), kDisabled, "stats"));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, IdleTimeoutTellsTheClientOnceAndIsNoProtocolError) {
  open();
  asio::co_spawn(io_, worker_.idle_sweep(200ms, 0ms), asio::detached);
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello());
    EXPECT_EQ((co_await client().expect()).type, msg::welcome);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(is_error(co_await client().expect(), kIdle));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
    EXPECT_FALSE(co_await client().next()) << "one ERROR, then the close";
  });
  EXPECT_EQ(state_.protocol_errors.load(), 0u) << "an idle client broke no rule";
}

TEST_F(FramedSession, BytesWrittenAreCounted) {
  // serve_framed directly, so that the test owns the SessionEntry it fills in.
  auto pair = net::make_memory_pair(io_.get_executor());
  Client c(*pair.a);
  SessionEntry entry;
  entry.settings = state_.settings.get();
  const std::string first = test::preface_and_hello();
  PooledBuffer buf(state_.settings.get()->limits.read_chunk);
  std::memcpy(buf.data(), first.data(), first.size());
  bool ended = false;
  WaitBuffer wait;
  asio::co_spawn(
      io_, serve_framed(*pair.b, state_, entry, first_chunk(std::move(buf), first.size()), wait),
      [&](std::exception_ptr) { ended = true; });
  std::size_t received = 0;
  bool done = false;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        co_await c.send(frame(msg::upper_request, std::string(5000, 'a')));
        co_await pair.a->shutdown_send();
        while (auto f = co_await c.next())
          received += 6 + f->payload.size();
      },
      [&](std::exception_ptr) { done = true; });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!(done && ended) && std::chrono::steady_clock::now() < deadline)
    io_.run_one_for(100ms);
  ASSERT_TRUE(done && ended);
  EXPECT_EQ(received, (6 + 2 + 4 + 4 + 11) + (6 + 5000u)) << "WELCOME and the reply";
  EXPECT_EQ(entry.bytes_out, received);
}

TEST_F(FramedSession, BeforeAuthenticationTheSmallFrameLimitAppliesAndIsNamed) {
  state_.settings.update([](Settings& s) {
    s.limits.max_frame = 4096;
    s.limits.max_frame_unauthenticated = 100;
  });
  open();  // a peer with no uid: nothing vouches for it
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() +
                           frame(msg::upper_request, std::string(100, 'a')) +
                           test::frame_header(msg::upper_request, 101));
    const auto w = test::parse_welcome((co_await client().expect()).payload);
    EXPECT_TRUE(w && w->max_frame == 100u) << "WELCOME says the limit in force";
    EXPECT_EQ((co_await client().expect()).payload, std::string(100, 'A'));
    EXPECT_TRUE(is_error(co_await client().expect(), kFrameTooLarge,
                         "frame of 101 bytes is over the limit of 100 before authentication"));
    EXPECT_FALSE(co_await client().next());
  });
}

TEST_F(FramedSession, TheServersOwnUidOnAUnixSocketHasTheFullLimit) {
  state_.settings.update([](Settings& s) {
    s.limits.max_frame = 4096;
    s.limits.max_frame_unauthenticated = 100;
  });
  net::Peer owner;
  owner.uid = ::geteuid();
  open(owner);
  run([&]() -> awaitable<void> {
    co_await client().send(test::preface_and_hello() +
                           frame(msg::upper_request, std::string(4096, 'a')));
    const auto w = test::parse_welcome((co_await client().expect()).payload);
    EXPECT_TRUE(w && w->max_frame == 4096u);
    EXPECT_EQ((co_await client().expect()).payload, std::string(4096, 'A'));
    client_stream_->close();
  });
}

TEST_F(FramedSession, TheAuthDeadlineRunsFromAcceptUntilWelcome) {
  state_.settings.update([](Settings& s) { s.limits.auth_deadline = 10s; });
  auto pair = net::make_memory_pair(io_.get_executor());
  Client c(*pair.a);
  SessionEntry entry;
  entry.settings = state_.settings.get();
  entry.started = std::chrono::steady_clock::now() - 1s;
  entry.pending = false;  // not counted anywhere: settle() must stay a no-op
  const std::string preface("\0DPX", 4);
  PooledBuffer buf(state_.settings.get()->limits.read_chunk);
  std::memcpy(buf.data(), preface.data(), preface.size());
  bool ended = false;
  WaitBuffer wait;
  asio::co_spawn(
      io_, serve_framed(*pair.b, state_, entry, first_chunk(std::move(buf), preface.size()), wait),
      [&](std::exception_ptr) { ended = true; });
  io_.poll();
  EXPECT_EQ(entry.deadline, entry.started + 10s) << "the preface started the HELLO phase";
  bool done = false;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        co_await c.send(test::preface_and_hello().substr(4));
        EXPECT_EQ((co_await c.expect()).type, msg::welcome);
        EXPECT_EQ(entry.deadline, std::chrono::steady_clock::time_point::max())
            << "WELCOME ends the HELLO phase";
        pair.a->close();
      },
      [&](std::exception_ptr) { done = true; });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!(done && ended) && std::chrono::steady_clock::now() < deadline)
    io_.run_one_for(100ms);
  EXPECT_TRUE(done && ended);
}

TEST(Outbox, ProducersWaitWhileTheQueuedBytesAreAtTheBound) {
  asio::io_context io;
  Outbox out(io.get_executor(), 64, 1000);
  int sent = 0, refused = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        for (int i = 0; i < 4; ++i) {
          if (co_await out.send(wire::MsgType::upper_reply, services::Payload(600)))
            ++sent;
          else
            ++refused;
        }
      },
      asio::detached);
  io.poll();
  // 606 queued (< 1000): the second goes in too (one frame may pass the bound); the third waits.
  EXPECT_EQ(sent, 2);
  out.abort();  // wakes the waiting producer: the writer is gone
  io.poll();
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(refused, 2);
}

}  // namespace
}  // namespace duplex::server
