// The server over TLS (issue 7): clients nobody here wrote (openssl s_client, socat) and our own
// net::tls_dial speaking frames, on TCP and Unix listeners; the key made 0600 on first use and
// its fingerprint (printed, `duplex fingerprint`, seen by clients); --tls-only refusing
// plaintext with clear errors; hostile handshakes and the early drop of pending connections.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "duplex/net/endpoint.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_stream.hpp"
#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"
#include "support/tls_talk.hpp"

namespace duplex::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kTlsRequired = 37;  // errc::tls_required (PROTOCOL.md)

using duplex::test::tls_talk;  // the support one, beside this overload

// Reads until `want` bytes came.
TlsTalk tls_talk(const std::string& url, const std::string& send, std::size_t want) {
  return tls_talk(url, send, [want](const std::string& r) { return r.size() >= want; });
}

// The frames in `bytes`, in order (a trailing partial frame is ignored).
std::vector<RawFrame> split_frames(std::string_view bytes) {
  std::vector<RawFrame> out;
  while (bytes.size() >= 6) {
    const std::uint32_t n = get_be32(bytes, 0);
    if (bytes.size() < 6 + static_cast<std::size_t>(n)) break;
    RawFrame f;
    f.type = static_cast<std::uint8_t>(bytes[4]);
    f.flags = static_cast<std::uint8_t>(bytes[5]);
    f.payload = std::string(bytes.substr(6, n));
    out.push_back(std::move(f));
    bytes.remove_prefix(6 + n);
  }
  return out;
}

// HELLO then UPPER_REQUEST over TLS: WELCOME, then the upper-cased reply.
::testing::AssertionResult serves_framed_over_tls(const std::string& url,
                                                  const std::string& message = "framed in tls") {
  const auto talk = tls_talk(url, preface_and_hello() + frame(msg::upper_request, message),
                             [](const std::string& r) { return split_frames(r).size() >= 2; });
  if (!talk.error.empty()) return ::testing::AssertionFailure() << talk.error;
  const auto frames = split_frames(talk.received);
  if (frames.size() < 2) return ::testing::AssertionFailure() << "fewer than two frames";
  if (frames[0].type != msg::welcome)
    return ::testing::AssertionFailure() << "no WELCOME, type " << unsigned{frames[0].type};
  if (frames[1].type != msg::upper_reply || frames[1].payload != ascii_upper(message))
    return ::testing::AssertionFailure()
           << "bad reply: type " << unsigned{frames[1].type} << " '" << frames[1].payload << "'";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult serves_raw_over_tls(const std::string& url,
                                               const std::string& message = "raw in tls") {
  const auto talk = tls_talk(url, message, message.size());
  if (!talk.error.empty()) return ::testing::AssertionFailure() << talk.error;
  if (talk.received != ascii_upper(message))
    return ::testing::AssertionFailure() << "got '" << talk.received << "'";
  return ::testing::AssertionSuccess();
}

std::string tls_url(const TestServer& server, std::size_t i = 0) {
  return "tls://127.0.0.1:" + std::to_string(server.port(i));
}

class TlsServer : public ::testing::Test {
 protected:
  std::vector<std::string> tls_args(std::vector<std::string> more = {}) {
    std::vector<std::string> args{"--tls", "--tls-key", key()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  std::string key() const { return dir_.file("conf/server_key.pem"); }
  TempDir dir_;
};

TEST_F(TlsServer, OpensslSClientTypingHelloGetsHELLO) {
  TestServer server(tls_args());
  Process client(
      {"openssl", "s_client", "-quiet", "-connect", "127.0.0.1:" + std::to_string(server.port())});
  client.write_stdin("hello\n");
  EXPECT_EQ(client.read_line(10s), std::optional<std::string>("HELLO"));
  // -quiet implies -ign_eof: s_client stays until it is told to go.
  client.signal(SIGTERM);
  EXPECT_TRUE(client.wait(10s).has_value());
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
}

TEST_F(TlsServer, SocatGetsUpper) {
  TestServer server(tls_args());
  const auto r =
      run({"socat", "-", "OPENSSL:127.0.0.1:" + std::to_string(server.port()) + ",verify=0"},
          "hello\n", 20s);
  EXPECT_EQ(r.out, "HELLO\n") << r.err;
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
}

TEST_F(TlsServer, FramedAndRawOverTlsAndPlainBesideThem) {
  TestServer server(tls_args());
  EXPECT_TRUE(serves_framed_over_tls(tls_url(server)));
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server)));
  // --tls without --tls-only: plaintext clients on the same port are still served.
  EXPECT_TRUE(serves_raw(server.url(), "plain beside tls"));
  EXPECT_TRUE(serves_framed(server.url()));
}

TEST_F(TlsServer, RawAndFramedOverTlsOnAUnixListener) {
  const std::string path = dir_.file("tls.sock");
  TestServer server(tls_args({"--listen", "unix://" + path}));
  EXPECT_TRUE(serves_raw_over_tls("tls+unix://" + path));
  EXPECT_TRUE(serves_framed_over_tls("tls+unix://" + path));
}

TEST_F(TlsServer, KeyMadeOwnerOnlyAndItsFingerprintIsTheOneEveryoneSees) {
  TestServer server(tls_args());
  EXPECT_EQ(server.fingerprint().rfind("SHA256:", 0), 0u) << server.fingerprint();
  struct stat st {};
  ASSERT_EQ(::stat(key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(server.wait_stderr("new key"));
  const auto printed = run({duplex_bin(), "fingerprint", "--tls-key", key()});
  EXPECT_EQ(printed.status, (ExitStatus{true, 0})) << printed.err;
  EXPECT_EQ(printed.out, server.fingerprint() + "\n");
  const auto talk = tls_talk(tls_url(server), "x", 1);
  EXPECT_EQ(talk.error, "");
  EXPECT_EQ(talk.fingerprint, server.fingerprint());
  // A restart keeps the key: the pin stays valid.
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  TestServer again(tls_args());
  EXPECT_EQ(again.fingerprint(), server.fingerprint());
}

TEST_F(TlsServer, FingerprintWithoutAKeySaysHowToMakeOne) {
  const auto r = run({duplex_bin(), "fingerprint", "--tls-key", key()});
  EXPECT_EQ(r.status, (ExitStatus{true, 1}));
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("no server key at " + key()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("duplex serve --tls"), std::string::npos) << r.err;
}

TEST_F(TlsServer, TlsOnlyRefusesAPlaintextRawClientWithOneLine) {
  TestServer server({"--tls-only", "--tls-key", key()});
  SocketClient c(server.url());
  c.send_all("hello\n");
  EXPECT_EQ(
      c.recv_until_eof(),
      "duplex: this port takes TLS clients only (try: openssl s_client -connect HOST:PORT)\n");
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server)));
}

TEST_F(TlsServer, TlsOnlyRefusesAPlaintextFramedClientWithAnError) {
  TestServer server({"--tls-only", "--tls-key", key()});
  SocketClient c(server.url());
  c.send_all(preface_and_hello());
  const RawFrame f = read_frame(c);
  ASSERT_EQ(f.type, msg::error);
  const auto e = parse_error(f.payload);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, kTlsRequired);
  EXPECT_EQ(e->text, "this listener takes TLS clients only; connect with tls://HOST:PORT");
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_TRUE(serves_framed_over_tls(tls_url(server)));
}

TEST_F(TlsServer, GarbageAfterTheHandshakeByteHarmsNothing) {
  TestServer server(tls_args());
  SocketClient junk(server.url());
  junk.send_all(std::string("\x16") + std::string(300, '\x7f'));
  EXPECT_TRUE(junk.wait_closed(5s));
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server)));
  EXPECT_TRUE(serves_framed(server.url()));
}

TEST_F(TlsServer, TruncatedClientHelloIsClosedAtTheDeadlineAndHarmsNothing) {
  TestServer server(tls_args({"--auth-timeout", "1"}));
  SocketClient stuck(server.url());
  // A handshake record announcing 512 bytes, of which only a few come: then silence.
  stuck.send_all(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  const auto sent = Clock::now();
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server), "during"));
  EXPECT_TRUE(stuck.wait_closed(5s));
  const auto held = Clock::now() - sent;
  EXPECT_GE(held, 800ms);
  EXPECT_LE(held, 2500ms) << "the handshake deadline is 1 s";
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server), "after"));
}

// A trickle does not extend the handshake's deadline.
TEST_F(TlsServer, TricklingHandshakeIsClosedAtTheDeadline) {
  TestServer server(tls_args({"--auth-timeout", "1"}));
  SocketClient slow(server.url());
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  const auto start = Clock::now();
  bool closed = false;
  for (std::size_t i = 0; i < 40 && !closed; ++i) {
    try {
      slow.send_all(std::string(1, i < hello.size() ? hello[i] : '\x00'));
    } catch (const std::exception&) {
      closed = true;
      break;
    }
    closed = slow.wait_closed(100ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_LE(Clock::now() - start, 2500ms);
}

TEST_F(TlsServer, EarlyDropClosesTheOldestPendingConnectionsNeverTheNewOne) {
  // One worker: sessions start in the order they were accepted, which is the order they connected.
  TestServer server(tls_args({"--max-unauthenticated", "5", "--threads", "1"}));
  std::vector<SocketClient> silent;
  for (int i = 0; i < 20; ++i) {
    silent.emplace_back(server.url());
  }
  EXPECT_TRUE(serves_raw_over_tls(tls_url(server), "honest"));
  // 20 silent + 1 honest against a cap of 5: the first 16 silent ones were dropped.
  for (std::size_t i = 0; i < 16; ++i)
    EXPECT_TRUE(silent[i].wait_closed(5s)) << "silent " << i;
  for (std::size_t i = 16; i < 20; ++i)
    EXPECT_FALSE(silent[i].wait_closed(200ms)) << "silent " << i;
  EXPECT_TRUE(server.wait_stderr("--max-unauthenticated"));
  // A raw client settles at its first byte: it no longer counts, and is not dropped later.
  SocketClient typed(server.url());
  typed.send_all("typed");
  EXPECT_EQ(typed.recv_exact(5), "TYPED");
  for (int i = 0; i < 8; ++i)
    silent.emplace_back(server.url());
  typed.send_all("still");
  EXPECT_EQ(typed.recv_exact(5), "STILL");
}

}  // namespace
}  // namespace duplex::test
