// Exec authentication over TLS, end to end with real processes: a TLS relay that the client was
// told to trust cannot forward the token's challenge-response (the proofs are bound to each
// connection's TLS secrets); client keys through `duplex exec -i` against --authorized-keys
// (from=, command=); protected mode on loopback with and without --tls-only.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "duplex/net/endpoint.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_identity.hpp"
#include "duplex/net/tls_stream.hpp"
#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

using auth::hex_of;
using auth::holds_no_trace_of;

using namespace std::chrono_literals;
using net::use_tuple;

constexpr int kExecFailure = 255;
constexpr std::uint16_t kTlsRequired = 37;  // errc::tls_required (PROTOCOL.md §6)

// Frame types in one direction of a recording: `skip` is 4 for the client's (its preface).
std::vector<std::uint8_t> frame_types(const std::string& rec, std::size_t skip) {
  std::vector<std::uint8_t> out;
  std::size_t pos = skip;
  while (pos + 6 <= rec.size()) {
    const std::uint32_t n = get_be32(rec, pos);
    out.push_back(static_cast<std::uint8_t>(rec[pos + 4]));
    pos += 6 + n;
  }
  return out;
}

bool contains(const std::vector<std::uint8_t>& v, std::uint8_t t) {
  return std::find(v.begin(), v.end(), t) != v.end();
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A man in the middle over TLS: it shows the client its own key (the one the client was told to
// trust: a user who accepted an impostor), dials the real server as an ordinary TLS client, and
// forwards the decrypted bytes both ways, recording them. One connection.
class TlsRecordingRelay {
 public:
  explicit TlsRecordingRelay(int target_port)
      : id_(std::move(net::generate_identity("impostor")).value()),
        server_ctx_(std::move(net::make_server_context(id_)).value()),
        client_ctx_(std::move(net::TlsClientContext::create(nullptr)).value()),
        target_(std::move(net::parse_endpoint("tcp://127.0.0.1:" + std::to_string(target_port)))
                    .value()),
        acceptor_(io_) {
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.bind(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    asio::co_spawn(io_, relay_one(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsRecordingRelay() {
    io_.stop();
    thread_.join();
  }

  std::string url() const {
    return "tls://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  const std::string& fingerprint() const { return id_.fingerprint; }

  /// Waits until both directions have ended (or the relay failed); false on timeout.
  bool wait_done(std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lock(mu_);
    return done_cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  // Read after wait_done().
  std::string up() {
    std::lock_guard lock(mu_);
    return up_;
  }
  std::string down() {
    std::lock_guard lock(mu_);
    return down_;
  }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }
  /// The key the real server showed the relay.
  std::string server_key() {
    std::lock_guard lock(mu_);
    return server_key_;
  }

 private:
  using StreamPtr = std::shared_ptr<net::TlsStream>;

  void fail(std::string why) {
    std::lock_guard lock(mu_);
    error_ = std::move(why);
    done_ = true;
    done_cv_.notify_all();
  }

  asio::awaitable<void> relay_one() {
    auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
    if (ec) co_return fail("accept: " + ec.message());
    net::Peer peer = net::socket_peer(sock);
    auto client = co_await net::tls_accept(server_ctx_, std::move(sock), std::move(peer),
                                           asio::const_buffer(), 10s);
    if (!client) co_return fail(client.message());
    auto server = co_await net::tls_dial(*client_ctx_, target_, 10s);
    if (!server) co_return fail(server.message());
    {
      std::lock_guard lock(mu_);
      server_key_ = (*server)->peer().key_fingerprint;
    }
    StreamPtr c = std::move(*client), s = std::move(*server);
    asio::co_spawn(io_, pump(c, s, up_), asio::detached);
    asio::co_spawn(io_, pump(s, c, down_), asio::detached);
  }

  // One direction; its end is passed on as a half close, so the other direction ends when the
  // far side answers it.
  asio::awaitable<void> pump(StreamPtr from, StreamPtr to, std::string& rec) {
    std::array<char, 16384> buf{};
    for (;;) {
      auto [ec, n] = co_await from->read_some(asio::buffer(buf));
      if (ec || n == 0) break;
      {
        std::lock_guard lock(mu_);
        rec.append(buf.data(), n);
      }
      auto [wec, wn] = co_await to->write(asio::buffer(buf.data(), n));
      if (wec) break;
    }
    co_await to->shutdown_send();
    std::lock_guard lock(mu_);
    if (++ended_ == 2) {
      from->close();
      to->close();
      done_ = true;
      done_cv_.notify_all();
    }
  }

  net::TlsIdentity id_;
  asio::ssl::context server_ctx_;
  std::unique_ptr<net::TlsClientContext> client_ctx_;
  net::Endpoint target_;
  asio::io_context io_;
  net::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
  int ended_ = 0;
  std::string up_, down_, error_, server_key_;
};

// XDG_CONFIG_HOME for the children started in its scope. The test binary points it at one temp
// dir shared by every test (exec_fixture.cpp), and run()'s extra variables come after the
// inherited ones, where getenv never looks: each side's own directory has to be set here.
class ConfigHome {
 public:
  explicit ConfigHome(const std::string& dir) {
    if (const char* old = std::getenv("XDG_CONFIG_HOME")) old_ = old;
    ::setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  }
  ~ConfigHome() {
    if (old_)
      ::setenv("XDG_CONFIG_HOME", old_->c_str(), 1);
    else
      ::unsetenv("XDG_CONFIG_HOME");
  }
  ConfigHome(const ConfigHome&) = delete;
  ConfigHome& operator=(const ConfigHome&) = delete;

 private:
  std::optional<std::string> old_;
};

// Each side's files: the server's key and token, the client's config directory (known_hosts,
// TLS sessions, its keys).
class TlsAuth : public ::testing::Test {
 protected:
  /// `duplex serve --exec` with its key and token in the server's directory, which is also its
  /// XDG_CONFIG_HOME.
  std::unique_ptr<TestServer> serve(std::vector<std::string> more) const {
    std::vector<std::string> args{"--exec", "--tls-key", server_dir_.file("server_key.pem"),
                                  "--token-file", server_dir_.file("token")};
    args.insert(args.end(), more.begin(), more.end());
    ConfigHome home(server_dir_.path().string());
    return std::make_unique<TestServer>(args);
  }
  std::string token() const { return first_line(server_dir_.file("token")); }
  std::string config() const { return client_dir_.path().string(); }

  /// `duplex exec FLAGS URL -- COMMAND` with the client's own config directory and no token
  /// in the environment (a token comes only from a flag).
  RunResult exec(std::vector<std::string> flags, const std::string& url,
                 std::vector<std::string> command) const {
    std::vector<std::string> argv{duplex_bin(), "exec"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(url);
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    ConfigHome home(config());
    return run(argv, {}, 30s, {"DUPLEX_TOKEN="});
  }

  /// `duplex keygen -f PATH` in the client's directory; returns the fingerprint it printed.
  std::string keygen(const std::string& name) const {
    ConfigHome home(config());
    const auto r = run({duplex_bin(), "keygen", "-f", client_dir_.file(name)});
    EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
    return r.out.substr(0, r.out.find(' '));
  }

  std::string authorized_keys(const std::string& lines) const {
    const std::string path = server_dir_.file("authorized_keys");
    write_file(path, lines);
    return path;
  }

  static std::string tls_url(const TestServer& s) {
    return "tls://127.0.0.1:" + std::to_string(s.port());
  }

  TempDir server_dir_, client_dir_;
};

// 1. The relay holds a key the client trusts, so the client's TLS check passes; the token's
// exchange is what catches it: the server's proof is bound to the relay-server channel, the client
// checks it against the client-relay channel, and stops before it proves anything itself.
TEST_F(TlsAuth, ATlsRelayTheClientTrustsCannotForwardTheTokenExchange) {
  auto server = serve({"--tls-only", "-v"});
  const std::string marker = client_dir_.file("ran");
  const std::vector<std::string> command{"sh", "-c", "touch " + marker + "; echo hi"};
  const std::string token_file = server_dir_.file("token");

  TlsRecordingRelay relay(server->port());
  const auto r = exec({"--token-file", token_file, "--fingerprint", relay.fingerprint()},
                      relay.url(), command);
  EXPECT_EQ(r.status, (ExitStatus{true, kExecFailure})) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("does not know the token: it may be an impostor"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  ASSERT_TRUE(relay.wait_done()) << "the relay's connections did not end";
  ASSERT_EQ(relay.error(), "");
  EXPECT_EQ(relay.server_key(), server->fingerprint());
  // The exchange did cross the relay: the client's AUTH_START, the server's AUTH_CHALLENGE.
  const std::string up = relay.up(), down = relay.down();
  const auto up_types = frame_types(up, 4), down_types = frame_types(down, 0);
  EXPECT_TRUE(contains(up_types, msg::auth_start)) << hex_of(up);
  EXPECT_TRUE(contains(down_types, msg::auth_challenge)) << hex_of(down);
  EXPECT_FALSE(contains(up_types, msg::auth_proof)) << "a proof for an unproved server";
  EXPECT_FALSE(contains(up_types, msg::exec_start));
  EXPECT_FALSE(contains(down_types, msg::auth_ok));
  EXPECT_TRUE(holds_no_trace_of(up + down, token()));

  EXPECT_FALSE(exists(marker)) << "the command ran";
  // The server's side of it: the relay's session ended without authentication (the client left
  // after the challenge; only -v shows that session), and nobody authenticated.
  EXPECT_TRUE(server->wait_stderr("): closed, ")) << server->stderr_text();
  EXPECT_EQ(server->stderr_text().find("authenticated as"), std::string::npos)
      << server->stderr_text();

  // Control: the same client, the same token, straight to the server.
  const auto direct = exec({"--token-file", token_file, "--fingerprint", server->fingerprint()},
                           tls_url(*server), command);
  EXPECT_EQ(direct.status, (ExitStatus{true, 0})) << direct.err;
  EXPECT_EQ(direct.out, "hi\n");
  EXPECT_TRUE(exists(marker));
  EXPECT_TRUE(server->wait_stderr("authenticated as token")) << server->stderr_text();
  // The client's own directory took the pin (not the test binary's shared one).
  EXPECT_NE(file_text(client_dir_.file("duplex/known_hosts"))
                .find("127.0.0.1:" + std::to_string(server->port()) + " " + server->fingerprint()),
            std::string::npos);
}

// 2. A client key in authorized_keys is enough: no token anywhere on the client's side.
TEST_F(TlsAuth, AnAuthorizedKeyRunsWithoutATokenAndAnUnknownOneIsRefused) {
  const std::string alice = keygen("alice");
  const std::string mallory = keygen("mallory");
  ASSERT_NE(alice, mallory);
  auto server =
      serve({"--tls-only", "--authorized-keys", authorized_keys(alice + " alice@laptop\n")});
  const std::string fp = server->fingerprint();

  const auto r =
      exec({"-i", client_dir_.file("alice"), "--fingerprint", fp}, tls_url(*server), {"id", "-u"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, std::to_string(::geteuid()) + "\n");
  EXPECT_TRUE(server->wait_stderr("authenticated as key " + alice + " (alice@laptop)"))
      << server->stderr_text();

  const auto refused = exec({"-i", client_dir_.file("mallory"), "--fingerprint", fp},
                            tls_url(*server), {"id", "-u"});
  EXPECT_EQ(refused.status, (ExitStatus{true, kExecFailure})) << refused.err;
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_TRUE(server->wait_stderr("unknown key " + mallory)) << server->stderr_text();
  EXPECT_EQ(server->stderr_text().find("authenticated as key " + mallory), std::string::npos)
      << server->stderr_text();
}

TEST_F(TlsAuth, FromRestrictsTheKeyToItsAddresses) {
  const std::string bob = keygen("bob");
  auto server = serve({"--tls-only", "--authorized-keys",
                       authorized_keys("from=\"10.0.0.0/8\" " + bob + " bob\n")});
  const auto r = exec({"-i", client_dir_.file("bob"), "--fingerprint", server->fingerprint()},
                      tls_url(*server), {"id", "-u"});
  EXPECT_EQ(r.status, (ExitStatus{true, kExecFailure})) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(server->wait_stderr("key " + bob + " (bob): address 127.0.0.1 refused by from="))
      << server->stderr_text();
  EXPECT_EQ(server->stderr_text().find("authenticated as"), std::string::npos)
      << server->stderr_text();
}

TEST_F(TlsAuth, ACommandRestrictionRunsInsteadAndSeesTheOriginalCommand) {
  const std::string carol = keygen("carol");
  const std::string dave = keygen("dave");
  auto server = serve({"--tls-only", "--authorized-keys",
                       authorized_keys("command=\"echo forced\" " + carol + " carol\n" +
                                       "command=\"printf %s \\\"$DUPLEX_ORIGINAL_COMMAND\\\"\" " +
                                       dave + " dave\n")});
  const std::string fp = server->fingerprint();

  const auto forced =
      exec({"-i", client_dir_.file("carol"), "--fingerprint", fp}, tls_url(*server), {"id"});
  EXPECT_EQ(forced.status, (ExitStatus{true, 0})) << forced.err;
  EXPECT_EQ(forced.out, "forced\n") << "id ran?";
  EXPECT_TRUE(server->wait_stderr("authenticated as key " + carol + " (carol) (forced command"))
      << server->stderr_text();

  const auto original =
      exec({"-i", client_dir_.file("dave"), "--fingerprint", fp}, tls_url(*server), {"id"});
  EXPECT_EQ(original.status, (ExitStatus{true, 0})) << original.err;
  EXPECT_EQ(original.out, "id");
}

// 3. Protected mode: loopback is a protected channel, so a plaintext framed client and a TLS
// client both get exec beside each other; --tls-only turns the plaintext one away.
TEST_F(TlsAuth, OnLoopbackPlaintextAndTlsBothRunCommandsAndTlsOnlyRefusesPlaintext) {
  {
    auto server = serve({"--tls"});
    ExecRequest req;
    req.argv = {"echo", "plain"};
    const auto o = exec_once(server->url(), token(), req);
    EXPECT_TRUE(exited_with(o, 0));
    EXPECT_EQ(o.out, "plain\n");
    EXPECT_EQ(o.identity, std::optional<std::string>("token"));

    const auto r =
        exec({"--token-file", server_dir_.file("token"), "--fingerprint", server->fingerprint()},
             tls_url(*server), {"echo", "tls"});
    EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
    EXPECT_EQ(r.out, "tls\n");
  }
  auto tls_only = serve({"--tls-only"});
  ExecClient c(tls_only->url());
  c.send(preface_and_hello("plain-client"));
  auto& o = c.finish();
  EXPECT_TRUE(refused_with(o, kTlsRequired));
  EXPECT_NE(o.error ? o.error->text.find("tls://") : std::string::npos, std::string::npos)
      << (o.error ? o.error->text : "no ERROR");
  const auto r =
      exec({"--token-file", server_dir_.file("token"), "--fingerprint", tls_only->fingerprint()},
           tls_url(*tls_only), {"echo", "tls"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "tls\n");
}

}  // namespace
}  // namespace duplex::test
