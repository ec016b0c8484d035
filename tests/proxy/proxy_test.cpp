// `duplex serve --proxy-protocol` with PROXY headers written by hand (HAProxy's spec, not our
// codec) over real sockets: the carried client replaces the peer (DUPLEX_CLIENT, the audit line,
// the per-address cap, the penalty box, exec's Unix-socket credentials); a peer not trusted to
// send a header is refused for sending one and served for not; truncated, oversized, garbage and
// slow headers are refused without harming anyone else.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"
#include "support/exec_frames.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

// "PROXY TCP4 SRC 127.0.0.1 SPORT 8080\r\n" (v1, spec 2.1).
std::string v1(std::string_view src, int sport, std::string_view proto = "TCP4",
               std::string_view dst = "127.0.0.1") {
  return "PROXY " + std::string(proto) + " " + std::string(src) + " " + std::string(dst) + " " +
         std::to_string(sport) + " 8080\r\n";
}

// v2 (spec 2.2): the signature, version 2 and `command`, `family`, the length, then `body`.
std::string v2(std::uint8_t command, std::uint8_t family, std::string_view body) {
  std::string out = "\r\n\r\n\0\r\nQUIT\n"s;
  out += static_cast<char>(0x20 | command);
  out += static_cast<char>(family);
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  return out + std::string(body);
}
// PROXY, AF_INET STREAM: 203.0.113.7:4660 -> 127.0.0.1:8080.
std::string v2_inet() {
  return v2(1, 0x11, "\xcb\x00\x71\x07\x7f\x00\x00\x01\x12\x34\x1f\x90"s);
}
// PROXY, AF_INET6 STREAM: [2001:db8::7]:4660 -> [::1]:8080, then an ALPN TLV to skip.
std::string v2_inet6() {
  std::string body = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x07"s;
  body += std::string(15, '\0') + "\x01"s + "\x12\x34\x1f\x90"s;
  body += "\x01\x00\x02h2"s;
  return v2(1, 0x21, body);
}
// LOCAL, AF_UNSPEC: what HAProxy's health checks send.
std::string v2_local() {
  return v2(0, 0x00, "");
}

ExecRequest command(std::string argv0) {
  ExecRequest r;
  r.argv = {std::move(argv0)};
  return r;
}
ExecRequest shell(std::string line) {
  ExecRequest r = command(std::move(line));
  r.shell = true;
  return r;
}

// A shell command's stdout over --raw-exec, from a connection that starts with `header`.
std::string raw_exec_reply(const std::string& url, const std::string& header,
                           std::string_view command) {
  SocketClient c(url);
  c.send_all(header + std::string(command));
  c.shutdown_write();
  return c.recv_until_eof();
}

// A raw round trip after `header`: the client is served.
::testing::AssertionResult served_after(const std::string& url, const std::string& header,
                                        const std::string& source = "127.0.0.1") {
  try {
    SocketClient c(url, source);
    c.send_all(header + "through the balancer");
    const auto reply = c.recv_exact(20);
    if (reply != "THROUGH THE BALANCER")
      return ::testing::AssertionFailure() << "reply '" << reply << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
}

// The connection is closed without a byte of reply.
::testing::AssertionResult closed_without_reply(SocketClient& c,
                                                std::chrono::milliseconds timeout = 10s) {
  const auto got = c.recv_some(4096, timeout);
  if (!got) return ::testing::AssertionFailure() << "still open after " << timeout.count() << " ms";
  if (!got->empty()) return ::testing::AssertionFailure() << "a reply: '" << *got << "'";
  return ::testing::AssertionSuccess();
}

std::vector<std::string> behind(std::vector<std::string> more = {}) {
  std::vector<std::string> args{"--listen", "tcp://127.0.0.1:0", "--proxy-protocol",
                                "--trusted-proxy", "127.0.0.1"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(ProxyProtocol, V1CarriesTheClientToTheCommand) {
  TestServer server(behind({"--raw-exec"}));
  EXPECT_EQ(raw_exec_reply(server.url(), v1("203.0.113.7", 4660), "echo $DUPLEX_CLIENT"),
            "203.0.113.7:4660\n");
  EXPECT_EQ(
      raw_exec_reply(server.url(), v1("2001:db8::7", 4661, "TCP6", "::1"), "echo $DUPLEX_CLIENT"),
      "[2001:db8::7]:4661\n");
}

TEST(ProxyProtocol, V2CarriesTheClientToTheCommand) {
  TestServer server(behind({"--raw-exec"}));
  EXPECT_EQ(raw_exec_reply(server.url(), v2_inet(), "echo $DUPLEX_CLIENT"), "203.0.113.7:4660\n");
  EXPECT_EQ(raw_exec_reply(server.url(), v2_inet6(), "echo $DUPLEX_CLIENT"),
            "[2001:db8::7]:4660\n");
  // UNKNOWN and LOCAL carry no client: the real peer stays.
  EXPECT_EQ(raw_exec_reply(server.url(), "PROXY UNKNOWN\r\n", "echo $DUPLEX_CLIENT")
                .rfind("127.0.0.1:", 0),
            0u);
  EXPECT_EQ(raw_exec_reply(server.url(), v2_local(), "echo $DUPLEX_CLIENT").rfind("127.0.0.1:", 0),
            0u);
}

TEST(ProxyProtocol, FramedClientsAreServedBehindTheHeader) {
  TestServer server(behind());
  for (const auto& header : {v1("203.0.113.7", 4660), v2_inet(), v2_inet6(), v2_local()}) {
    SocketClient c(server.url());
    c.send_all(header + preface_and_hello() + frame(msg::upper_request, "framed"));
    EXPECT_EQ(read_frame(c).type, msg::welcome);
    const RawFrame r = read_frame(c);
    EXPECT_EQ(r.type, msg::upper_reply);
    EXPECT_EQ(r.payload, "FRAMED");
  }
}

TEST(ProxyProtocol, AuditLineNamesTheCarriedClientAndTheBalancer) {
  ExecServer server({.args = behind(), .tcp = false, .quiet = false});
  ExecClient c{SocketClient(server.url())};
  c.send(v1("198.51.100.23", 5555));
  c.start(server.token(), shell("echo $DUPLEX_CLIENT"));
  const auto& o = c.finish();
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "198.51.100.23:5555\n");
  EXPECT_TRUE(server.server().wait_stderr("exec: peer=198.51.100.23:5555 via=127.0.0.1:"))
      << server.server().stderr_text();
}

TEST(ProxyProtocol, PerAddressCapCountsTheCarriedClient) {
  TestServer server(behind({"--max-connections-per-address", "1"}));
  // Every connection comes from 127.0.0.1, the balancer: only the carried addresses count.
  SocketClient first(server.url());
  first.send_all(v1("203.0.113.7", 1000) + "one");
  EXPECT_EQ(first.recv_exact(3), "ONE");
  {
    SocketClient second(server.url());
    second.send_all(v1("203.0.113.7", 1001) + "two");
    EXPECT_TRUE(closed_without_reply(second));
  }
  EXPECT_TRUE(server.wait_stderr("refused 203.0.113.7:1001 via 127.0.0.1:"))
      << server.stderr_text();
  EXPECT_TRUE(served_after(server.url(), v1("203.0.113.8", 1002)));
  // A framed client over the cap is told why.
  SocketClient framed(server.url());
  framed.send_all(v1("203.0.113.7", 1003) + preface_and_hello());
  const RawFrame f = read_frame(framed);
  ASSERT_EQ(f.type, msg::error);
  EXPECT_EQ(parse_error(f.payload)->code, 30);  // too_many_connections
  // Its place comes back when it leaves.
  first.close();
  EXPECT_TRUE(eventually(
      [&] { return static_cast<bool>(served_after(server.url(), v1("203.0.113.7", 1004))); }));
}

TEST(ProxyProtocol, PenaltyBoxHoldsTheCarriedClientNotTheBalancer) {
  ExecServer server(
      {.args = behind({"--max-auth-failures", "1", "--penalty", "60"}), .tcp = false});
  {
    ExecClient c{SocketClient(server.url())};
    c.send(v1("203.0.113.9", 2000));
    c.start(std::string(64, '0'), command("true"));
    EXPECT_TRUE(refused_with(c.finish(), err::auth_failed));
  }
  ExecClient boxed{SocketClient(server.url())};
  boxed.send(v1("203.0.113.9", 2001));
  boxed.start(server.token(), command("true"));
  EXPECT_TRUE(refused_with(boxed.finish(), err::penalised));
  // Another client behind the same balancer is not boxed.
  ExecClient other{SocketClient(server.url())};
  other.send(v1("203.0.113.10", 2002));
  other.start(server.token(), command("true"));
  EXPECT_TRUE(exited_with(other.finish(), 0));
}

TEST(ProxyProtocol, UnixBalancerLendsNoCredentialsToItsClients) {
  // A Unix-socket peer of the server's own uid runs commands without a token, but the clients a
  // balancer there carries are not that user.
  ExecServer server(
      {.args = {"--proxy-protocol", "--trusted-proxy", "unix"}, .tcp = false, .unix_socket = true});
  {
    ExecClient carried{SocketClient(server.unix_url())};
    carried.send(v1("203.0.113.7", 3000));
    carried.start(std::string(), command("true"));
    EXPECT_TRUE(refused_with(carried.finish(), err::auth_failed));
  }
  // Its own connection (LOCAL) keeps the credentials.
  ExecClient own{SocketClient(server.unix_url())};
  own.send(v2_local());
  own.start(std::string(), command("true"));
  EXPECT_TRUE(exited_with(own.finish(), 0));
  ASSERT_TRUE(own.outcome().identity.has_value());
  EXPECT_EQ(*own.outcome().identity, "uid " + std::to_string(::getuid()));
  // A token still works for a carried client.
  ExecClient token{SocketClient(server.unix_url())};
  token.send(v2_inet());
  token.start(server.token(), shell("echo $DUPLEX_CLIENT"));
  EXPECT_TRUE(exited_with(token.finish(), 0));
  EXPECT_EQ(token.outcome().out, "203.0.113.7:4660\n");
}

TEST(ProxyProtocol, UntrustedPeerSendingAHeaderIsRefused) {
  TestServer server(behind());
  SocketClient spoof(server.url(), "127.0.0.2");
  spoof.send_all(v1("10.9.8.7", 1234) + "let me in");
  EXPECT_TRUE(closed_without_reply(spoof));
  EXPECT_TRUE(server.wait_stderr("refused 127.0.0.2:")) << server.stderr_text();
  EXPECT_NE(server.stderr_text().find("not a --trusted-proxy"), std::string::npos);
  SocketClient spoof2(server.url(), "127.0.0.2");
  spoof2.send_all(v2_inet());
  EXPECT_TRUE(closed_without_reply(spoof2));
  // Without a header the same peer is a direct client, served as one.
  EXPECT_TRUE(served_after(server.url(), "", "127.0.0.2"));
}

TEST(ProxyProtocol, TrustedPeerWithoutAHeaderIsRefused) {
  TestServer server(behind());
  SocketClient c(server.url());
  c.send_all("hello\n");
  EXPECT_TRUE(closed_without_reply(c));
  EXPECT_TRUE(server.wait_stderr("does not start with a PROXY header")) << server.stderr_text();
  EXPECT_TRUE(served_after(server.url(), v2_inet()));
}

TEST(ProxyProtocol, GarbageAndOversizedHeadersAreRefusedAtOnce) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"PROXY TCP4 203.0.113.7 127.0.0.1 70000 8080\r\n", "not a number from 0 to 65535"},
      {"PROXY TCP9 a b 1 2\r\n", "not TCP4, TCP6 or UNKNOWN"},
      {"PROXY UNKNOWN " + std::string(100, 'x'), "no CRLF within 107 bytes"},
      {v2(1, 0x11, "\x01\x02\x03"), "too short for its address family"},
      {"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c"s + std::string(12, '\0'), "version is not 2"},
      {v2(1, 0x11, std::string(12, '\0') + "\xee\x13\x88" + std::string(5000, 'z')),
       "longer than this server takes"},
  };
  // A long deadline: each refusal must come from the header itself, not from the clock.
  TestServer server(behind({"--auth-timeout", "60"}));
  for (const auto& [header, why] : cases) {
    SocketClient c(server.url());
    const auto start = Clock::now();
    c.send_all(header);
    EXPECT_TRUE(closed_without_reply(c, 20s)) << why;
    EXPECT_LT(Clock::now() - start, 20s) << why;
  }
  // The first refusal is logged at once (the rest within the same second are counted).
  EXPECT_TRUE(server.wait_stderr(cases[0].second)) << server.stderr_text();
  EXPECT_TRUE(served_after(server.url(), v1("203.0.113.7", 1)));
}

TEST(ProxyProtocol, TruncatedHeaderHarmsNobody) {
  TestServer server(behind());
  ASSERT_TRUE(served_after(server.url(), v2_inet()));
  const int fds = fd_count(server.pid());
  for (const std::string& header : {"PROXY TCP4 203.0.113.7"s, v2_inet().substr(0, 20)}) {
    SocketClient c(server.url());
    c.send_all(header);
    c.shutdown_write();
    EXPECT_TRUE(closed_without_reply(c));
  }
  SocketClient reset(server.url());
  reset.send_all(v2_inet().substr(0, 14));
  reset.reset();
  EXPECT_TRUE(served_after(server.url(), v2_inet()));
  EXPECT_TRUE(eventually([&] { return fd_count(server.pid()) <= fds; })) << fd_count(server.pid());
}

TEST(ProxyProtocol, SilentOrSlowHeaderIsHeldToTheAuthDeadline) {
  TestServer server(behind({"--auth-timeout", "1"}));
  SocketClient silent(server.url());
  const auto start = Clock::now();
  silent.send_all("PROXY TCP4 ");
  // Meanwhile others are served.
  EXPECT_TRUE(served_after(server.url(), v1("203.0.113.7", 1)));
  EXPECT_TRUE(closed_without_reply(silent));
  EXPECT_GE(Clock::now() - start, 900ms);
  EXPECT_TRUE(server.wait_stderr("no whole PROXY header within 1.0 s (11 bytes of it came)"))
      << server.stderr_text();

  // A trickle does not buy time: one byte every 100 ms of a header it never finishes.
  SocketClient slow(server.url());
  const std::string endless = "PROXY UNKNOWN " + std::string(92, 'x');
  bool closed = false;
  const auto slow_start = Clock::now();
  for (char ch : endless) {
    try {
      slow.send_all(std::string(1, ch));
    } catch (const std::exception&) {
      closed = true;  // reset by the server's close
      break;
    }
    if (const auto got = slow.recv_some(64, 100ms); got && got->empty()) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - slow_start, 9s) << "held past its deadline";
}

TEST(ProxyProtocol, TrickledHeaderWithinTheDeadlineIsTaken) {
  TestServer server(behind({"--auth-timeout", "30", "--raw-exec"}));
  SocketClient c(server.url());
  const std::string header = v1("203.0.113.7", 4660);
  for (std::size_t i = 0; i < header.size(); i += 4) {
    c.send_all(header.substr(i, 4));
    // Paces the trickle; the server must not mistake a partial header for a whole one.
    EXPECT_EQ(c.recv_some(64, 20ms), std::nullopt);
  }
  c.send_all("echo $DUPLEX_CLIENT");
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "203.0.113.7:4660\n");
}

TEST(ProxyProtocol, SilentHeadersCountAsUnauthenticated) {
  // One thread: sessions become pending in the order they were accepted.
  TestServer server(behind({"--max-unauthenticated", "2", "--auth-timeout", "60", "-t", "1"}));
  SocketClient a(server.url()), b(server.url());
  a.send_all("PROXY ");
  b.send_all("PROXY ");
  SocketClient c(server.url());  // the third pending one: the oldest (a) goes
  EXPECT_TRUE(closed_without_reply(a));
  EXPECT_TRUE(server.wait_stderr("--max-unauthenticated")) << server.stderr_text();
}

TEST(ProxyProtocol, OptionsAreCheckedAtStart) {
  const auto no_trust = run({duplex_bin(), "serve", "--proxy-protocol", "--check-config"});
  EXPECT_EQ(no_trust.status, (ExitStatus{true, 2}));
  EXPECT_NE(no_trust.err.find("--proxy-protocol needs --trusted-proxy"), std::string::npos)
      << no_trust.err;
  const auto bad = run({duplex_bin(), "serve", "--proxy-protocol", "--trusted-proxy",
                        "lb.example.com", "--check-config"});
  EXPECT_EQ(bad.status, (ExitStatus{true, 2}));
  EXPECT_NE(bad.err.find("lb.example.com"), std::string::npos) << bad.err;
  const auto alone =
      run({duplex_bin(), "serve", "--trusted-proxy", "10.0.0.0/8", "--check-config"});
  EXPECT_EQ(alone.status, (ExitStatus{true, 2}));
  const auto good = run({duplex_bin(), "serve", "--proxy-protocol", "--trusted-proxy", "10.0.0.0/8",
                         "--trusted-proxy", "::1", "--trusted-proxy", "unix", "--check-config"});
  EXPECT_EQ(good.status, (ExitStatus{true, 0})) << good.err;
}

TEST(ProxyProtocol, ConfigFileTakesTheOptions) {
  TempDir dir;
  const auto path = dir.file("serve.toml");
  write_file(path,
             "proxy-protocol = true\n"
             "trusted-proxy = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"
             "listen = [\"tcp://127.0.0.1:0\"]\n"
             "raw-exec = true\n"
             "allow-root = true\n");
  TestServer server({"--config", path}, 1);
  EXPECT_EQ(raw_exec_reply(server.url(), v2_inet(), "echo $DUPLEX_CLIENT"), "203.0.113.7:4660\n");
  write_file(path, "proxy-protocol = true\ntrusted-proxy = [\"10.0.0.1/8\"]\n");
  const auto bad = run({duplex_bin(), "serve", "--config", path, "--check-config"});
  EXPECT_EQ(bad.status, (ExitStatus{true, 2}));
  EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace duplex::test
