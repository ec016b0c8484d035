// Tests for run_exec (client/exec_session.hpp) against a scripted in-process server.
// The server listens on a Unix socket; the tests check the frames the client sends, how a
// session ends (exit, failure, local signal), and that signals get through a full connection.
#include "duplex/client/exec_session.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "duplex/core/errors.hpp"
#include "duplex/wire/auth_proof.hpp"
#include "duplex/wire/frame.hpp"

namespace duplex::client {
namespace {

using net::unix_proto;
using net::use_tuple;

struct Frame {
  wire::MsgType type{};
  Bytes payload;
};

// The server end of one connection: whole frames in and out.
class Peer {
 public:
  explicit Peer(unix_proto::socket s) : s_(std::move(s)) {}

  /// The next frame, or nullopt at end of stream.
  awaitable<std::optional<Frame>> read() {
    for (;;) {
      auto d = wire::decode_frame(in_, 1u << 24);
      if (d.status == wire::DecodeStatus::frame) {
        Frame f{d.type, Bytes(d.payload.begin(), d.payload.end())};
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(d.consumed));
        co_return f;
      }
      if (d.status == wire::DecodeStatus::error) co_return std::nullopt;
      std::array<std::byte, 65536> buf;
      auto [ec, n] = co_await s_.async_read_some(asio::buffer(buf), use_tuple);
      if (ec) co_return std::nullopt;
      in_.insert(in_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }
  awaitable<void> write(const Bytes& f) {
    co_await asio::async_write(s_, asio::buffer(f), use_tuple);
  }
  /// Bytes the client sent that this end has not read yet (FIONREAD).
  std::size_t unread() {
    int n = 0;
    ::ioctl(s_.native_handle(), FIONREAD, &n);
    return static_cast<std::size_t>(n);
  }
  template <class M>
  awaitable<void> send(const M& m) {
    Bytes f;
    wire::encode(m, f);
    co_await write(f);
  }
  awaitable<void> send_data(wire::MsgType t, std::string_view s) {
    Bytes f;
    wire::encode_frame(t, as_bytes(s), f);
    co_await write(f);
  }
  /// Preface, HELLO -> WELCOME, AUTH_START -> AUTH_CHALLENGE for the token "good" (plain stream:
  /// zero binding), AUTH_PROOF -> AUTH_OK or ERROR auth_failed.
  awaitable<bool> handshake(std::uint32_t max_frame) {
    std::array<std::byte, 4> preface{};
    co_await asio::async_read(s_, asio::buffer(preface), use_tuple);
    auto hello = co_await read();
    if (!hello || hello->type != wire::MsgType::hello) co_return false;
    // Messages are named, never temporaries inside co_await: GCC 12 destroys those twice.
    const wire::Welcome welcome{1, max_frame, "fake"};
    co_await send(welcome);
    auto start = co_await read();
    if (!start || start->type != wire::MsgType::auth_start) co_return false;
    auto a = wire::decode_auth_start(start->payload);
    if (!a) co_return false;
    const wire::AuthBlock key = wire::auth_key("good"), zero{};
    wire::AuthChallenge c;
    c.server_nonce = *wire::make_nonce();
    c.server_proof =
        wire::auth_proof(wire::ProofRole::server, key, zero, a->client_nonce, c.server_nonce);
    co_await send(c);
    auto proof = co_await read();
    if (!proof || proof->type != wire::MsgType::auth_proof) co_return false;
    auto p = wire::decode_auth_proof(proof->payload);
    if (!p ||
        !wire::same_proof(p->client_proof, wire::auth_proof(wire::ProofRole::client, key, zero,
                                                            a->client_nonce, c.server_nonce))) {
      const wire::Error refusal = wire::make_error(errc::auth_failed);
      co_await send(refusal);
      co_return false;
    }
    const wire::AuthOk ok{"test", max_frame};
    co_await send(ok);
    co_return true;
  }

 private:
  unix_proto::socket s_;
  Bytes in_;
};

// What the scripted server saw, for the test to check afterwards.
struct Seen {
  std::optional<wire::ExecStart> start;
  std::string stdin_bytes;
  std::size_t largest_stdin_frame = 0;
  bool stdin_eof = false;
  std::vector<int> signals;
};

using Script = std::function<awaitable<void>(Peer&, Seen&)>;

std::string error_of(const ExecResult& r) {
  return r.failure() ? r.failure()->message() : std::string();
}

// co_spawn completion: an exception in a coroutine fails the test (it leaves ctx.run()).
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

class ExecClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/duplex-exec-client-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    req_.endpoint.transport = net::Transport::unix_stream;
    req_.endpoint.path = dir_ + "/s.sock";
    req_.token = "good";
    req_.start.argv = {"printf", "%s|", "a b", "$HOME", ";x"};
    req_.stdin_fd = -1;
    hooks_.on_stdout = [this](ByteView b) {
      out_ += as_chars(b);
      return true;
    };
    hooks_.on_stderr = [this](ByteView b) { err_ += as_chars(b); };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs the client against one connection served by `script`.
  // Runs the client against one connection served by `script`. The client must be done within
  // kDeadline (else the test fails and the loop is stopped); then `client_done_` fires for a
  // script that waits for it.
  ExecResult run(Script script, std::uint32_t max_frame = 1u << 20) {
    asio::io_context ctx(1);
    unix_proto::acceptor acc(ctx, unix_proto::endpoint(req_.endpoint.path));
    client_done_.emplace(ctx, kDeadline);
    asio::steady_timer deadline(ctx, kDeadline);
    asio::co_spawn(
        ctx,
        [&]() -> awaitable<void> {
          auto [ec, s] = co_await acc.async_accept(use_tuple);
          if (ec) co_return;
          Peer p(std::move(s));
          if (co_await p.handshake(max_frame)) co_await script(p, seen_);
        },
        rethrow);
    std::optional<ExecResult> r;
    asio::co_spawn(
        ctx,
        [&]() -> awaitable<void> {
          r = co_await run_exec(req_, hooks_);
          client_done_->cancel();
          deadline.cancel();
        },
        rethrow);
    deadline.async_wait([&](std::error_code ec) {
      if (ec) return;
      ADD_FAILURE() << "the client did not finish within " << kDeadline.count() << " s";
      ctx.stop();
    });
    ctx.run();
    client_done_.reset();  // its service dies with ctx, at the end of this scope
    EXPECT_TRUE(r.has_value());
    return r.value_or(ExecResult{});
  }

  /// For a script: completes once run_exec has returned.
  awaitable<void> client_done() { co_await client_done_->async_wait(use_tuple); }

  static constexpr std::chrono::seconds kDeadline{20};
  std::optional<asio::steady_timer> client_done_;
  std::string dir_;
  ExecRequest req_;
  ExecHooks hooks_;
  Seen seen_;
  std::string out_, err_;
};

constexpr std::uint32_t kWindow = 256 * 1024;  // the stdin window the scripted servers grant

// Reads EXEC_START and grants kWindow of stdin, then upper-cases stdin onto stdout (granting back
// what it took); at STDIN_EOF says "bye" on stderr and exits 5. A SIGNAL ends the command as
// killed by it.
awaitable<void> echo_script(Peer& p, Seen& seen) {
  auto start = co_await p.read();
  if (!start || start->type != wire::MsgType::exec_start) co_return;
  seen.start = *wire::decode_exec_start(start->payload);
  const wire::StdinWindow window{kWindow};
  co_await p.send(window);
  for (;;) {
    auto f = co_await p.read();
    if (!f) co_return;
    if (f->type == wire::MsgType::stdin_data) {
      const wire::StdinWindow grant{static_cast<std::uint32_t>(f->payload.size())};
      co_await p.send(grant);
      std::string s(as_chars(f->payload));
      seen.stdin_bytes += s;
      seen.largest_stdin_frame = std::max(seen.largest_stdin_frame, s.size());
      std::transform(s.begin(), s.end(), s.begin(),
                     [](char c) { return c >= 'a' && c <= 'z' ? c - 32 : c; });
      co_await p.send_data(wire::MsgType::stdout_data, s);
    } else if (f->type == wire::MsgType::stdin_eof) {
      seen.stdin_eof = true;
      co_await p.send_data(wire::MsgType::stderr_data, "bye\n");
      co_await p.send(wire::Exit{wire::Exit::How::exited, 5, 42, wire::Exit::Limit::none});
      co_return;
    } else if (f->type == wire::MsgType::signal) {
      const int signo = wire::decode_signal(f->payload)->signo;
      seen.signals.push_back(signo);
      co_await p.send(wire::Exit{wire::Exit::How::signaled, signo, 42, wire::Exit::Limit::none});
      co_return;
    }
  }
}

// Like echo_script, but the command ignores STDIN_EOF: only a SIGNAL ends it.
awaitable<void> wait_for_signal_script(Peer& p, Seen& seen) {
  auto start = co_await p.read();
  if (!start) co_return;
  for (;;) {
    auto f = co_await p.read();
    if (!f) co_return;
    if (f->type == wire::MsgType::signal) {
      const int signo = wire::decode_signal(f->payload)->signo;
      seen.signals.push_back(signo);
      co_await p.send(wire::Exit{wire::Exit::How::signaled, signo, 42, wire::Exit::Limit::none});
      co_return;
    }
  }
}

TEST_F(ExecClientTest, StdinOutputAndExitStatus) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "hello world", 11), 11);
  ::close(p[1]);
  req_.stdin_fd = p[0];
  const auto r = run(echo_script);
  ::close(p[0]);
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(exit_status(r), 5);
  EXPECT_EQ(r.identity, "test");
  EXPECT_EQ(out_, "HELLO WORLD");
  EXPECT_EQ(err_, "bye\n");
  ASSERT_TRUE(seen_.start);
  EXPECT_EQ(seen_.start->argv, req_.start.argv);  // exact, nothing re-split or quoted
  EXPECT_TRUE(seen_.stdin_eof);
}

TEST_F(ExecClientTest, NoStdinSendsEofAtOnce) {
  const auto r = run(echo_script);
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(exit_status(r), 5);
  EXPECT_TRUE(seen_.stdin_eof);
  EXPECT_EQ(seen_.stdin_bytes, "");
}

TEST_F(ExecClientTest, StdinIsChunkedWithinTheServersFrameLimit) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const std::string data(300'000, 'x');
  std::thread writer([&] {
    ASSERT_EQ(::write(p[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(p[1]);
  });
  req_.stdin_fd = p[0];
  const auto r = run(echo_script, /*max_frame=*/1000);
  writer.join();
  ::close(p[0]);
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(seen_.stdin_bytes, data);
  EXPECT_LE(seen_.largest_stdin_frame, 1000u);
  EXPECT_EQ(out_, std::string(300'000, 'X'));
}

TEST_F(ExecClientTest, StdinKeepsWithinTheServersWindow) {
  // The server grants 1000 bytes at a time, each once the previous grant has arrived in full:
  // the client never sends more than it was granted (nor anything before the first grant).
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const std::string data(100'000, 'w');
  std::thread writer([&] {
    ASSERT_EQ(::write(p[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(p[1]);
  });
  req_.stdin_fd = p[0];
  std::uint64_t granted = 0, most_ahead = 0;
  const auto r = run([&](Peer& peer, Seen& seen) -> awaitable<void> {
    co_await peer.read();  // EXEC_START
    const wire::StdinWindow grant{1000};
    for (;;) {
      if (seen.stdin_bytes.size() == granted) {
        co_await peer.send(grant);
        granted += grant.bytes;
      }
      auto f = co_await peer.read();
      if (!f) co_return;
      if (f->type == wire::MsgType::stdin_data) {
        seen.stdin_bytes += as_chars(f->payload);
        most_ahead = std::max<std::uint64_t>(most_ahead, seen.stdin_bytes.size());
        if (seen.stdin_bytes.size() > granted) co_return;  // over the window: the test fails
      } else if (f->type == wire::MsgType::stdin_eof) {
        const wire::Exit done{wire::Exit::How::exited, 0, 1, wire::Exit::Limit::none};
        co_await peer.send(done);
        co_return;
      }
    }
  });
  writer.join();
  ::close(p[0]);
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(seen_.stdin_bytes, data);
  EXPECT_LE(most_ahead, granted);
}

TEST_F(ExecClientTest, WrongTokenSeesTheServerDoesNotKnowIt) {
  // The server proves the token first: with another token that proof fails here, and the client
  // stops before proving anything itself.
  req_.token = "bad";
  const auto r = run(echo_script);
  EXPECT_FALSE(r.exit());
  EXPECT_NE(error_of(r).find("does not know the token"), std::string::npos) << error_of(r);
  EXPECT_EQ(exit_status(r), 255);
}

TEST_F(ExecClientTest, ConnectionLostBeforeExitIsAFailure) {
  const auto r =
      run([](Peer& p, Seen&) -> awaitable<void> { co_await p.read(); });  // EXEC_START, then close
  EXPECT_FALSE(r.exit());
  EXPECT_NE(error_of(r).find("before the command ended"), std::string::npos) << error_of(r);
  EXPECT_EQ(exit_status(r), 255);
}

TEST_F(ExecClientTest, NoServerIsAFailureToConnect) {
  req_.endpoint.path = dir_ + "/absent.sock";
  asio::io_context ctx(1);
  std::optional<ExecResult> r;
  asio::co_spawn(
      ctx, [&]() -> awaitable<void> { r = co_await run_exec(req_, hooks_); }, rethrow);
  ctx.run();
  ASSERT_TRUE(r);
  EXPECT_NE(error_of(*r).find("cannot connect"), std::string::npos) << error_of(*r);
  EXPECT_EQ(exit_status(*r), 255);
}

TEST_F(ExecClientTest, SilentServerHitsTheConnectTimeout) {
  req_.connect_timeout = std::chrono::milliseconds(200);
  asio::io_context ctx(1);
  unix_proto::acceptor acc(ctx, unix_proto::endpoint(req_.endpoint.path));
  std::optional<ExecResult> r;
  asio::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        r = co_await run_exec(req_, hooks_);
        acc.close();
      },
      rethrow);
  ctx.run();  // the accept backlog holds the connection; nobody ever answers it
  ASSERT_TRUE(r);
  EXPECT_NE(error_of(*r).find("no answer"), std::string::npos) << error_of(*r);
}

TEST_F(ExecClientTest, ForwardedSignalIsSentAndTheSessionGoesOn) {
  req_.forward_signals = {SIGUSR1};
  hooks_.on_started = [] { ::raise(SIGUSR1); };
  const auto r = run(wait_for_signal_script);
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(seen_.signals, std::vector<int>{SIGUSR1});
  EXPECT_EQ(exit_status(r), 128 + SIGUSR1);
}

TEST_F(ExecClientTest, StopSignalEndsTheSessionHere) {
  req_.stop_signals = {SIGUSR2};
  hooks_.on_started = [] { ::raise(SIGUSR2); };
  const auto r = run(wait_for_signal_script);
  EXPECT_FALSE(r.exit());
  EXPECT_EQ(r.local_signal(), SIGUSR2);
  EXPECT_TRUE(seen_.signals.empty());
  EXPECT_EQ(exit_status(r), 128 + SIGUSR2);
}

TEST_F(ExecClientTest, BrokenStdoutEndsTheSessionLikeSigpipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "data", 4), 4);
  ::close(p[1]);
  req_.stdin_fd = p[0];
  hooks_.on_stdout = [](ByteView) { return false; };
  const auto r = run(echo_script);
  ::close(p[0]);
  EXPECT_FALSE(r.exit());
  EXPECT_EQ(r.local_signal(), SIGPIPE);
  EXPECT_EQ(exit_status(r), 141);
}

TEST_F(ExecClientTest, CommandTooLongForTheFrameLimitIsRefusedHere) {
  req_.start.argv = {"echo", std::string(5000, 'a')};
  const auto r = run(echo_script, /*max_frame=*/1000);
  EXPECT_FALSE(r.exit());
  EXPECT_NE(error_of(r).find("too long"), std::string::npos) << error_of(r);
}

// --- Signals while stdin fills the connection (issue 6, bug 5) ---------------------------------
// The client's stdin is /dev/zero and the command never reads it: the scripted server grants a
// window far larger than the connection holds (as a careless server might), reads EXEC_START and
// then nothing, so the socket fills, the client's writer blocks in the middle of a STDIN_DATA
// frame and its queue of stdin frames fills behind it.

constexpr std::size_t kChunk = 64 * 1024;  // the client's largest STDIN_DATA payload

// Waits until the client has stopped adding to the connection (its writer is blocked): the
// unread byte count stays the same over several looks. False after 10 s.
awaitable<bool> wait_until_full(Peer& p) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  std::size_t last = 0;
  int same = 0;
  for (int i = 0; i < 1000 && same < 5; ++i) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(use_tuple);
    const std::size_t now = p.unread();
    same = now > 0 && now == last ? same + 1 : 0;
    last = now;
  }
  co_return same >= 5;
}

// EXEC_START, then a window no connection holds.
awaitable<void> start_with_huge_window(Peer& p) {
  co_await p.read();
  const wire::StdinWindow huge{0xffffffffu};
  co_await p.send(huge);
}

class StdinFloodTest : public ExecClientTest {
 protected:
  void SetUp() override {
    ExecClientTest::SetUp();
    zero_ = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(zero_, 0);
    req_.stdin_fd = zero_;
  }
  void TearDown() override {
    ::close(zero_);
    ExecClientTest::TearDown();
  }
  int zero_ = -1;
};

TEST_F(StdinFloodTest, SecondInterruptEndsTheSessionAtOnce) {
  req_.forward_signals = {SIGINT};
  req_.double_interrupt_stops = true;
  bool full = false;
  std::chrono::steady_clock::time_point interrupted;
  const auto r = run([&](Peer& p, Seen&) -> awaitable<void> {
    co_await start_with_huge_window(p);
    full = co_await wait_until_full(p);
    interrupted = std::chrono::steady_clock::now();
    ::raise(SIGINT);  // forwarded: its SIGNAL cannot get through, the server reads nothing
    ::raise(SIGINT);  // the second one gives up at once
    co_await client_done();
  });
  ASSERT_TRUE(full) << "the connection never filled up";
  EXPECT_EQ(r.local_signal(), SIGINT) << error_of(r);
  EXPECT_EQ(exit_status(r), 130);
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted, std::chrono::seconds(3));
}

TEST_F(StdinFloodTest, StopSignalEndsTheSessionAtOnce) {
  req_.stop_signals = {SIGUSR2};
  bool full = false;
  const auto r = run([&](Peer& p, Seen&) -> awaitable<void> {
    co_await start_with_huge_window(p);
    full = co_await wait_until_full(p);
    ::raise(SIGUSR2);
    co_await client_done();
  });
  ASSERT_TRUE(full) << "the connection never filled up";
  EXPECT_EQ(r.local_signal(), SIGUSR2) << error_of(r);
  EXPECT_EQ(exit_status(r), 128 + SIGUSR2);
}

TEST_F(StdinFloodTest, ForwardedSignalGoesAheadOfQueuedStdin) {
  req_.forward_signals = {SIGUSR1};
  bool full = false;
  std::size_t in_socket = 0;      // stdin already in the socket when the signal was queued
  std::size_t before_signal = 0;  // stdin bytes the server read before the SIGNAL
  const auto r = run([&](Peer& p, Seen& seen) -> awaitable<void> {
    co_await start_with_huge_window(p);
    full = co_await wait_until_full(p);
    if (!full) co_return;
    auto ex = co_await asio::this_coro::executor;
    asio::signal_set mine(ex, SIGUSR1);
    ::raise(SIGUSR1);
    // The same delivery wakes the client's signal watcher, queued beside this wait; a few more
    // turns of the loop and it has put its SIGNAL in the writer's control lane.
    co_await mine.async_wait(use_tuple);
    for (int i = 0; i < 4; ++i)
      co_await asio::post(ex, asio::use_awaitable);
    in_socket = p.unread();
    for (;;) {
      auto f = co_await p.read();
      if (!f) co_return;
      if (f->type == wire::MsgType::stdin_data) before_signal += f->payload.size();
      if (f->type == wire::MsgType::signal) {
        seen.signals.push_back(wire::decode_signal(f->payload)->signo);
        const wire::Exit killed{wire::Exit::How::signaled, SIGUSR1, 42, wire::Exit::Limit::none};
        co_await p.send(killed);
        co_return;
      }
    }
  });
  ASSERT_TRUE(full) << "the connection never filled up";
  ASSERT_TRUE(r.exit()) << error_of(r);
  EXPECT_EQ(seen_.signals, std::vector<int>{SIGUSR1});
  EXPECT_EQ(exit_status(r), 128 + SIGUSR1);
  // Behind the SIGNAL: what was in the socket, and the rest of the frame being written (a frame
  // is never cut). Not the dozen frames queued in the client.
  EXPECT_LE(before_signal, in_socket + 2 * kChunk) << "in the socket: " << in_socket << " bytes";
}

}  // namespace
}  // namespace duplex::client
