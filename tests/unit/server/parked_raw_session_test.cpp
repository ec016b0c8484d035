// The parked raw loop (serve_raw_parked) over a real Unix socket pair: its replies and counters,
// and each way it ends (EOF, the idle sweep, the stop, a reset) leaving nothing registered.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "duplex/net/socket_stream.hpp"
#include "duplex/proc/unique_fd.hpp"
#include "duplex/server/raw_session.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {
namespace {

using namespace std::chrono_literals;

class ParkedRawSession : public ::testing::Test {
 protected:
  ParkedRawSession() { worker_.ctx = &io_; }

  // Starts the server's end parked after answering `first` (as serve_opening hands a raw
  // connection over); the test holds the other end as a plain descriptor.
  void start(const std::string& first) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_ = proc::UniqueFd(fds[0]);
    auto stream = std::make_unique<net::SocketStream>(
        net::unix_proto::socket(io_, net::unix_proto(), fds[1]));
    state_.live = 1;
    auto session =
        std::make_unique<Session>(std::move(stream), state_, worker_, ListenerTraits{}, nullptr);
    entry_ = &session->entry;
    ASSERT_LE(first.size(), session->wait.size());
    std::memcpy(session->wait.data(), first.data(), first.size());
    Chunk c{PooledBuffer(), std::span(session->wait.data(), first.size())};
    settle(session->entry);
    serve_raw_parked(std::move(session), std::move(c));
  }

  // Runs until the reply's write has completed (`out` bytes written in all): the session is then
  // parked in its next read.
  bool parked_after(std::uint64_t out) {
    return run_until([&] { return entry_->bytes_out == out; });
  }

  bool ended() const { return worker_.sessions.empty() && state_.live == 0; }

  // Runs the server's handlers until `done` holds (checked after each), at most 10 s.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();  // a loop that ran out of work (the session ended) stays stopped until then
      io_.run_one_for(20ms);
    }
    return done();
  }

  void send(const std::string& bytes) {
    ASSERT_EQ(::send(client_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  // Reads exactly n bytes of reply (fewer when the server closes first).
  std::string receive(std::size_t n) {
    std::string got;
    run_until([&] {
      char buf[4096];
      for (;;) {
        const ssize_t k = ::recv(client_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (k <= 0) return k == 0 || got.size() >= n || (errno != EAGAIN && errno != EINTR);
        got.append(buf, static_cast<std::size_t>(k));
      }
    });
    return got;
  }

  // True when the server's end has closed (EOF or reset), with nothing more to read.
  bool closed_by_server() {
    return run_until([&] {
      char b;
      const ssize_t k = ::recv(client_.get(), &b, 1, MSG_DONTWAIT);
      return k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
    });
  }

  // Before the loop: a session still parked when the test ends is destroyed with the loop, and
  // unregisters itself from them then.
  ServerState state_;
  Worker worker_;
  asio::io_context io_;
  proc::UniqueFd client_;
  SessionEntry* entry_ = nullptr;  // valid while the session is registered
};

TEST_F(ParkedRawSession, AnswersEachChunkAndCountsItsBytes) {
  start("hello");
  EXPECT_EQ(receive(5), "HELLO");
  send("again");
  EXPECT_EQ(receive(5), "AGAIN");
  const std::string big(3000, 'q');  // past the wait buffer: a pooled buffer for this one
  send(big);
  EXPECT_EQ(receive(big.size()), std::string(3000, 'Q'));
  ASSERT_TRUE(parked_after(3010));
  ASSERT_EQ(worker_.sessions.size(), 1u) << "registered while it waits";
  EXPECT_EQ(entry_->bytes_in, 3005u) << "the first chunk was counted by whoever read it";
}

TEST_F(ParkedRawSession, HalfCloseEndsItAfterTheRepliesAndCountsTheBytesAsClosed) {
  start("abc");
  send("def");
  ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
  EXPECT_EQ(receive(6), "ABCDEF");
  EXPECT_TRUE(closed_by_server());
  ASSERT_TRUE(run_until([&] { return ended(); })) << "the session was not destroyed";
  EXPECT_EQ(state_.bytes_in_closed.load(), 3u);
  EXPECT_EQ(state_.bytes_out_closed.load(), 6u);
}

TEST_F(ParkedRawSession, TheIdleSweepEndsAParkedSession) {
  start("x");
  EXPECT_EQ(receive(1), "X");
  ASSERT_TRUE(parked_after(1));
  worker_.sweep(std::chrono::steady_clock::now() + 1h, 1min);
  ASSERT_TRUE(run_until([&] { return ended(); })) << "the cancelled read did not end it";
  EXPECT_TRUE(closed_by_server());
}

TEST_F(ParkedRawSession, TheStopClosesItAndTheLastOneReportsTheDrain) {
  start("x");
  EXPECT_EQ(receive(1), "X");
  ASSERT_TRUE(parked_after(1));
  bool drained = false;
  state_.stopping = true;
  state_.on_drained = [&] { drained = true; };
  worker_.close_all();
  ASSERT_TRUE(run_until([&] { return ended(); }));
  EXPECT_TRUE(drained);
  EXPECT_TRUE(closed_by_server());
}

TEST_F(ParkedRawSession, APeerThatVanishesWithUnreadRepliesEndsIt) {
  start("x");
  // Replies the peer never reads, then it is gone: the pending read or write fails, nothing
  // else is disturbed.
  send(std::string(100, 'y'));
  client_ = proc::UniqueFd();
  ASSERT_TRUE(run_until([&] { return ended(); }));
}

TEST_F(ParkedRawSession, AnEventLoopDestroyedUnderAParkedSessionUnregistersIt) {
  // What a server's teardown does to a session still waiting: its pending read is destroyed,
  // and the session with it (as a coroutine session's frame is).
  Worker w;
  auto doomed = std::make_unique<asio::io_context>();
  w.ctx = doomed.get();
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  proc::UniqueFd peer(fds[0]);
  auto stream = std::make_unique<net::SocketStream>(
      net::unix_proto::socket(*doomed, net::unix_proto(), fds[1]));
  state_.live = 1;
  auto session = std::make_unique<Session>(std::move(stream), state_, w, ListenerTraits{}, nullptr);
  std::memcpy(session->wait.data(), "y", 1);
  Chunk c{PooledBuffer(), std::span(session->wait.data(), 1)};
  serve_raw_parked(std::move(session), std::move(c));
  // Parked once its reply is out.
  char reply = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (::recv(peer.get(), &reply, 1, MSG_DONTWAIT) != 1 &&
         std::chrono::steady_clock::now() < deadline)
    doomed->run_one_for(20ms);
  ASSERT_EQ(reply, 'Y');
  ASSERT_EQ(w.sessions.size(), 1u);
  doomed.reset();
  EXPECT_TRUE(w.sessions.empty());
  EXPECT_EQ(state_.live, 0u);
}

}  // namespace
}  // namespace duplex::server
