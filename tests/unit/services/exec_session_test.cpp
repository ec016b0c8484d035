// The exec session against a fake session (no socket): authentication by uid, client key or the
// token's challenge-response, the order of AUTH/EXEC_START, refusals, the penalty box, forced
// commands, and real short commands (echo, sleep) where a fake is not practical.
#include "duplex/services/exec_session.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "duplex/core/errors.hpp"
#include "duplex/wire/auth_proof.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::services {
namespace {

using namespace std::chrono_literals;
using wire::MsgType;

// What the exec session sees of its framed session: frames it sent are recorded, the client's
// hang-up is an event the test triggers.
class FakeSession final : public SessionContext, public FrameSink {
 public:
  explicit FakeSession(asio::io_context& io, net::Peer peer = {})
      : ex_(io.get_executor()), peer_(std::move(peer)), gone_(io) {
    gone_.expires_at(asio::steady_timer::time_point::max());
    if (peer_.address.empty()) peer_.address = peer_.client_key = "fake";
  }

  struct Sent {
    MsgType type;
    std::string payload;
  };
  std::vector<Sent> sent;
  bool busy = false;
  std::chrono::seconds keepalive_idle{0}, keepalive_interval{0};

  void hang_up() { gone_.cancel(); }
  // The EXIT sent, if any.
  std::optional<wire::Exit> exit() const {
    for (const auto& s : sent)
      if (s.type == MsgType::exit) return *wire::decode_exit(as_bytes(s.payload));
    return std::nullopt;
  }
  // STDIN_WINDOW grants, in order.
  std::vector<std::uint32_t> windows() const {
    std::vector<std::uint32_t> out;
    for (const auto& s : sent)
      if (s.type == MsgType::stdin_window)
        out.push_back(wire::decode_stdin_window(as_bytes(s.payload))->bytes);
    return out;
  }
  std::uint64_t granted() const {
    std::uint64_t n = 0;
    for (auto w : windows())
      n += w;
    return n;
  }
  std::string output(MsgType type) const {
    std::string out;
    for (const auto& s : sent)
      if (s.type == type) out += s.payload;
    return out;
  }

  // FrameSink
  awaitable<bool> send(MsgType type, Payload p) override {
    sent.push_back({type, std::string(as_chars(p.data()))});
    co_return true;
  }
  awaitable<void> finish() override { co_return; }

  // SessionContext
  asio::any_io_executor get_executor() override { return ex_; }
  FrameSink& sink() noexcept override { return *this; }
  const net::Peer& peer() const noexcept override { return peer_; }
  awaitable<void> client_gone() override { co_await gone_.async_wait(net::use_tuple); }
  void set_busy(bool b) noexcept override { busy = b; }
  void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) override {
    keepalive_idle = idle;
    keepalive_interval = interval;
  }
  bool channel_protected() const noexcept override { return channel_protected_; }
  Result<std::array<std::byte, 32>> channel_binding(std::string_view) override {
    return fail(std::errc::operation_not_supported, "no channel binding in the fake session");
  }
  void set_authenticated(std::string who) override { identity = std::move(who); }

  std::string identity;
  bool channel_protected_ = true;

 private:
  asio::any_io_executor ex_;
  net::Peer peer_;
  asio::steady_timer gone_;
};

std::string str(std::string_view s) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  return out.append(s);
}

std::string be32(std::uint32_t n) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  return out;
}

// A message's payload, as the client would send it.
template <class M>
std::string payload(const M& m) {
  Bytes f;
  wire::encode(m, f);
  return std::string(as_chars(ByteView(f).subspan(wire::kHeaderSize)));
}

// AUTH_OK's payload: the identity, then the frame limit.
std::string auth_ok(std::string_view identity) {
  return str(identity) + be32(Limits{}.max_frame);
}

// AUTH_START and AUTH_PROOF payloads of zero bytes (built here: GCC 12 destroys a braced
// temporary inside a co_await expression twice).
const std::string kAnyStart = payload(wire::AuthStart{});
const std::string kAnyProof = payload(wire::AuthProof{});

const std::string kKeyA = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
const std::string kKeyB = "SHA256:PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0";

std::string exec_start(const wire::ExecStart& r) {
  Bytes f;
  wire::encode(r, f);
  return std::string(as_chars(ByteView(f).subspan(wire::kHeaderSize)));
}

std::string signal_payload(int signo) {
  Bytes f;
  wire::encode(wire::Signal{signo}, f);
  return std::string(as_chars(ByteView(f).subspan(wire::kHeaderSize)));
}

wire::ExecStart argv(std::vector<std::string> a) {
  wire::ExecStart r;
  r.argv = std::move(a);
  return r;
}

// An EXEC_START payload for this argv. (Built outside co_await expressions: GCC 12 mishandles a
// braced list in one.)
template <class... Arg>
std::string command(Arg... a) {
  return exec_start(argv(std::vector<std::string>{a...}));
}

class ExecSessionTest : public ::testing::Test {
 protected:
  ExecSessionTest() {
    // As the server does: a command that exits leaves its stdin pipe broken, and a write to it
    // must fail with EPIPE rather than kill the writer.
    std::signal(SIGPIPE, SIG_IGN);
    settings_.enabled = true;
    settings_.auth.token_key = token_key("sesame");
    settings_.auth.allowed_uids = {4242};
    settings_.policy.kill_grace = 500ms;
  }

  void make(net::Peer peer = {}) {
    fake_.emplace(io_, std::move(peer));
    session_.emplace(ExecContext{settings_, slots_, started_, penalties_, auth_failures_}, *fake_);
  }

  // Feeds one message to the session.
  awaitable<Handled> feed(MsgType type, std::string payload) {
    co_return co_await session_->handle(type, as_bytes(payload));
  }

  // The token's challenge-response as a client does it (the fake session has no channel
  // binding: 32 zero bytes). Returns AUTH_PROOF's outcome; `server_proved` says whether the
  // challenge proved that the server knows `token`.
  awaitable<Handled> login(std::string_view token = "sesame", bool* server_proved = nullptr) {
    const wire::AuthBlock nc = *wire::make_nonce();
    const std::string start = payload(wire::AuthStart{nc});
    auto h = co_await feed(MsgType::auth_start, start);
    if (!h || fake_->sent.empty() || fake_->sent.back().type != MsgType::auth_challenge)
      co_return h;
    auto c = wire::decode_auth_challenge(as_bytes(fake_->sent.back().payload));
    EXPECT_TRUE(c.ok());
    const auto key = wire::auth_key(token);
    const wire::AuthBlock zero{};
    if (server_proved)
      *server_proved = wire::same_proof(
          c->server_proof,
          wire::auth_proof(wire::ProofRole::server, key, zero, nc, c->server_nonce));
    const std::string proof = payload(
        wire::AuthProof{wire::auth_proof(wire::ProofRole::client, key, zero, nc, c->server_nonce)});
    co_return co_await feed(MsgType::auth_proof, proof);
  }

  // A peer that came over TLS with a client key.
  static net::Peer key_peer(std::string fp, std::string address = "10.1.2.3") {
    net::Peer p;
    p.address = address + ":5555";
    p.client_key = std::move(address);
    p.key_fingerprint = std::move(fp);
    return p;
  }
  void authorize(std::string_view text) {
    auto keys = AuthorizedKeys::parse(text);
    ASSERT_TRUE(keys.ok()) << keys.message();
    settings_.auth.authorized_keys = std::make_shared<AuthorizedKeys>(std::move(*keys));
  }

  // Runs the session's command loop beside `body` until both are done (body ends with end()).
  void run(std::function<awaitable<void>()> body) {
    bool loop_done = false, body_done = false;
    std::exception_ptr failure;
    io_.restart();  // a test may run several sessions, one after the other
    asio::co_spawn(io_, session_->run(), [&](std::exception_ptr) { loop_done = true; });
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      body_done = true;
      failure = e;
      session_->end(wire::Exit::Limit::none);
    });
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!(loop_done && body_done) && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(100ms);
    ASSERT_TRUE(body_done && loop_done) << "did not finish in time";
    if (failure) std::rethrow_exception(failure);
  }

  // Waits (on the loop) until the EXIT has been sent.
  awaitable<void> until_exit() {
    asio::steady_timer t(io_);
    for (int i = 0; i < 1000 && !fake_->exit(); ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(net::use_tuple);
    }
  }

  asio::io_context io_;
  ExecSettings settings_;
  CommandSlots slots_;
  std::atomic<std::uint64_t> started_{0};
  PenaltyBox penalties_;
  std::atomic<std::uint64_t> auth_failures_{0};
  std::optional<FakeSession> fake_;
  std::optional<ExecSession> session_;
};

::testing::AssertionResult breach(const Handled& h, errc code) {
  if (h) return ::testing::AssertionFailure() << "handled without a breach";
  if (h.error() != make_error_code(code))
    return ::testing::AssertionFailure()
           << "breach " << h.message() << ", not " << make_error_code(code).message();
  return ::testing::AssertionSuccess();
}

TEST_F(ExecSessionTest, AllowedUidFromThePeerAuthenticatesWithoutAToken) {
  net::Peer p;
  p.address = "unix:pid=1,uid=4242";
  p.client_key = "uid:4242";
  p.uid = 4242;
  make(p);
  run([&]() -> awaitable<void> {
    auto h = co_await feed(MsgType::auth, str(""));
    EXPECT_TRUE(h && *h == Next::read_on) << h.message();
  });
  ASSERT_EQ(fake_->sent.size(), 1u);
  EXPECT_EQ(fake_->sent[0].type, MsgType::auth_ok);
  EXPECT_EQ(fake_->sent[0].payload, auth_ok("uid 4242"));
  EXPECT_EQ(fake_->identity, "uid 4242") << "the session is told (it lifts its pre-auth limits)";
  EXPECT_EQ(fake_->keepalive_idle, ExecSession::kKeepaliveIdle) << "an exec session is probed";
  EXPECT_GT(fake_->keepalive_interval.count(), 0);
}

TEST_F(ExecSessionTest, OtherUidWithoutATokenIsRefused) {
  net::Peer p;
  p.address = "unix:pid=1,uid=7";
  p.client_key = "uid:7";
  p.uid = 7;
  make(p);
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("")), errc::auth_failed));
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("wrong")), errc::auth_failed));
  });
  EXPECT_TRUE(fake_->sent.empty()) << "nothing but the ERROR the session sends";
  EXPECT_EQ(fake_->keepalive_idle.count(), 0);
}

TEST_F(ExecSessionTest, TheTokenAuthenticatesAnyPeer) {
  make();
  bool server_proved = false;
  run([&]() -> awaitable<void> {
    auto h = co_await login("sesame", &server_proved);
    EXPECT_TRUE(h) << h.message();
  });
  EXPECT_TRUE(server_proved) << "the server proves it knows the token first";
  ASSERT_EQ(fake_->sent.size(), 2u);
  EXPECT_EQ(fake_->sent[0].type, MsgType::auth_challenge);
  EXPECT_EQ(fake_->sent[1].type, MsgType::auth_ok);
  EXPECT_EQ(fake_->sent[1].payload, auth_ok("token"));
  EXPECT_EQ(fake_->identity, "token");
  EXPECT_EQ(auth_failures_.load(), 0u);
}

TEST_F(ExecSessionTest, AWrongTokenFailsAtTheProofAndIsCounted) {
  make();
  bool server_proved = true;
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await login("sesamE", &server_proved), errc::auth_failed));
  });
  EXPECT_FALSE(server_proved) << "a client with another token sees the server does not know it";
  EXPECT_EQ(fake_->sent.size(), 1u) << "the challenge, then nothing but the ERROR";
  EXPECT_EQ(auth_failures_.load(), 1u);
  EXPECT_TRUE(fake_->identity.empty());
}

// Our client stops at the challenge when the server's proof does not match its token (a wrong
// token, or a relay): that is a failure too, or wrong tokens would never be counted.
TEST_F(ExecSessionTest, AClientThatLeavesAfterTheChallengeIsCountedAsAFailure) {
  make();
  run([&]() -> awaitable<void> {
    const std::string start = payload(wire::AuthStart{*wire::make_nonce()});
    auto h = co_await feed(MsgType::auth_start, start);
    EXPECT_TRUE(h) << h.message();
    EXPECT_EQ(auth_failures_.load(), 0u) << "not yet: the client may still answer";
  });  // the session ends here: the client went away
  ASSERT_EQ(fake_->sent.size(), 1u);
  EXPECT_EQ(fake_->sent[0].type, MsgType::auth_challenge);
  EXPECT_EQ(auth_failures_.load(), 1u);
  session_->end(wire::Exit::Limit::none);  // ended twice: counted once
  EXPECT_EQ(auth_failures_.load(), 1u);
}

TEST_F(ExecSessionTest, AServerStoppingDuringTheChallengeCountsNoFailure) {
  make();
  run([&]() -> awaitable<void> {
    const std::string start = payload(wire::AuthStart{*wire::make_nonce()});
    (void)co_await feed(MsgType::auth_start, start);
    session_->end(wire::Exit::Limit::shutdown);
  });
  EXPECT_EQ(auth_failures_.load(), 0u);
}

// The token is never sent: a client that sends it in AUTH (an old one) is refused, whatever the
// token, so a right one is not even recognised.
TEST_F(ExecSessionTest, ATokenInClearIsRefusedEvenTheRightOne) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("sesame")), errc::auth_failed));
  });
  EXPECT_TRUE(fake_->sent.empty());
  EXPECT_EQ(auth_failures_.load(), 1u);
}

TEST_F(ExecSessionTest, NoTokenConfiguredRefusesAtAuthStart) {
  settings_.auth.token_key.reset();
  make();
  run([&]() -> awaitable<void> { EXPECT_TRUE(breach(co_await login(), errc::auth_failed)); });
  EXPECT_TRUE(fake_->sent.empty()) << "no challenge without a token";
}

TEST_F(ExecSessionTest, TheExchangeIsInOrder) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth_proof, kAnyProof), errc::unexpected_message));
    EXPECT_TRUE(co_await feed(MsgType::auth_start, kAnyStart));
    EXPECT_TRUE(breach(co_await feed(MsgType::auth_start, kAnyStart), errc::unexpected_message));
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("")), errc::unexpected_message));
    EXPECT_TRUE(
        breach(co_await feed(MsgType::auth_start, std::string(31, 'x')), errc::unexpected_message));
  });
}

TEST_F(ExecSessionTest, AfterAuthenticationNoSecondAuthentication) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(breach(co_await login(), errc::unexpected_message));
  });
}

TEST_F(ExecSessionTest, EachChallengeIsFresh) {
  make();
  run([&]() -> awaitable<void> { EXPECT_TRUE(co_await feed(MsgType::auth_start, kAnyStart)); });
  const auto first = fake_->sent.at(0).payload;
  make();
  run([&]() -> awaitable<void> { EXPECT_TRUE(co_await feed(MsgType::auth_start, kAnyStart)); });
  EXPECT_NE(fake_->sent.at(0).payload.substr(0, 32), first.substr(0, 32)) << "server nonce";
}

TEST_F(ExecSessionTest, AnUnprotectedChannelGetsNoExec) {
  make();
  fake_->channel_protected_ = false;
  run([&]() -> awaitable<void> {
    for (auto type :
         {MsgType::auth, MsgType::auth_start, MsgType::auth_proof, MsgType::exec_start}) {
      auto h = co_await feed(type, str(""));
      EXPECT_TRUE(breach(h, errc::insecure_channel)) << wire::type_name(type);
      EXPECT_NE(h.message().find("tls://"), std::string::npos) << h.message();
    }
  });
  EXPECT_TRUE(fake_->sent.empty()) << "no challenge: not even the nonce goes out in clear";
}

TEST_F(ExecSessionTest, FailuresFillThePenaltyBoxAndThenItRefuses) {
  settings_.penalties.max_failures = 3;
  penalties_.configure(settings_.penalties);
  for (int i = 0; i < 3; ++i) {
    make();
    run([&]() -> awaitable<void> {
      EXPECT_TRUE(breach(co_await login("wrong"), errc::auth_failed));
    });
  }
  EXPECT_GT(penalties_.refused_for("fake").count(), 0);
  make();
  run([&]() -> awaitable<void> {
    auto h = co_await login();
    EXPECT_TRUE(breach(h, errc::penalised));
    EXPECT_NE(h.message().find("try again in"), std::string::npos) << h.message();
  });
  EXPECT_TRUE(fake_->sent.empty()) << "a penalised address gets no challenge";
  EXPECT_EQ(auth_failures_.load(), 4u);
}

TEST_F(ExecSessionTest, ASuccessClearsTheFailures) {
  settings_.penalties.max_failures = 2;
  penalties_.configure(settings_.penalties);
  for (int i = 0; i < 3; ++i) {
    make();
    run([&]() -> awaitable<void> {
      EXPECT_TRUE(breach(co_await login("wrong"), errc::auth_failed));
    });
    make();
    run([&]() -> awaitable<void> { EXPECT_TRUE(co_await login()); });
  }
  EXPECT_EQ(penalties_.refused_for("fake").count(), 0);
}

TEST_F(ExecSessionTest, AnAuthorizedClientKeyNeedsNoToken) {
  authorize(kKeyA + " alice@laptop\n");
  make(key_peer(kKeyA));
  run([&]() -> awaitable<void> {
    auto h = co_await feed(MsgType::auth_start, kAnyStart);
    EXPECT_TRUE(h) << h.message();
  });
  ASSERT_EQ(fake_->sent.size(), 1u);
  EXPECT_EQ(fake_->sent[0].type, MsgType::auth_ok);
  EXPECT_EQ(fake_->sent[0].payload, auth_ok("key " + kKeyA + " (alice@laptop)"));
  // AUTH{""} (the transport's identity alone) works the same.
  make(key_peer(kKeyA));
  run([&]() -> awaitable<void> { EXPECT_TRUE(co_await feed(MsgType::auth, str(""))); });
}

TEST_F(ExecSessionTest, AnUnknownKeyIsRefusedOrAskedForTheToken) {
  authorize(kKeyA + " alice@laptop\n");
  make(key_peer(kKeyB));
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("")), errc::auth_failed));
  });
  // With a token configured, a client whose key is unknown may still prove the token.
  make(key_peer(kKeyB));
  run([&]() -> awaitable<void> { EXPECT_TRUE(co_await login()); });
  EXPECT_EQ(fake_->identity, "token");
  settings_.auth.token_key.reset();
  make(key_peer(kKeyB));
  run([&]() -> awaitable<void> { EXPECT_TRUE(breach(co_await login(), errc::auth_failed)); });
}

TEST_F(ExecSessionTest, FromRefusesOtherAddresses) {
  settings_.auth.token_key.reset();
  authorize("from=\"10.0.0.0/8\" " + kKeyA + " alice\n");
  make(key_peer(kKeyA, "192.168.1.9"));
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, str("")), errc::auth_failed));
  });
  EXPECT_EQ(auth_failures_.load(), 1u);
  make(key_peer(kKeyA, "10.9.9.9"));
  run([&]() -> awaitable<void> { EXPECT_TRUE(co_await feed(MsgType::auth, str(""))); });
}

TEST_F(ExecSessionTest, ACommandRestrictionRunsTheForcedCommandWhateverIsAsked) {
  authorize("command=\"echo forced: $DUPLEX_ORIGINAL_COMMAND\" " + kKeyA + " ci\n");
  make(key_peer(kKeyA));
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await feed(MsgType::auth, str("")));
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("id", "-u")));
    co_await until_exit();
  });
  ASSERT_TRUE(fake_->exit().has_value());
  EXPECT_EQ(fake_->exit()->code, 0);
  EXPECT_EQ(fake_->output(MsgType::stdout_data), "forced: id -u\n");
}

TEST_F(ExecSessionTest, ExecStartBeforeAuthIsRefused) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::exec_start, command("true")), errc::auth_required));
  });
  EXPECT_EQ(started_.load(), 0u);
}

TEST_F(ExecSessionTest, DisabledExecRefusesAuthAndExecStart) {
  settings_.enabled = false;
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth_start, kAnyStart), errc::service_disabled));
    EXPECT_TRUE(
        breach(co_await feed(MsgType::exec_start, command("true")), errc::service_disabled));
  });
}

TEST_F(ExecSessionTest, MalformedMessagesAreBadMessages) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(breach(co_await feed(MsgType::auth, std::string("xx")), errc::bad_message));
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(breach(co_await feed(MsgType::exec_start, std::string("\x09")), errc::bad_message));
    EXPECT_TRUE(breach(co_await feed(MsgType::signal, std::string("\x01")), errc::bad_message));
    EXPECT_TRUE(breach(co_await feed(MsgType::stdin_eof, std::string("x")), errc::bad_message));
    EXPECT_TRUE(breach(co_await feed(MsgType::window_size, std::string("")), errc::bad_message));
  });
  EXPECT_EQ(started_.load(), 0u);
}

TEST_F(ExecSessionTest, ACommandRunsToItsExitAndGivesItsSlotBack) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    auto h = co_await feed(MsgType::exec_start, command("echo", "hi"));
    EXPECT_TRUE(h) << h.message();
    EXPECT_TRUE(fake_->busy) << "a running command is not idleness";
    co_await until_exit();
  });
  EXPECT_EQ(fake_->output(MsgType::stdout_data), "hi\n");
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::exited);
  EXPECT_EQ(fake_->exit()->code, 0);
  EXPECT_EQ(fake_->sent.back().type, MsgType::exit) << "EXIT is the last frame";
  EXPECT_EQ(slots_.running(), 0u);
  EXPECT_FALSE(fake_->busy);
  EXPECT_EQ(started_.load(), 1u);
}

TEST_F(ExecSessionTest, AWorkingDirectoryThatFailsIsBadCwdWithItsErrno) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    auto r = argv(std::vector<std::string>(1, "pwd"));
    r.cwd = "/nonexistent-duplex-dir";
    EXPECT_TRUE(co_await feed(MsgType::exec_start, exec_start(r)));
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::bad_cwd);
  EXPECT_EQ(fake_->exit()->code, ENOENT);
  EXPECT_EQ(slots_.running(), 0u);
  EXPECT_EQ(started_.load(), 0u);
}

TEST_F(ExecSessionTest, AMissingProgramIsNotStartedWithEnoent) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("duplex-no-such-program")));
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::not_started);
  EXPECT_EQ(fake_->exit()->code, ENOENT);
}

TEST_F(ExecSessionTest, OneCommandAtATimePerConnection) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("sleep", "30")));
    EXPECT_TRUE(breach(co_await feed(MsgType::exec_start, command("true")), errc::limit_exceeded));
    // The body's end ends the session: the sleep gets SIGTERM.
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::signaled);
  EXPECT_EQ(fake_->exit()->code, SIGTERM);
}

TEST_F(ExecSessionTest, InputIsWrittenInOrderAndEofFollowsIt) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("cat")));
    EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string("one ")));
    EXPECT_TRUE(
        co_await feed(MsgType::stdin_data, std::string("")));  // an empty chunk ends nothing
    EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string(300 * 1024, 'x')));
    EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string(" two")));
    EXPECT_TRUE(co_await feed(MsgType::stdin_eof, std::string("")));
    co_await until_exit();
  });
  EXPECT_EQ(fake_->output(MsgType::stdout_data), "one " + std::string(300 * 1024, 'x') + " two");
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->code, 0);
}

TEST_F(ExecSessionTest, ASignalArrivesWhileTheCommandDoesNotReadItsInput) {
  // 200 KB for a command that never reads: more than its pipe holds. The session still takes
  // the next message at once, so the SIGNAL behind the input reaches the command.
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("sleep", "30")));
    for (int i = 0; i < 4; ++i)
      EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string(50 * 1024, 'i')));
    EXPECT_TRUE(co_await feed(MsgType::signal, signal_payload(SIGUSR1)));
    co_await until_exit();
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::signaled);
  EXPECT_EQ(fake_->exit()->code, SIGUSR1);
  EXPECT_EQ(fake_->exit()->limit, wire::Exit::Limit::none);
}

TEST_F(ExecSessionTest, TheStdinQueueIsTheFirstWindowAndSmallFramesWithinItNeverStopTheReader) {
  // A client that keeps to its window sends a whole window in 1 KiB frames to a command that
  // never reads. Each is taken at once (the queue is bounded in bytes, not in frames), so the
  // SIGNAL behind them arrives.
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("sleep", "30")));
    asio::steady_timer t(io_);
    for (int i = 0; i < 500 && fake_->windows().empty(); ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(net::use_tuple);
    }
    EXPECT_EQ(fake_->windows(), std::vector<std::uint32_t>{ExecCommand::kStdinQueue});
    for (std::size_t sent = 0; sent < ExecCommand::kStdinQueue; sent += 1024)
      EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string(1024, 'i')));
    EXPECT_TRUE(co_await feed(MsgType::signal, signal_payload(SIGUSR1)));
    co_await until_exit();
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::signaled);
  EXPECT_EQ(fake_->exit()->code, SIGUSR1);
  // Only what the pipe's buffer (64 KiB) took from the queue is granted back.
  EXPECT_GE(fake_->granted(), ExecCommand::kStdinQueue);
  EXPECT_LE(fake_->granted(), ExecCommand::kStdinQueue + 64 * 1024) << "the command read nothing";
}

TEST_F(ExecSessionTest, WhatTheCommandReadsIsGrantedBackInBatchesUntilStdinEof) {
  // A client that keeps to its window: 2 MiB through cat, never more in flight than granted.
  make();
  constexpr std::size_t kTotal = 2u << 20, kFrame = 16 * 1024;
  std::size_t grants_at_eof = 0;
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("cat")));
    asio::steady_timer t(io_);
    std::uint64_t sent = 0;
    for (int waits = 0; sent < kTotal && waits < 2000;) {
      const std::uint64_t credit = fake_->granted() - sent;
      if (credit == 0) {
        ++waits;
        t.expires_after(5ms);
        co_await t.async_wait(net::use_tuple);
        continue;
      }
      const std::size_t n = std::min<std::uint64_t>({credit, kFrame, kTotal - sent});
      EXPECT_TRUE(co_await feed(MsgType::stdin_data, std::string(n, 'x')));
      sent += n;
    }
    EXPECT_EQ(sent, kTotal) << "the window stopped opening";
    grants_at_eof = fake_->windows().size();
    EXPECT_TRUE(co_await feed(MsgType::stdin_eof, std::string("")));
    co_await until_exit();
  });
  EXPECT_EQ(fake_->output(MsgType::stdout_data).size(), kTotal);
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->code, 0);
  const auto w = fake_->windows();
  ASSERT_FALSE(w.empty());
  EXPECT_EQ(w.front(), ExecCommand::kStdinQueue);
  for (auto g : w)
    EXPECT_GT(g, 0u) << "an empty grant";
  EXPECT_LE(fake_->granted(), kTotal + ExecCommand::kStdinQueue) << "granted what was not read";
  EXPECT_EQ(w.size(), grants_at_eof) << "a grant after STDIN_EOF";
}

TEST_F(ExecSessionTest, AClientThatHangsUpWhileItsInputWaitsEndsTheSession) {
  // More input than the pipe and the queue hold: the reader waits, and must notice the client
  // going away meanwhile (a FIN is not an error).
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("sleep", "30")));
    asio::steady_timer later(io_, 100ms);
    later.async_wait([&](std::error_code) { fake_->hang_up(); });
    auto h = co_await feed(MsgType::stdin_data, std::string(1 << 20, 'i'));
    EXPECT_TRUE(h && *h == Next::end) << "the reader stops: the client is gone";
    session_->end(wire::Exit::Limit::none);  // what the framed session does when its reader ends
    co_await until_exit();
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->how, wire::Exit::How::signaled);
  EXPECT_EQ(fake_->exit()->code, SIGTERM);
}

TEST_F(ExecSessionTest, EndAtShutdownIsReportedAsTheShutdownLimit) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("sleep", "30")));
    session_->end(wire::Exit::Limit::shutdown);
    co_await until_exit();
  });
  ASSERT_TRUE(fake_->exit());
  EXPECT_EQ(fake_->exit()->limit, wire::Exit::Limit::shutdown);
}

TEST_F(ExecSessionTest, InputAfterTheCommandEndedIsDropped) {
  make();
  run([&]() -> awaitable<void> {
    EXPECT_TRUE(co_await login());
    EXPECT_TRUE(co_await feed(MsgType::exec_start, command("true")));
    co_await until_exit();
    auto h = co_await feed(MsgType::stdin_data, std::string(1 << 20, 'i'));
    EXPECT_TRUE(h && *h == Next::read_on);
    EXPECT_TRUE(co_await feed(MsgType::stdin_eof, std::string("")));
    EXPECT_TRUE(co_await feed(MsgType::signal, signal_payload(SIGTERM)));
  });
}

}  // namespace
}  // namespace duplex::services
