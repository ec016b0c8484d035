// Discovery over a server's UDP port: a probe (docs/PROTOCOL.md) gets exactly one reply with its
// nonce and a JSON object naming the server, its listeners and services; a bad probe gets none.
// Probes and replies are built here by hand, from the spec, not with the library's codec.
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "datagram/datagram_peer.hpp"
#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

std::string probe(std::uint64_t nonce, std::uint8_t version = 1) {
  std::string p("\0DPX?", 5);
  p += static_cast<char>(version);
  for (int i = 7; i >= 0; --i)
    p += static_cast<char>((nonce >> (8 * i)) & 0xff);
  return p;
}

struct Reply {
  std::uint64_t nonce = 0;
  nlohmann::json json;
};

/// Parses a reply datagram: 00 'D' 'P' 'X' '!' version(1) nonce(u64, big-endian) JSON.
::testing::AssertionResult parse_reply(const std::string& d, Reply& out) {
  if (d.size() < 15 || d.compare(0, 5, std::string("\0DPX!", 5)) != 0 || d[5] != 1)
    return ::testing::AssertionFailure() << "not a discovery reply (" << d.size() << " bytes)";
  out.nonce = 0;
  for (std::size_t i = 6; i < 14; ++i)
    out.nonce = (out.nonce << 8) | static_cast<unsigned char>(d[i]);
  out.json = nlohmann::json::parse(d.substr(14), nullptr, false);
  if (!out.json.is_object()) return ::testing::AssertionFailure() << "JSON: " << d.substr(14);
  return ::testing::AssertionSuccess();
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

TEST(DatagramDiscovery, ProbeGetsOneReplyNamingTheServer) {
  TempDir dir;
  TestServer server({"--listen", "udp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0", "--listen",
                     "unixgram://" + dir.file("g"), "--listen", "udp://[::1]:0"});
  for (const std::size_t udp : {std::size_t{0}, std::size_t{3}}) {
    DatagramPeer p(server.url(udp));
    const std::uint64_t nonce = 0x0123456789abcdefull + udp;
    const auto d = p.ask(probe(nonce));
    ASSERT_TRUE(d) << "no reply to a probe on " << server.url(udp);
    Reply r;
    ASSERT_TRUE(parse_reply(*d, r));
    EXPECT_EQ(r.nonce, nonce);
    const auto& j = r.json;
    EXPECT_EQ(j.value("name", ""), host_name());
    EXPECT_EQ(j.value("pid", -1), server.pid());
    EXPECT_FALSE(j.value("version", "").empty());
    EXPECT_EQ(j.value("agent", ""), "duplex/" + j.value("version", "?"));
    EXPECT_EQ(j.value("listeners", std::vector<std::string>{}), server.urls());
    EXPECT_EQ(j.value("services", std::vector<std::string>{}), std::vector<std::string>{"upper"});
    EXPECT_FALSE(p.recv(200ms)) << "more than one reply to one probe";
  }
}

TEST(DatagramDiscovery, ExecIsListedWhenEnabled) {
  TempDir dir;
  TestServer server({"--listen", "udp://127.0.0.1:0", "--exec", "--token-file", dir.file("t")});
  DatagramPeer p(server.url());
  const auto d = p.ask(probe(42));
  ASSERT_TRUE(d);
  Reply r;
  ASSERT_TRUE(parse_reply(*d, r));
  EXPECT_EQ(r.nonce, 42u);
  EXPECT_EQ(r.json.value("services", std::vector<std::string>{}),
            (std::vector<std::string>{"upper", "exec"}));
}

TEST(DatagramDiscovery, BadProbeGetsNothing) {
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  DatagramPeer p(server.url());
  std::string truncated = probe(1);
  truncated.pop_back();
  for (const std::string& bad : {probe(1, 2), truncated, probe(1) + "x"})
    ASSERT_EQ(p.send(bad), 0);
  // Datagrams from one socket arrive in order: the first reply must be the good probe's.
  const auto d = p.ask(probe(7));
  ASSERT_TRUE(d);
  Reply r;
  ASSERT_TRUE(parse_reply(*d, r));
  EXPECT_EQ(r.nonce, 7u);
  EXPECT_FALSE(p.recv(200ms));
}

// A server on 0.0.0.0 hears broadcasts to its port. On `lo` the broadcast address is
// 127.255.255.255 (nothing leaves this machine); the replies come back unicast, from the
// server's own address.
TEST(DatagramDiscovery, WildcardServerAnswersALoopbackBroadcast) {
  TestServer server({"--listen", "udp://0.0.0.0:0"});
  const std::string to = "udp://127.255.255.255:" + std::to_string(server.port());
  DatagramPeer p(to);
  const int on = 1;
  ASSERT_EQ(::setsockopt(p.fd(), SOL_SOCKET, SO_BROADCAST, &on, sizeof on), 0);
  sockaddr_storage from{};
  ASSERT_EQ(p.send("hello everyone"), 0);
  EXPECT_EQ(p.recv(5s, &from), "HELLO EVERYONE");
  ASSERT_EQ(p.send(probe(99)), 0);
  const auto d = p.recv(5s, &from);
  ASSERT_TRUE(d);
  Reply r;
  ASSERT_TRUE(parse_reply(*d, r));
  EXPECT_EQ(r.nonce, 99u);
  EXPECT_EQ(r.json.value("pid", -1), server.pid());
  const auto& sender = reinterpret_cast<const sockaddr_in&>(from);
  EXPECT_EQ(ntohl(sender.sin_addr.s_addr), INADDR_LOOPBACK);  // unicast, not the broadcast address
  EXPECT_EQ(ntohs(sender.sin_port), server.port());
}

}  // namespace
}  // namespace duplex::test
