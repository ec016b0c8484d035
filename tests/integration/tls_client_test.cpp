// The duplex client over TLS, black-box: `duplex send/exec tls://…` against an in-test TLS server
// (net::tls_accept, an upper-case echo that records what each connection showed and sent) and
// against `duplex serve --tls`. First contact, --fingerprint, --trust accept-new, a changed key,
// the prompt on a terminal, the client key, `duplex keygen`, and session resumption.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "duplex/net/socket_ops.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_identity.hpp"
#include "duplex/net/tls_stream.hpp"
#include "exec/pty_process.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

using namespace std::chrono_literals;
using net::use_tuple;

constexpr int kSendFailure = 1;    // send/chat: any failure
constexpr int kExecFailure = 255;  // exec: connection, protocol, authentication, trust

/// What one connection to the in-test server showed: the client's key, whether it resumed, and how
/// many bytes of application data it sent.
struct Seen {
  bool handshake = false;
  std::string client_key;
  bool resumed = false;
  std::size_t bytes = 0;
};

/// A TLS server on 127.0.0.1:0 (or a Unix path) that upper-cases what it reads, as the seed's
/// server does (our client's detect mode then speaks the raw protocol with it).
class TlsUpperServer {
 public:
  explicit TlsUpperServer(std::string unix_path = "")
      : id_(std::move(net::generate_identity("test server")).value()),
        ctx_(std::move(net::make_server_context(id_)).value()),
        tcp_(io_),
        unix_(io_) {
    if (unix_path.empty()) {
      tcp_.open(net::ip::tcp::v4());
      tcp_.bind(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
      tcp_.listen();
      asio::co_spawn(io_, accept_loop(tcp_), asio::detached);
    } else {
      unix_.open();
      unix_.bind(net::unix_proto::endpoint(unix_path));
      unix_.listen();
      asio::co_spawn(io_, accept_loop(unix_), asio::detached);
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsUpperServer() {
    io_.stop();
    thread_.join();
  }

  int port() const { return tcp_.local_endpoint().port(); }
  std::string url() const { return "tls://127.0.0.1:" + std::to_string(port()); }
  const std::string& fingerprint() const { return id_.fingerprint; }

  /// Waits until `n` connections have ended and returns what they showed.
  std::vector<Seen> wait_seen(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(ended_.wait_for(lock, timeout, [&] { return seen_.size() >= n; }))
        << "only " << seen_.size() << " of " << n << " connections ended";
    return seen_;
  }

 private:
  template <class Acceptor>
  asio::awaitable<void> accept_loop(Acceptor& a) {
    for (;;) {
      auto [ec, sock] = co_await a.async_accept(use_tuple);
      if (ec) co_return;
      asio::co_spawn(io_, session(std::move(sock)), asio::detached);
    }
  }

  template <class Socket>
  asio::awaitable<void> session(Socket sock) {
    net::Peer peer = net::socket_peer(sock);
    auto s =
        co_await net::tls_accept(ctx_, std::move(sock), std::move(peer), asio::const_buffer(), 5s);
    Seen seen;
    if (s) {
      seen.handshake = true;
      seen.client_key = (*s)->peer().key_fingerprint;
      seen.resumed = (*s)->session_reused();
      std::array<char, 4096> buf{};
      for (;;) {
        auto [ec, n] = co_await (*s)->read_some(asio::buffer(buf));
        if (ec) break;
        seen.bytes += n;
        std::transform(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), buf.begin(),
                       [](char c) { return static_cast<char>(std::toupper(c)); });
        auto [wec, wn] = co_await (*s)->write(asio::buffer(buf.data(), n));
        if (wec) break;
      }
      co_await (*s)->shutdown_send();
    }
    std::lock_guard lock(mu_);
    seen_.push_back(seen);
    ended_.notify_all();
  }

  net::TlsIdentity id_;
  asio::ssl::context ctx_;
  asio::io_context io_;
  net::ip::tcp::acceptor tcp_;
  net::unix_proto::acceptor unix_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable ended_;
  std::vector<Seen> seen_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

class TlsClient : public ::testing::Test {
 protected:
  /// `duplex ARGS...` with this test's config directory (known_hosts, sessions, client key).
  RunResult duplex(std::vector<std::string> args) {
    args.insert(args.begin(), duplex_bin());
    return run(std::move(args), {}, 30s, env());
  }
  std::vector<std::string> env() const { return {"XDG_CONFIG_HOME=" + dir_.path().string()}; }
  std::string known_hosts() const { return dir_.file("duplex/known_hosts"); }
  std::string pin_line(int port, const std::string& fp) const {
    return "127.0.0.1:" + std::to_string(port) + " " + fp + "\n";
  }

  TempDir dir_;
};

TEST_F(TlsClient, FirstContactWithoutATerminalIsRefusedBeforeAnythingIsSent) {
  TlsUpperServer server;
  auto r = duplex({"send", server.url(), "hello"});
  EXPECT_EQ(r.status, (ExitStatus{true, kSendFailure}));
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(server.port()) + " is not a known host (key " +
                       server.fingerprint() + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--fingerprint " + server.fingerprint()), std::string::npos) << r.err;
  EXPECT_FALSE(exists(known_hosts()));

  auto e = duplex({"exec", server.url(), "--", "true"});
  EXPECT_EQ(e.status, (ExitStatus{true, kExecFailure})) << e.err;
  EXPECT_NE(e.err.find("is not a known host"), std::string::npos) << e.err;

  const auto seen = server.wait_seen(2);
  for (const auto& s : seen) {
    EXPECT_TRUE(s.handshake);
    EXPECT_EQ(s.bytes, 0u) << "the client sent data to a server it does not trust";
  }
}

TEST_F(TlsClient, RightFingerprintPinsAndWorksWrongOneIsRefused) {
  TlsUpperServer server;
  const std::string other = "SHA256:" + std::string(42, 'Q') + "E";
  auto wrong = duplex({"send", server.url(), "hello", "--fingerprint", other});
  EXPECT_EQ(wrong.status, (ExitStatus{true, kSendFailure}));
  EXPECT_TRUE(one_line(wrong.err)) << wrong.err;
  EXPECT_NE(wrong.err.find(other), std::string::npos) << wrong.err;
  EXPECT_NE(wrong.err.find(server.fingerprint()), std::string::npos) << wrong.err;
  EXPECT_FALSE(exists(known_hosts()));

  auto right = duplex({"send", server.url(), "hello", "--fingerprint", server.fingerprint()});
  EXPECT_EQ(right.status, (ExitStatus{true, 0})) << right.err;
  EXPECT_EQ(right.out, "HELLO\n");
  EXPECT_EQ(read_file(known_hosts()), pin_line(server.port(), server.fingerprint()));
  EXPECT_EQ(mode_of(known_hosts()), 0600u);

  // Pinned: the next connection needs no option.
  auto again = duplex({"send", server.url(), "again"});
  EXPECT_EQ(again.status, (ExitStatus{true, 0})) << again.err;
  EXPECT_EQ(again.out, "AGAIN\n");

  auto bad = duplex({"send", server.url(), "x", "--fingerprint", "SHA256:nope"});
  EXPECT_EQ(bad.status, (ExitStatus{true, 2})) << "a malformed --fingerprint is a usage error";
}

TEST_F(TlsClient, AcceptNewPinsInAPrivateFile) {
  TlsUpperServer server;
  auto r = duplex({"-v", "send", server.url(), "hello", "--trust", "accept-new"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HELLO\n");
  EXPECT_NE(
      r.err.find("pinned 127.0.0.1:" + std::to_string(server.port()) + " " + server.fingerprint()),
      std::string::npos)
      << r.err;
  EXPECT_EQ(read_file(known_hosts()), pin_line(server.port(), server.fingerprint()));
  EXPECT_EQ(mode_of(known_hosts()), 0600u);
  EXPECT_EQ(mode_of(dir_.file("duplex")), 0700u);
}

TEST_F(TlsClient, ChangedKeyIsRefusedEvenWithAcceptNew) {
  TlsUpperServer server;
  const std::string old_key = "SHA256:" + std::string(42, 'Z') + "E";
  ASSERT_EQ(::mkdir(dir_.file("duplex").c_str(), 0700), 0);
  {
    std::ofstream f(known_hosts());
    f << "# pinned earlier\n" << pin_line(server.port(), old_key);
  }
  ASSERT_EQ(::chmod(known_hosts().c_str(), 0600), 0);
  const std::string before = read_file(known_hosts());

  auto r = duplex({"send", server.url(), "hello", "--trust", "accept-new"});
  EXPECT_EQ(r.status, (ExitStatus{true, kSendFailure}));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_EQ(r.err, "duplex: the key of 127.0.0.1:" + std::to_string(server.port()) +
                       " has changed: known_hosts (line 2) has " + old_key +
                       ", the server showed " + server.fingerprint() +
                       ". If that is expected, remove the line from " + known_hosts() + ".\n");

  auto e = duplex({"exec", server.url(), "--trust", "accept-new", "--", "true"});
  EXPECT_EQ(e.status, (ExitStatus{true, kExecFailure})) << e.err;
  EXPECT_NE(e.err.find("has changed"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find(old_key), std::string::npos) << e.err;
  EXPECT_NE(e.err.find(server.fingerprint()), std::string::npos) << e.err;

  EXPECT_EQ(read_file(known_hosts()), before);
  for (const auto& s : server.wait_seen(2))
    EXPECT_EQ(s.bytes, 0u);
}

TEST_F(TlsClient, PromptOnATerminalYesPinsNoRefuses) {
  TlsUpperServer server;
  const std::string question =
      "The authenticity of 127.0.0.1:" + std::to_string(server.port()) + " can't be established.";
  {
    PtyProcess no({duplex_bin(), "send", server.url(), "hello"}, env(), 24, 80);
    ASSERT_TRUE(no.wait_for("Trust it and remember it (yes/no)? ")) << no.screen();
    EXPECT_NE(no.screen().find(question), std::string::npos) << no.screen();
    EXPECT_NE(no.screen().find("Its key fingerprint is " + server.fingerprint() + "."),
              std::string::npos)
        << no.screen();
    no.type("no\n");
    EXPECT_EQ(no.wait(), (ExitStatus{true, kSendFailure})) << no.screen();
    EXPECT_NE(no.screen().find("not trusted"), std::string::npos) << no.screen();
    EXPECT_EQ(no.screen().find("HELLO"), std::string::npos);
    EXPECT_FALSE(exists(known_hosts()));
  }
  {
    PtyProcess strict({duplex_bin(), "send", server.url(), "hello", "--trust", "strict"}, env(), 24,
                      80);
    EXPECT_EQ(strict.wait(), (ExitStatus{true, kSendFailure})) << strict.screen();
    EXPECT_EQ(strict.screen().find("(yes/no)"), std::string::npos) << "strict never asks";
    EXPECT_NE(strict.screen().find("is not a known host"), std::string::npos) << strict.screen();
  }
  {
    PtyProcess yes({duplex_bin(), "send", server.url(), "hello"}, env(), 24, 80);
    ASSERT_TRUE(yes.wait_for("(yes/no)? ")) << yes.screen();
    yes.type("yes\n");
    EXPECT_TRUE(yes.wait_for("HELLO")) << yes.screen();
    EXPECT_EQ(yes.wait(), (ExitStatus{true, 0})) << yes.screen();
    EXPECT_EQ(read_file(known_hosts()), pin_line(server.port(), server.fingerprint()));
  }
}

TEST_F(TlsClient, KeygenMakesAPrivateKeyAndRefusesToOverwriteIt) {
  const std::string key = dir_.file("duplex/id_ed25519");
  auto r = duplex({"keygen"});
  ASSERT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(dir_.file("duplex")), 0700u);
  ASSERT_TRUE(one_line(r.out)) << r.out;
  const std::string fp = r.out.substr(0, r.out.find(' '));
  EXPECT_NE(r.out.find('@'), std::string::npos) << "a user@host comment: " << r.out;
  auto loaded = net::load_identity(key, key);
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(loaded->fingerprint, fp);
  EXPECT_EQ(*net::key_fingerprint(loaded->key.get()), fp);

  const std::string before = read_file(key);
  auto again = duplex({"keygen"});
  EXPECT_EQ(again.status, (ExitStatus{true, 1}));
  EXPECT_TRUE(one_line(again.err)) << again.err;
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_EQ(read_file(key), before);

  auto forced = duplex({"keygen", "--force"});
  EXPECT_EQ(forced.status, (ExitStatus{true, 0})) << forced.err;
  EXPECT_NE(forced.out.substr(0, forced.out.find(' ')), fp);
  EXPECT_EQ(mode_of(key), 0600u);

  const std::string other = dir_.file("elsewhere.pem");
  auto f = duplex({"keygen", "-f", other});
  EXPECT_EQ(f.status, (ExitStatus{true, 0})) << f.err;
  EXPECT_EQ(mode_of(other), 0600u);
}

TEST_F(TlsClient, PresentsTheClientKeyNamedOrTheDefaultOne) {
  TlsUpperServer server;
  auto none = duplex({"send", server.url(), "a", "--fingerprint", server.fingerprint()});
  ASSERT_EQ(none.status, (ExitStatus{true, 0})) << none.err;

  const std::string named = dir_.file("alice.pem");
  auto k1 = duplex({"keygen", "-f", named});
  ASSERT_EQ(k1.status, (ExitStatus{true, 0})) << k1.err;
  auto with_named = duplex({"send", server.url(), "b", "-i", named});
  ASSERT_EQ(with_named.status, (ExitStatus{true, 0})) << with_named.err;

  auto k2 = duplex({"keygen"});
  ASSERT_EQ(k2.status, (ExitStatus{true, 0})) << k2.err;
  auto with_default = duplex({"send", server.url(), "c"});
  ASSERT_EQ(with_default.status, (ExitStatus{true, 0})) << with_default.err;

  const auto seen = server.wait_seen(3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].client_key, "");
  EXPECT_EQ(seen[1].client_key, k1.out.substr(0, k1.out.find(' ')));
  EXPECT_EQ(seen[2].client_key, k2.out.substr(0, k2.out.find(' ')));

  auto missing = duplex({"send", server.url(), "d", "-i", dir_.file("nope.pem")});
  EXPECT_EQ(missing.status, (ExitStatus{true, kSendFailure}));
  EXPECT_NE(missing.err.find("nope.pem"), std::string::npos) << missing.err;
}

TEST_F(TlsClient, SecondConnectionResumesTheSession) {
  TlsUpperServer server;
  auto first = duplex({"-vv", "send", server.url(), "one", "--trust", "accept-new"});
  ASSERT_EQ(first.status, (ExitStatus{true, 0})) << first.err;
  EXPECT_NE(first.err.find("TLS full handshake with"), std::string::npos) << first.err;
  EXPECT_EQ(mode_of(dir_.file("duplex/tls_sessions")), 0600u);
  auto second = duplex({"-vv", "send", server.url(), "two"});
  ASSERT_EQ(second.status, (ExitStatus{true, 0})) << second.err;
  EXPECT_EQ(second.out, "TWO\n");
  EXPECT_NE(second.err.find("TLS resumed with"), std::string::npos) << second.err;
  const auto seen = server.wait_seen(2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].resumed);
  EXPECT_TRUE(seen[1].resumed) << "the server saw a full handshake the second time";

  // --tls with a scheme-less address is the same server: its session is resumed too.
  auto flag = duplex({"-vv", "send", "--tls", "127.0.0.1:" + std::to_string(server.port()), "3"});
  ASSERT_EQ(flag.status, (ExitStatus{true, 0})) << flag.err;
  EXPECT_NE(flag.err.find("TLS resumed"), std::string::npos) << flag.err;
}

TEST_F(TlsClient, TlsFlagAndUnixSocket) {
  TlsUpperServer server;
  auto r = duplex({"send", "--tls", "127.0.0.1:" + std::to_string(server.port()), "hi",
                   "--fingerprint", server.fingerprint()});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "HI\n");

  const std::string path = dir_.file("tls.sock");
  TlsUpperServer unix_server(path);
  auto u = duplex({"send", "tls+unix://" + path, "hi", "--fingerprint", unix_server.fingerprint()});
  EXPECT_EQ(u.status, (ExitStatus{true, 0})) << u.err;
  EXPECT_EQ(u.out, "HI\n");
  // The socket is pinned by its path (issue 10): known from now on, with no option.
  EXPECT_NE(read_file(known_hosts()).find(path + " " + unix_server.fingerprint() + "\n"),
            std::string::npos)
      << read_file(known_hosts());
  auto known = duplex({"send", "tls+unix://" + path, "again"});
  EXPECT_EQ(known.status, (ExitStatus{true, 0})) << known.err;
  EXPECT_EQ(known.out, "AGAIN\n");
  // First contact with accept-new pins a socket as it pins a host:port.
  const std::string other_path = dir_.file("tls2.sock");
  TlsUpperServer other(other_path);
  auto refused = duplex({"send", "tls+unix://" + other_path, "hi"});
  EXPECT_EQ(refused.status, (ExitStatus{true, kSendFailure})) << "unknown, nobody to ask";
  EXPECT_NE(refused.err.find("--fingerprint " + other.fingerprint()), std::string::npos)
      << refused.err;
  auto accepted = duplex({"send", "tls+unix://" + other_path, "hi", "--trust", "accept-new"});
  EXPECT_EQ(accepted.status, (ExitStatus{true, 0})) << accepted.err;
  auto pinned = duplex({"send", "tls+unix://" + other_path, "hi"});
  EXPECT_EQ(pinned.status, (ExitStatus{true, 0})) << pinned.err;

  auto udp = duplex({"send", "udp://127.0.0.1:9", "hi", "--tls"});
  EXPECT_EQ(udp.status, (ExitStatus{true, 2})) << "--tls on a datagram address is a usage error";
}

// End to end with the real server: `duplex serve --tls`, its fingerprint from `duplex fingerprint`.
TEST_F(TlsClient, SendToDuplexServeTls) {
  const std::string key = dir_.file("server_key.pem");
  const std::string cert = dir_.file("server_cert.pem");
  TestServer server({"--tls", "--tls-key", key, "--tls-cert", cert});
  auto fp = duplex({"fingerprint", "--tls-key", key});
  ASSERT_EQ(fp.status, (ExitStatus{true, 0})) << fp.err;
  ASSERT_TRUE(one_line(fp.out)) << fp.out;
  const std::string fingerprint = fp.out.substr(0, fp.out.size() - 1);
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());

  auto refused = duplex({"send", url, "hello"});
  EXPECT_EQ(refused.status, (ExitStatus{true, kSendFailure}));
  EXPECT_NE(refused.err.find(fingerprint), std::string::npos) << refused.err;

  auto first = duplex({"-vv", "send", url, "hello", "world", "--fingerprint", fingerprint});
  EXPECT_EQ(first.status, (ExitStatus{true, 0})) << first.err;
  EXPECT_EQ(first.out, "HELLO\nWORLD\n");
  auto second = duplex({"-vv", "send", url, "again"});
  EXPECT_EQ(second.status, (ExitStatus{true, 0})) << second.err;
  EXPECT_EQ(second.out, "AGAIN\n");
  EXPECT_NE(second.err.find("TLS resumed with"), std::string::npos) << second.err;
}

}  // namespace
}  // namespace duplex::test
