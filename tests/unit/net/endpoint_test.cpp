// Tests for net/endpoint: every URL form the README lists, every rejection and its reason, garbage.
#include "duplex/net/endpoint.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/errors.hpp"

namespace duplex::net {

// gtest prints values of failed EXPECT_EQs through this (found by ADL).
void PrintTo(const Endpoint& e, std::ostream* os) {
  *os << "Endpoint{" << e.url() << ", host='" << e.host << "', port=" << e.port << ", path='"
      << e.path << "', tls=" << e.tls << "}";
}

namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The invariants every outcome must satisfy, whatever the input: an error is bad_url with a
/// one-line, bounded, non-empty reason; a value prints to a URL that parses back to itself.
void check_invariants(std::string_view input) {
  auto r = parse_endpoint(input);
  if (!r) {
    EXPECT_EQ(r.error(), errc::bad_url);
    const std::string& why = r.failure().detail;
    EXPECT_FALSE(why.empty());
    EXPECT_LT(why.size(), 400U) << "reason must stay one short line";
    EXPECT_EQ(why.find('\n'), std::string::npos);
    for (char c : why) {
      auto b = static_cast<unsigned char>(c);
      EXPECT_TRUE(b >= 0x20 && b < 0x7f) << "reason must be printable ASCII";
    }
    return;
  }
  const Endpoint& e = *r;
  if (e.is_unix()) {
    EXPECT_TRUE(e.host.empty());
    ASSERT_FALSE(e.path.empty());
    EXPECT_EQ(e.path.front(), '/');
    EXPECT_LE(e.path.size(), 107U);
  } else {
    EXPECT_FALSE(e.host.empty());
    EXPECT_TRUE(e.path.empty());
  }
  auto again = parse_endpoint(e.url());
  ASSERT_TRUE(again) << "url() " << e.url() << " does not parse: " << again.message();
  EXPECT_EQ(*again, e) << e.url();
}

struct Good {
  std::string input;
  Transport transport;
  std::string host;
  std::uint16_t port;
  std::string path;
  std::string canonical;
};

Endpoint must_parse(std::string_view url) {
  auto r = parse_endpoint(url);
  EXPECT_TRUE(r) << "'" << url << "': " << r.message();
  return r ? *r : Endpoint{};
}

/// Asserts `url` is rejected with errc::bad_url and a reason holding every one of `words`.
void expect_bad(std::string_view url, std::initializer_list<std::string_view> words) {
  SCOPED_TRACE("input: '" + std::string(url) + "'");
  auto r = parse_endpoint(url);
  ASSERT_FALSE(r) << "accepted as " << r->url();
  EXPECT_EQ(r.error(), errc::bad_url);
  EXPECT_EQ(r.error().message(), "bad URL");
  const std::string& why = r.failure().detail;
  EXPECT_EQ(r.message(), why) << "the detail is what a person reads";
  for (std::string_view w : words) {
    EXPECT_NE(why.find(w), std::string::npos) << "reason '" << why << "' lacks '" << w << "'";
  }
  ASSERT_FALSE(why.empty());
  EXPECT_FALSE(why.front() >= 'A' && why.front() <= 'Z') << "reason starts lower-case: " << why;
  check_invariants(url);
}

// ---------------------------------------------------------------------------------------------
// Accepted forms

const std::vector<Good>& good_cases() {
  static const std::vector<Good> cases = {
      // tcp://HOST:PORT with every kind of host
      {"tcp://127.0.0.1:8080", Transport::tcp, "127.0.0.1", 8080, "", "tcp://127.0.0.1:8080"},
      {"tcp://localhost:1", Transport::tcp, "localhost", 1, "", "tcp://localhost:1"},
      {"tcp://example.com:443", Transport::tcp, "example.com", 443, "", "tcp://example.com:443"},
      {"tcp://a-b.c-d.Example:65535", Transport::tcp, "a-b.c-d.Example", 65535, "",
       "tcp://a-b.c-d.Example:65535"},
      {"tcp://xn--bcher-kva.example:80", Transport::tcp, "xn--bcher-kva.example", 80, "",
       "tcp://xn--bcher-kva.example:80"},
      {"tcp://1.2.3.4a:80", Transport::tcp, "1.2.3.4a", 80, "", "tcp://1.2.3.4a:80"},
      {"tcp://0.0.0.0:0", Transport::tcp, "0.0.0.0", 0, "", "tcp://0.0.0.0:0"},
      {"tcp://255.255.255.255:65535", Transport::tcp, "255.255.255.255", 65535, "",
       "tcp://255.255.255.255:65535"},
      // scheme is case-insensitive and printed lower-case
      {"TCP://localhost:80", Transport::tcp, "localhost", 80, "", "tcp://localhost:80"},
      {"Tcp://localhost:80", Transport::tcp, "localhost", 80, "", "tcp://localhost:80"},
      // bare HOST:PORT is tcp
      {"127.0.0.1:8080", Transport::tcp, "127.0.0.1", 8080, "", "tcp://127.0.0.1:8080"},
      {"localhost:0", Transport::tcp, "localhost", 0, "", "tcp://localhost:0"},
      {"h:00080", Transport::tcp, "h", 80, "", "tcp://h:80"},
      {"tcp:80", Transport::tcp, "tcp", 80, "", "tcp://tcp:80"},  // the host named "tcp"
      // IPv6, bracketed, stored without brackets, canonical (RFC 5952)
      {"tcp://[::1]:8080", Transport::tcp, "::1", 8080, "", "tcp://[::1]:8080"},
      {"[::1]:8080", Transport::tcp, "::1", 8080, "", "tcp://[::1]:8080"},
      {"[::]:0", Transport::tcp, "::", 0, "", "tcp://[::]:0"},
      {"tcp://[0:0:0:0:0:0:0:1]:80", Transport::tcp, "::1", 80, "", "tcp://[::1]:80"},
      {"tcp://[2001:DB8::A]:80", Transport::tcp, "2001:db8::a", 80, "", "tcp://[2001:db8::a]:80"},
      {"tcp://[::ffff:127.0.0.1]:80", Transport::tcp, "::ffff:127.0.0.1", 80, "",
       "tcp://[::ffff:127.0.0.1]:80"},
      {"tcp://[fe80::1%lo]:80", Transport::tcp, "fe80::1%lo", 80, "", "tcp://[fe80::1%lo]:80"},
      {"[fe80::1%eth0.5]:9", Transport::tcp, "fe80::1%eth0.5", 9, "", "tcp://[fe80::1%eth0.5]:9"},
      // udp
      {"udp://127.0.0.1:53", Transport::udp, "127.0.0.1", 53, "", "udp://127.0.0.1:53"},
      {"UDP://example.org:5353", Transport::udp, "example.org", 5353, "", "udp://example.org:5353"},
      {"udp://[::1]:0", Transport::udp, "::1", 0, "", "udp://[::1]:0"},
      {"udp://[ff02::1]:5353", Transport::udp, "ff02::1", 5353, "", "udp://[ff02::1]:5353"},
      // unix and unixgram
      {"unix:///tmp/x.sock", Transport::unix_stream, "", 0, "/tmp/x.sock", "unix:///tmp/x.sock"},
      {"UNIX:///tmp/x.sock", Transport::unix_stream, "", 0, "/tmp/x.sock", "unix:///tmp/x.sock"},
      {"unixgram:///run/d.sock", Transport::unix_dgram, "", 0, "/run/d.sock",
       "unixgram:///run/d.sock"},
      {"UnixGram:///x", Transport::unix_dgram, "", 0, "/x", "unixgram:///x"},
      {"unix:///tmp/a:b@c?d#e%f[g]", Transport::unix_stream, "", 0, "/tmp/a:b@c?d#e%f[g]",
       "unix:///tmp/a:b@c?d#e%f[g]"},
      {"unix:///tmp/caf\xc3\xa9.sock", Transport::unix_stream, "", 0, "/tmp/caf\xc3\xa9.sock",
       "unix:///tmp/caf\xc3\xa9.sock"},
      {"unix:////double", Transport::unix_stream, "", 0, "//double", "unix:////double"},
  };
  return cases;
}

TEST(EndpointParse, AcceptsEveryForm) {
  for (const Good& g : good_cases()) {
    SCOPED_TRACE("input: '" + g.input + "'");
    auto r = parse_endpoint(g.input);
    ASSERT_TRUE(r) << r.message();
    EXPECT_EQ(r->transport, g.transport);
    EXPECT_EQ(r->host, g.host);
    EXPECT_EQ(r->port, g.port);
    EXPECT_EQ(r->path, g.path);
    EXPECT_EQ(r->url(), g.canonical);
    EXPECT_EQ(r.message(), "") << "no message when it parsed";
  }
}

TEST(EndpointParse, FailureCarriesTheCodeAndTheReason) {
  EXPECT_TRUE(parse_endpoint("tcp://127.0.0.1:1"));
  auto r = parse_endpoint("tcp://127.0.0.1:70000");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::bad_url);
  EXPECT_EQ(r.failure().detail, "port 70000 is out of range (0-65535)");
  EXPECT_EQ(r.message(), "port 70000 is out of range (0-65535)");
}

TEST(EndpointParse, AcceptsLimitsExactly) {
  const std::string label63(63, 'a');
  EXPECT_EQ(must_parse(label63 + ":1").host, label63);
  // 4 labels of 63 + 3 dots = 255 > 253; 3 x 63 + 61 + 3 dots = 253.
  const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253U);
  EXPECT_EQ(must_parse(name253 + ":1").host, name253);
  const std::string path107 = "/" + std::string(106, 'p');
  EXPECT_EQ(must_parse("unix://" + path107).path, path107);
  EXPECT_EQ(must_parse("unixgram://" + path107).path, path107);
  EXPECT_EQ(must_parse("h:65535").port, 65535);
  EXPECT_EQ(must_parse("h:0").port, 0);
}

TEST(EndpointParse, ClassifiesTransport) {
  Endpoint t = must_parse("tcp://h:1");
  EXPECT_TRUE(t.is_stream());
  EXPECT_FALSE(t.is_unix());
  EXPECT_FALSE(t.is_ipv6());
  Endpoint u = must_parse("udp://[::1]:1");
  EXPECT_FALSE(u.is_stream());
  EXPECT_FALSE(u.is_unix());
  EXPECT_TRUE(u.is_ipv6());
  Endpoint us = must_parse("unix:///s");
  EXPECT_TRUE(us.is_stream());
  EXPECT_TRUE(us.is_unix());
  Endpoint ug = must_parse("unixgram:///s");
  EXPECT_FALSE(ug.is_stream());
  EXPECT_TRUE(ug.is_unix());
}

// tls:// and tls+unix:// are the stream transports with `tls` set; nothing else differs.
TEST(EndpointParse, AcceptsTlsForms) {
  struct TlsGood {
    std::string input;
    Transport transport;
    std::string host;
    std::uint16_t port;
    std::string path;
    std::string canonical;
  };
  const TlsGood cases[] = {
      {"tls://127.0.0.1:8443", Transport::tcp, "127.0.0.1", 8443, "", "tls://127.0.0.1:8443"},
      {"TLS://Example.com:443", Transport::tcp, "Example.com", 443, "", "tls://Example.com:443"},
      {"tls://[::1]:8443", Transport::tcp, "::1", 8443, "", "tls://[::1]:8443"},
      {"tls://[0:0::1]:1", Transport::tcp, "::1", 1, "", "tls://[::1]:1"},
      {"tls://localhost:0", Transport::tcp, "localhost", 0, "", "tls://localhost:0"},
      {"tls+unix:///tmp/d.sock", Transport::unix_stream, "", 0, "/tmp/d.sock",
       "tls+unix:///tmp/d.sock"},
      {"TLS+Unix:///x", Transport::unix_stream, "", 0, "/x", "tls+unix:///x"},
  };
  for (const TlsGood& g : cases) {
    SCOPED_TRACE("input: '" + g.input + "'");
    auto r = parse_endpoint(g.input);
    ASSERT_TRUE(r) << r.message();
    EXPECT_TRUE(r->tls);
    EXPECT_TRUE(r->is_stream());
    EXPECT_EQ(r->transport, g.transport);
    EXPECT_EQ(r->host, g.host);
    EXPECT_EQ(r->port, g.port);
    EXPECT_EQ(r->path, g.path);
    EXPECT_EQ(r->url(), g.canonical);
    EXPECT_EQ(must_parse(r->url()), *r) << "round trip";
    check_invariants(g.input);
  }
  for (const Good& g : good_cases()) {
    SCOPED_TRACE("input: '" + g.input + "'");
    EXPECT_FALSE(must_parse(g.input).tls) << "only tls:// and tls+unix:// set it";
  }
  EXPECT_NE(must_parse("tls://h:1"), must_parse("tcp://h:1"));
  EXPECT_NE(must_parse("tls+unix:///s"), must_parse("unix:///s"));
  EXPECT_EQ(must_parse("tls:80").host, "tls") << "the host named tls, as tcp:80 is";
  EXPECT_FALSE(must_parse("tls:80").tls);
}

TEST(EndpointParse, RejectsBadTlsForms) {
  expect_bad("tls://h", {"missing port"});
  expect_bad("tls://", {"missing host and port"});
  expect_bad("tls://h:70000", {"out of range"});
  expect_bad("tls://::1:80", {"must be in brackets", "[::1]:80"});
  expect_bad("tls:h:80", {"missing '//' after 'tls:'", "tls://HOST:PORT"});
  expect_bad("tls+unix://", {"unix socket path is empty", "tls+unix:///abs/path"});
  expect_bad("tls+unix://rel/x", {"must be absolute", "tls+unix:///abs/path"});
  expect_bad("tls+unix:/tmp/x", {"missing '//' after 'tls+unix:'", "tls+unix:///abs/path"});
  expect_bad("tls+unix:x", {"must be absolute", "tls+unix:///abs/path"});
  expect_bad("tls+unix:///tmp/dir/", {"ends with '/'"});
  expect_bad("tls+unix:///" + std::string(200, 'p'), {"bytes long"});
  expect_bad("tls+udp://h:1", {"unknown scheme 'tls+udp'"});
  expect_bad("tls+unixgram:///x", {"unknown scheme 'tls+unixgram'"});
  expect_bad("dtls://h:1", {"unknown scheme 'dtls'"});
}

TEST(EndpointUrl, PrintsTlsOnlyOnStreamTransports) {
  Endpoint tcp{Transport::tcp, "127.0.0.1", 8443, ""};
  tcp.tls = true;
  EXPECT_EQ(tcp.url(), "tls://127.0.0.1:8443");
  Endpoint v6{Transport::tcp, "::1", 8443, ""};
  v6.tls = true;
  EXPECT_EQ(v6.url(), "tls://[::1]:8443");
  Endpoint unix_s{Transport::unix_stream, "", 0, "/s"};
  unix_s.tls = true;
  EXPECT_EQ(unix_s.url(), "tls+unix:///s");
  Endpoint udp{Transport::udp, "h", 1, ""};
  udp.tls = true;
  EXPECT_EQ(udp.url(), "udp://h:1");
}

TEST(EndpointLoopback, TlsDoesNotChangeIt) {
  EXPECT_TRUE(must_parse("tls://127.0.0.1:1").is_loopback());
  EXPECT_TRUE(must_parse("tls://[::1]:1").is_loopback());
  EXPECT_TRUE(must_parse("tls://localhost:1").is_loopback());
  EXPECT_TRUE(must_parse("tls+unix:///s").is_loopback());
  EXPECT_FALSE(must_parse("tls://0.0.0.0:1").is_loopback());
  EXPECT_FALSE(must_parse("tls://example.com:1").is_loopback());
}

// ---------------------------------------------------------------------------------------------
// Rejections: each names what is wrong

TEST(EndpointParse, RejectsEmptyString) {
  expect_bad("", {"empty url"});
}

TEST(EndpointParse, RejectsMissingPort) {
  expect_bad("localhost", {"missing port in 'localhost'"});
  expect_bad("tcp://localhost", {"missing port in 'localhost'"});
  expect_bad("udp://10.0.0.1", {"missing port in '10.0.0.1'"});
  expect_bad("localhost:", {"missing port", "'localhost:'"});
  expect_bad("[::1]", {"missing port", "'[::1]'"});
  expect_bad("tcp://[::1]:", {"missing port"});
  expect_bad("tcp://h:/x", {"missing port"});
}

TEST(EndpointParse, RejectsMissingHost) {
  expect_bad(":8080", {"missing host"});
  expect_bad("tcp://:8080", {"missing host"});
  expect_bad("tcp://", {"missing host"});
  expect_bad("udp://", {"missing host"});
  expect_bad("tcp:///x", {"missing host"});
}

TEST(EndpointParse, RejectsPortOutOfRange) {
  expect_bad("tcp://h:70000", {"port 70000 is out of range (0-65535)"});
  expect_bad("h:65536", {"port 65536 is out of range (0-65535)"});
  expect_bad("[::1]:65536", {"port 65536", "out of range"});
  expect_bad("h:99999999999999999999999999", {"out of range"});
  expect_bad("h:" + std::string(5000, '9'), {"out of range"});
}

TEST(EndpointParse, RejectsNonNumericPort) {
  expect_bad("h:http", {"port 'http'", "not a decimal number"});
  expect_bad("h:-1", {"port '-1'", "not a decimal number"});
  expect_bad("h:+80", {"port '+80'", "not a decimal number"});
  expect_bad("h:8o", {"not a decimal number"});
  expect_bad("h:0x50", {"not a decimal number"});
  expect_bad("[::1]:80x", {"port '80x'", "not a decimal number"});
  expect_bad("h:８０", {"not a decimal number"});  // full-width digits
}

TEST(EndpointParse, RejectsUnterminatedBracket) {
  expect_bad("[::1:80", {"unterminated '[' in '[::1:80'"});
  expect_bad("tcp://[::1:80", {"unterminated '['"});
  expect_bad("[", {"unterminated '['"});
}

TEST(EndpointParse, RejectsJunkAfterBracket) {
  expect_bad("[::1]x:80", {"unexpected 'x:80' after ']'", "expected ':PORT'"});
  expect_bad("[::1]80", {"after ']'"});
  expect_bad("[::1]]:80", {"after ']'"});
  expect_bad("udp://[::1]-:80", {"after ']'"});
}

TEST(EndpointParse, RejectsPathOrQueryAfterPort) {
  expect_bad("tcp://h:1/x", {"unexpected '/x'", "no path"});
  expect_bad("tcp://h:1/", {"unexpected '/'", "no path"});
  expect_bad("h:1?q=1", {"unexpected '?q=1'", "query"});
  expect_bad("h:1#frag", {"unexpected '#frag'"});
  expect_bad("tcp://[::1]:80/index.html", {"unexpected '/index.html'", "no path"});
  expect_bad("h/x:1", {"unexpected '/x:1'", "no path"});
  expect_bad("h:1/x:2", {"unexpected '/x:2'"});
}

TEST(EndpointParse, RejectsUserinfo) {
  expect_bad("a@h:1", {"userinfo 'a@'", "not supported"});
  expect_bad("tcp://user:pw@h:1", {"userinfo 'user:pw@'"});
  expect_bad("udp://@h:1", {"userinfo '@'"});
  expect_bad("[::1]@h:1", {"userinfo"});
}

TEST(EndpointParse, RejectsUnknownScheme) {
  expect_bad("http://h:80",
             {"unknown scheme 'http' (use tcp, tls, udp, unix, tls+unix or unixgram)"});
  expect_bad("HTTPS://example.com:443", {"unknown scheme 'HTTPS'"});
  expect_bad("tcp6://h:1", {"unknown scheme 'tcp6'"});
  expect_bad("file:///tmp/x", {"unknown scheme 'file'"});
  expect_bad("ftp:/x", {"unknown scheme 'ftp'"});
  expect_bad("://h:1", {"missing scheme"});
}

TEST(EndpointParse, RejectsSchemeWithoutSlashes) {
  expect_bad("tcp:localhost:80", {"missing '//' after 'tcp:'", "tcp://HOST:PORT"});
  expect_bad("udp:h", {"missing '//' after 'udp:'"});
  expect_bad("tcp:/h:1", {"missing '//'"});
  expect_bad("unix:/tmp/x", {"missing '//' after 'unix:'", "unix:///abs/path"});
}

TEST(EndpointParse, RejectsUnbracketedIpv6) {
  expect_bad("::1:8080", {"must be in brackets", "[::1]:8080"});
  expect_bad("tcp://::1:80", {"must be in brackets", "[::1]:80"});
  expect_bad("udp://fe80::1:53", {"brackets", "[fe80::1]:53"});
  expect_bad("2001:db8::1:80", {"brackets"});
  expect_bad("::1", {"brackets"});
  expect_bad("a:b:c", {"too many ':'", "brackets"});
}

TEST(EndpointParse, RejectsInvalidIpv6) {
  expect_bad("[::g]:80", {"invalid ipv6 address '::g'"});
  expect_bad("[1:2:3:4:5:6:7:8:9]:80", {"invalid ipv6 address"});
  expect_bad("[]:80", {"empty ipv6 address"});
  expect_bad("[127.0.0.1]:80", {"'127.0.0.1' is not an ipv6 address", "127.0.0.1:PORT"});
  expect_bad("[localhost]:80", {"invalid ipv6 address 'localhost'"});
  expect_bad("[fe80::1%]:80", {"empty zone id"});
  expect_bad("[%lo]:80", {"invalid ipv6 address"});
  expect_bad("[fe80::1%a/b]:80", {"invalid character '/' in zone id"});
  expect_bad("[fe80::1%" + std::string(100, 'z') + "]:80", {"zone id", "too long"});
}

TEST(EndpointParse, RejectsInvalidIpv4) {
  expect_bad("256.1.1.1:80", {"octet '256'", "out of range (0-255)"});
  expect_bad("1.2.3.999:80", {"octet '999'"});
  expect_bad("1.2.3:80", {"ipv4 address '1.2.3' must have 4 parts"});
  expect_bad("1.2.3.4.5:80", {"must have 4 parts"});
  expect_bad("123:80", {"must have 4 parts"});
  expect_bad("1..2.3:80", {"empty octet"});
  expect_bad("1.2.3.4.:80", {"4 parts"});
  expect_bad(".1.2.3:80", {"empty octet"});
  expect_bad("01.2.3.4:80", {"octet '01'", "leading zero"});
  expect_bad("1.2.3." + std::string(40, '9') + ":80", {"out of range (0-255)"});
  expect_bad("1.2.3.256:80", {"octet '256'", "out of range"});
  expect_bad("1.2.3.4.5.6:80", {"must have 4 parts, not 6"});
  expect_bad("1.2.3.00:80", {"octet '00'", "leading zero"});
  expect_bad("1.2.3.:80", {"empty octet"});
}

TEST(EndpointParse, AcceptsEveryValidIpv4Edge) {
  for (const char* host : {"0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.0.255", "199.250.249.0"})
    EXPECT_EQ(must_parse(std::string(host) + ":1").host, host);
}

TEST(EndpointParse, RejectsInvalidHostName) {
  expect_bad("-bad.example:80", {"label '-bad'", "'-'"});
  expect_bad("bad-.example:80", {"label 'bad-'", "'-'"});
  expect_bad("a..b:80", {"empty label", "'a..b'"});
  expect_bad("example.com.:80", {"empty label"});
  expect_bad(".example:80", {"empty label"});
  expect_bad("a_b:80", {"invalid character '_' in host name 'a_b'"});
  expect_bad("caf\xc3\xa9:80", {"invalid character '\\xc3'"});
  expect_bad("h!:80", {"invalid character '!'"});
  expect_bad("h[1]:80", {"stray '['"});
  expect_bad("h]:80", {"stray ']'"});
  expect_bad(std::string(64, 'a') + ":80", {"64 characters long (at most 63)"});
  const std::string label63(63, 'a');
  const std::string name254 = label63 + "." + label63 + "." + label63 + "." + std::string(62, 'b');
  ASSERT_EQ(name254.size(), 254U);
  expect_bad(name254 + ":80", {"host name is 254 characters long (at most 253)"});
}

TEST(EndpointParse, RejectsWhitespace) {
  expect_bad(" tcp://h:1", {"whitespace", "offset 0"});
  expect_bad("tcp://h:1 ", {"whitespace", "offset 9"});
  expect_bad("tcp://h :1", {"whitespace"});
  expect_bad("h:1\n", {"whitespace", "\\x0a"});
  expect_bad("\th:1", {"whitespace"});
  expect_bad("unix:///tmp/my sock", {"whitespace"});
  expect_bad("   ", {"whitespace"});
}

TEST(EndpointParse, RejectsNulAndControlBytes) {
  expect_bad("tcp://h\0:1"s, {"nul byte", "offset 7"});
  expect_bad("\0"s, {"nul byte"});
  expect_bad("unix:///tmp/x\0y"s, {"nul byte"});
  expect_bad("h\x01:1", {"control character \\x01"});
  expect_bad("h:1\x7f", {"control character \\x7f"});
  expect_bad("\x1b[31mh:1", {"control character \\x1b"});
}

TEST(EndpointParse, RejectsRelativeUnixPath) {
  expect_bad("unix://rel/path", {"unix socket path must be absolute", "'rel/path'"});
  expect_bad("unixgram://rel", {"must be absolute"});
  expect_bad("unix:rel", {"unix socket path must be absolute"});
  expect_bad("unixgram:rel", {"must be absolute"});
  expect_bad("unix://localhost/tmp/x", {"must be absolute"});
  expect_bad("unix://./x.sock", {"must be absolute"});
}

TEST(EndpointParse, RejectsEmptyUnixPath) {
  expect_bad("unix://", {"unix socket path is empty"});
  expect_bad("unixgram://", {"unix socket path is empty"});
  expect_bad("unix:", {"unix socket path is empty"});
}

TEST(EndpointParse, RejectsUnixPathNamingADirectory) {
  expect_bad("unix:///", {"ends with '/'"});
  expect_bad("unix:///tmp/", {"'/tmp/' ends with '/'"});
}

TEST(EndpointParse, RejectsUnixPathTooLong) {
  expect_bad("unix:///" + std::string(107, 'p'), {"108 bytes long", "at most 107"});
  expect_bad("unixgram:///" + std::string(4096, 'p'), {"at most 107"});
}

TEST(EndpointParse, ShortensLongInputInReasons) {
  const std::string huge(1 << 20, 'a');
  auto r = parse_endpoint(huge);
  ASSERT_FALSE(r);
  const std::string& why = r.failure().detail;
  EXPECT_LT(why.size(), 200U) << why;
  EXPECT_NE(why.find("missing port"), std::string::npos) << why;
  EXPECT_NE(why.find("..."), std::string::npos) << why;
}

// ---------------------------------------------------------------------------------------------
// Garbage: nothing crashes, every outcome keeps the invariants

TEST(EndpointGarbage, RandomBytes) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> len(0, 64);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(len(rng)), '\0');
    for (char& c : s)
      c = static_cast<char>(byte(rng));
    check_invariants(s);
  }
}

TEST(EndpointGarbage, RandomPrintableFromUrlAlphabet) {
  // Biased toward the characters the parser branches on, so that many inputs get far in.
  const std::string alphabet = "tcpudnixgram:/[]@%?#.-_01279fe:/[]:.";
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 24);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  int accepted = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string s(static_cast<std::size_t>(len(rng)), '\0');
    for (char& c : s)
      c = alphabet[pick(rng)];
    if (parse_endpoint(s)) ++accepted;
    check_invariants(s);
  }
  EXPECT_GT(accepted, 0);
}

TEST(EndpointGarbage, OnlyPunctuation) {
  // Every string of length 1..4 over the punctuation the grammar uses.
  const std::string punct = ":/[]@%?#.-";
  std::vector<std::string> level = {""};
  for (int n = 1; n <= 4; ++n) {
    std::vector<std::string> next;
    for (const std::string& s : level) {
      for (char c : punct) {
        next.push_back(s + c);
        EXPECT_FALSE(parse_endpoint(next.back())) << next.back();
        check_invariants(next.back());
      }
    }
    level = std::move(next);
  }
}

TEST(EndpointGarbage, EveryPrefixAndSingleByteChangeOfGoodUrls) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::string> inputs = {"tls://127.0.0.1:8443", "tls://[::1]:8443",
                                     "tls+unix:///tmp/d.sock"};
  for (const Good& g : good_cases())
    inputs.push_back(g.input);
  for (const std::string& input : inputs) {
    for (std::size_t n = 0; n <= input.size(); ++n)
      check_invariants(input.substr(0, n));
    for (std::size_t i = 0; i < input.size(); ++i) {
      std::string s = input;
      s[i] = static_cast<char>(byte(rng));
      check_invariants(s);
      s.erase(i, 1);
      check_invariants(s);
    }
  }
}

TEST(EndpointGarbage, VeryLongStrings) {
  const std::string big(1 << 16, 'x');
  check_invariants(big);
  check_invariants("tcp://" + big + ":80");
  check_invariants("tcp://h:" + big);
  check_invariants("[" + big + "]:80");
  check_invariants("[" + big);
  check_invariants("unix:///" + big);
  check_invariants(std::string(1 << 16, ':'));
  check_invariants(std::string(1 << 16, '['));
  check_invariants(std::string(1 << 16, '.') + ":1");
  check_invariants(std::string(1 << 16, '1') + ":1");
  std::string dots;
  for (int i = 0; i < 10000; ++i)
    dots += "1.";
  check_invariants(dots + "1:80");
}

// ---------------------------------------------------------------------------------------------
// url(): canonical text, and parse_endpoint(e.url()) == e

TEST(EndpointUrl, PrintsCanonicalForms) {
  EXPECT_EQ((Endpoint{Transport::tcp, "127.0.0.1", 8080, ""}).url(), "tcp://127.0.0.1:8080");
  EXPECT_EQ((Endpoint{Transport::tcp, "::1", 8080, ""}).url(), "tcp://[::1]:8080");
  EXPECT_EQ((Endpoint{Transport::udp, "example.com", 53, ""}).url(), "udp://example.com:53");
  EXPECT_EQ((Endpoint{Transport::udp, "ff02::1", 0, ""}).url(), "udp://[ff02::1]:0");
  EXPECT_EQ((Endpoint{Transport::unix_stream, "", 0, "/tmp/x.sock"}).url(), "unix:///tmp/x.sock");
  EXPECT_EQ((Endpoint{Transport::unix_dgram, "", 0, "/tmp/x.sock"}).url(),
            "unixgram:///tmp/x.sock");
}

TEST(EndpointUrl, RoundTripsEveryAcceptedForm) {
  for (const Good& g : good_cases()) {
    SCOPED_TRACE("input: '" + g.input + "'");
    const Endpoint e = must_parse(g.input);
    const Endpoint again = must_parse(e.url());
    EXPECT_EQ(again, e);
    EXPECT_EQ(again.url(), e.url());
  }
}

// ---------------------------------------------------------------------------------------------
// is_loopback(): 127/8, ::1, localhost, unix; nothing else

TEST(EndpointLoopback, TruthTableOfParsedUrls) {
  struct Row {
    const char* url;
    bool loopback;
  };
  const Row rows[] = {
      {"tcp://127.0.0.1:8080", true},
      {"tcp://127.255.255.254:1", true},
      {"udp://127.1.2.3:1", true},
      {"127.0.0.0:1", true},
      {"[::1]:1", true},
      {"udp://[::1]:1", true},
      {"[0:0:0:0:0:0:0:1]:1", true},
      {"localhost:1", true},
      {"LocalHost:1", true},
      {"udp://LOCALHOST:1", true},
      {"unix:///tmp/x", true},
      {"unixgram:///tmp/x", true},
      {"0.0.0.0:1", false},
      {"[::]:1", false},
      {"128.0.0.1:1", false},
      {"126.255.255.255:1", false},
      {"10.0.0.1:1", false},
      {"192.168.1.1:1", false},
      {"example.com:1", false},
      {"localhost.example:1", false},
      {"localhost6:1", false},
      {"my-localhost:1", false},
      {"127.example:1", false},
      {"[::2]:1", false},
      {"[fe80::1%lo]:1", false},
      {"[::ffff:127.0.0.1]:1", false},
      {"[2001:db8::1]:1", false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.url);
    EXPECT_EQ(must_parse(row.url).is_loopback(), row.loopback);
  }
}

TEST(EndpointLoopback, HandBuiltEndpointsAreCheckedStrictly) {
  auto tcp = [](std::string host) { return Endpoint{Transport::tcp, std::move(host), 1, ""}; };
  EXPECT_TRUE(tcp("127.0.0.1").is_loopback());
  EXPECT_TRUE(tcp("0:0:0:0:0:0:0:1").is_loopback());
  EXPECT_TRUE(tcp("localhost").is_loopback());
  EXPECT_FALSE(tcp("").is_loopback());
  EXPECT_FALSE(tcp("127").is_loopback());
  EXPECT_FALSE(tcp("127.0.0").is_loopback());
  EXPECT_FALSE(tcp("127.0.0.1.5").is_loopback());
  EXPECT_FALSE(tcp("127.0.0.256").is_loopback());
  EXPECT_FALSE(tcp("127..0.1").is_loopback());
  EXPECT_FALSE(tcp("0127.0.0.1").is_loopback());
  EXPECT_FALSE(tcp("127.0.0.1 ").is_loopback());
  EXPECT_FALSE(tcp("127.0.0.1\0"s).is_loopback());
  EXPECT_FALSE(tcp("::1\0"s).is_loopback());
  EXPECT_FALSE(tcp(":::1").is_loopback());
  EXPECT_TRUE((Endpoint{Transport::unix_stream, "", 0, "/x"}).is_loopback());
  EXPECT_TRUE((Endpoint{Transport::unix_dgram, "", 0, "/x"}).is_loopback());
}

}  // namespace
}  // namespace duplex::net
