// Tests for wire/proxy_header: v1 and v2 headers as HAProxy's spec writes them (the bytes built
// here by hand, not by our code), every prefix of a good header, and each kind of bad input.
#include "duplex/wire/proxy_header.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace duplex::wire {
namespace {

using namespace std::string_literals;

ProxyHeader decode(std::string_view s, std::size_t max = kProxyMaxSize) {
  return decode_proxy_header(as_bytes(s), max);
}

std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, std::string_view body) {
  std::string out(reinterpret_cast<const char*>(kProxyV2Signature.data()), 12);
  out += static_cast<char>(ver_cmd);
  out += static_cast<char>(fam);
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  out += body;
  return out;
}

// 203.0.113.7:4660 -> 198.51.100.1:443
const std::string kInetBody = "\xcb\x00\x71\x07\xc6\x33\x64\x01\x12\x34\x01\xbb"s;

std::string ipv6_body() {
  std::string b(16, '\0');
  b[0] = '\x20';  // 2001:db8::7
  b[1] = '\x01';
  b[2] = '\x0d';
  b[3] = '\xb8';
  b[15] = '\x07';
  b += std::string(15, '\0') + "\x01"s;  // ::1
  b += "\xff\xff\x00\x50"s;              // 65535 -> 80
  return b;
}

std::string tlv(std::uint8_t type, std::string_view value) {
  std::string out;
  out += static_cast<char>(type);
  out += static_cast<char>(value.size() >> 8);
  out += static_cast<char>(value.size() & 0xff);
  return out + std::string(value);
}

// Every strict prefix of a good header asks for more; none is an error or a verdict.
void expect_prefixes_need_more(const std::string& header) {
  for (std::size_t n = 0; n < header.size(); ++n)
    EXPECT_EQ(decode(header.substr(0, n)).status, ProxyStatus::need_more) << "prefix of " << n;
}

TEST(ProxyHeaderV1, Tcp4) {
  const std::string line = "PROXY TCP4 203.0.113.7 198.51.100.1 4660 443\r\n";
  const auto h = decode(line + "hello");
  ASSERT_EQ(h.status, ProxyStatus::parsed) << h.error;
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.command, ProxyCommand::proxy);
  EXPECT_EQ(h.family, ProxyFamily::inet);
  EXPECT_EQ(h.size, line.size());
  const std::array<std::uint8_t, 4> src{203, 0, 113, 7}, dst{198, 51, 100, 1};
  EXPECT_TRUE(std::equal(src.begin(), src.end(), h.source.ip.begin()));
  EXPECT_TRUE(std::equal(dst.begin(), dst.end(), h.destination.ip.begin()));
  EXPECT_EQ(h.source.port, 4660);
  EXPECT_EQ(h.destination.port, 443);
  expect_prefixes_need_more(line);
}

TEST(ProxyHeaderV1, Tcp6AtTheLongestLine) {
  const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const std::string line = "PROXY TCP6 " + full + " " + full + " 65535 65535\r\n";
  ASSERT_EQ(line.size(), 104u);
  const auto h = decode(line);
  ASSERT_EQ(h.status, ProxyStatus::parsed) << h.error;
  EXPECT_EQ(h.family, ProxyFamily::inet6);
  EXPECT_EQ(h.source.ip[0], 0xff);
  EXPECT_EQ(h.source.port, 65535);
  EXPECT_EQ(h.size, line.size());
  expect_prefixes_need_more(line);
}

TEST(ProxyHeaderV1, UnknownIgnoresTheRestOfTheLine) {
  for (std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ::1 whatever 1 2\r\n"}) {
    const auto h = decode(line + "x");
    ASSERT_EQ(h.status, ProxyStatus::parsed) << line;
    EXPECT_EQ(h.family, ProxyFamily::unspec);
    EXPECT_EQ(h.command, ProxyCommand::proxy);
    EXPECT_EQ(h.size, line.size());
  }
}

TEST(ProxyHeaderV1, MalformedLinesAreErrors) {
  for (std::string line : {
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660 443\n",          // LF without CR
           "PROXY TCP5 203.0.113.7 198.51.100.1 4660 443\r\n",        // protocol
           "PROXY tcp4 203.0.113.7 198.51.100.1 4660 443\r\n",        // case matters
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660\r\n",            // a field short
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660 443 9\r\n",      // a field over
           "PROXY TCP4 203.0.113.7  198.51.100.1 4660 443\r\n",       // two spaces
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660 443 \r\n",       // trailing space
           "PROXY TCP4 ::1 198.51.100.1 4660 443\r\n",                // v6 address in TCP4
           "PROXY TCP6 203.0.113.7 ::1 4660 443\r\n",                 // v4 address in TCP6
           "PROXY TCP4 203.0.113 198.51.100.1 4660 443\r\n",          // not a dotted quad
           "PROXY TCP4 example.com 198.51.100.1 4660 443\r\n",        // names are not addresses
           "PROXY TCP6 fe80::1%eth0 ::1 4660 443\r\n",                // zone index
           "PROXY TCP4 203.0.113.7 198.51.100.1 65536 443\r\n",       // port range
           "PROXY TCP4 203.0.113.7 198.51.100.1 -1 443\r\n",          // sign
           "PROXY TCP4 203.0.113.7 198.51.100.1 +80 443\r\n",         // sign
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660 0x1bb\r\n",      // hex
           "PROXY TCP4 203.0.113.7 198.51.100.1 4660 4430000000\r\n"  // long
       }) {
    const auto h = decode(line);
    EXPECT_EQ(h.status, ProxyStatus::error) << line;
    EXPECT_FALSE(h.error.empty()) << line;
    EXPECT_EQ(h.error.find('\n'), std::string_view::npos);
  }
}

TEST(ProxyHeaderV1, NoCrlfWithin107BytesIsAnError) {
  const std::string line = "PROXY UNKNOWN " + std::string(92, 'x');  // 106 bytes
  EXPECT_EQ(decode(line).status, ProxyStatus::need_more);
  const auto h = decode(line + "y");  // 107 bytes and still no CRLF
  EXPECT_EQ(h.status, ProxyStatus::error);
  EXPECT_NE(h.error.find("107"), std::string_view::npos);
  // A CRLF that comes later does not help: the header is over its size already.
  EXPECT_EQ(decode(line + "y\r\n").status, ProxyStatus::error);
}

TEST(ProxyHeaderV2, Inet) {
  const std::string header = v2(0x21, 0x11, kInetBody);
  const auto h = decode(header + "\x00DPX"s);
  ASSERT_EQ(h.status, ProxyStatus::parsed) << h.error;
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.command, ProxyCommand::proxy);
  EXPECT_EQ(h.family, ProxyFamily::inet);
  EXPECT_FALSE(h.datagram);
  EXPECT_EQ(h.size, 28u);
  EXPECT_EQ(h.source.ip[0], 203);
  EXPECT_EQ(h.source.ip[3], 7);
  EXPECT_EQ(h.destination.ip[0], 198);
  EXPECT_EQ(h.source.port, 0x1234);
  EXPECT_EQ(h.destination.port, 443);
  expect_prefixes_need_more(header);
}

TEST(ProxyHeaderV2, Inet6WithTlvs) {
  const std::string body = ipv6_body() + tlv(0x01, "h2") + tlv(0x02, "example.com") + tlv(0x04, "");
  const std::string header = v2(0x21, 0x21, body);
  const auto h = decode(header + "\x16\x03\x01"s);
  ASSERT_EQ(h.status, ProxyStatus::parsed) << h.error;
  EXPECT_EQ(h.family, ProxyFamily::inet6);
  EXPECT_EQ(h.size, header.size());
  EXPECT_EQ(h.source.ip[0], 0x20);
  EXPECT_EQ(h.source.ip[15], 7);
  EXPECT_EQ(h.destination.ip[15], 1);
  EXPECT_EQ(h.source.port, 65535);
  EXPECT_EQ(h.destination.port, 80);
  expect_prefixes_need_more(header);
}

TEST(ProxyHeaderV2, UnixPaths) {
  std::string body(216, '\0');
  body.replace(0, 9, "/run/a.sk");
  body.replace(108, 5, "/b.sk");
  // The paths are views into the bytes decoded: those must outlive them.
  const std::string bytes = v2(0x21, 0x31, body);
  const auto h = decode(bytes);
  ASSERT_EQ(h.status, ProxyStatus::parsed) << h.error;
  EXPECT_EQ(h.family, ProxyFamily::unix_socket);
  EXPECT_EQ(h.source.path, "/run/a.sk");
  EXPECT_EQ(h.destination.path, "/b.sk");
  // A path that fills its 108 bytes has no NUL: all of it.
  const std::string full_bytes = v2(0x21, 0x31, std::string(216, 'p'));
  const auto full = decode(full_bytes);
  ASSERT_EQ(full.status, ProxyStatus::parsed);
  EXPECT_EQ(full.source.path.size(), 108u);
}

TEST(ProxyHeaderV2, LocalIgnoresItsAddresses) {
  // HAProxy's health checks: LOCAL, usually AF_UNSPEC with nothing after it.
  const auto bare = decode(v2(0x20, 0x00, ""));
  ASSERT_EQ(bare.status, ProxyStatus::parsed);
  EXPECT_EQ(bare.command, ProxyCommand::local);
  EXPECT_EQ(bare.family, ProxyFamily::unspec);
  EXPECT_EQ(bare.size, 16u);
  // With a family but no room for its addresses: still fine, the block is not read.
  const auto odd = decode(v2(0x20, 0x11, "abc"));
  ASSERT_EQ(odd.status, ProxyStatus::parsed);
  EXPECT_EQ(odd.command, ProxyCommand::local);
  EXPECT_EQ(odd.size, 19u);
}

TEST(ProxyHeaderV2, UnspecProxyCarriesNoAddress) {
  const auto h = decode(v2(0x21, 0x00, "anything"));
  ASSERT_EQ(h.status, ProxyStatus::parsed);
  EXPECT_EQ(h.command, ProxyCommand::proxy);
  EXPECT_EQ(h.family, ProxyFamily::unspec);
  EXPECT_EQ(h.size, 24u);
}

TEST(ProxyHeaderV2, Datagram) {
  const auto h = decode(v2(0x21, 0x12, kInetBody));
  ASSERT_EQ(h.status, ProxyStatus::parsed);
  EXPECT_TRUE(h.datagram);
}

TEST(ProxyHeaderV2, BadFieldsAreErrors) {
  for (std::string header : {
           v2(0x11, 0x11, kInetBody),                               // version 1 in v2 form
           v2(0x31, 0x11, kInetBody),                               // version 3
           v2(0x22, 0x11, kInetBody),                               // command 2
           v2(0x21, 0x41, kInetBody),                               // family 4
           v2(0x21, 0x13, kInetBody),                               // transport 3
           v2(0x21, 0x11, kInetBody.substr(0, 11)),                 // address block short
           v2(0x21, 0x21, kInetBody),                               // v6 family, v4 block
           v2(0x21, 0x31, std::string(215, '\0')),                  // unix block short
           v2(0x21, 0x11, kInetBody + "\x01\x00"s),                 // TLV header cut
           v2(0x21, 0x11, kInetBody + "\x01\x00\x05xy"s),           // TLV value overruns
           v2(0x21, 0x11, kInetBody + tlv(1, "ok") + "\x02\x00"s),  // second TLV cut
       }) {
    const auto h = decode(header);
    EXPECT_EQ(h.status, ProxyStatus::error) << testing::PrintToString(header);
    EXPECT_FALSE(h.error.empty());
  }
}

TEST(ProxyHeaderV2, OverTheLimitIsRefusedBeforeItArrives) {
  // Only the fixed part is there: the announced length alone decides.
  const std::string big = v2(0x21, 0x11, kInetBody + tlv(0xEE, std::string(5000, 'z')));
  EXPECT_EQ(decode(big.substr(0, 16)).status, ProxyStatus::error);
  EXPECT_EQ(decode(big).status, ProxyStatus::error);
  // The caller's own limit, and a header exactly at it.
  const std::string h28 = v2(0x21, 0x11, kInetBody);
  EXPECT_EQ(decode(h28, 28).status, ProxyStatus::parsed);
  EXPECT_EQ(decode(h28, 27).status, ProxyStatus::error);
  // The largest the spec allows is taken when asked for.
  const std::string max = v2(0x21, 0x11, kInetBody + tlv(0xEE, std::string(65535 - 12 - 3, 'z')));
  EXPECT_EQ(decode(max, 16 + 65535).status, ProxyStatus::parsed);
}

TEST(ProxyHeader, OtherBytesAreNotAHeader) {
  for (std::string s : {"hello\n"s, "\x00DPX"s, "\x16\x03\x01\x02\x00"s, "PROXX"s, "proxy tcp4"s,
                        "\r\n\r\nGET"s, "PROXYTCP4 "s, "\r\n\r\n\x00\r\nQUIx"s}) {
    EXPECT_EQ(decode(s).status, ProxyStatus::not_proxy) << testing::PrintToString(s);
    EXPECT_FALSE(starts_with_proxy_signature(as_bytes(s)));
  }
  EXPECT_EQ(decode("").status, ProxyStatus::need_more);
}

TEST(ProxyHeader, SignatureNeedsItsWholePrefix) {
  EXPECT_TRUE(starts_with_proxy_signature(as_bytes("PROXY TCP4 garbage")));
  EXPECT_TRUE(starts_with_proxy_signature(as_bytes(v2(0x21, 0x11, kInetBody))));
  EXPECT_TRUE(starts_with_proxy_signature(as_bytes(v2(0x21, 0x11, kInetBody).substr(0, 12))));
  EXPECT_FALSE(starts_with_proxy_signature(as_bytes("PROXY")));
  EXPECT_FALSE(starts_with_proxy_signature(as_bytes(v2(0x21, 0x11, "").substr(0, 11))));
}

}  // namespace
}  // namespace duplex::wire
