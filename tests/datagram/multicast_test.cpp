// Multicast on loopback: two servers join one group on `lo` (--multicast-if lo, or the IPv6
// zone), and one datagram sent to the group gets a reply from each, unicast to the sender.
// Skipped, with the reason, where the kernel does not loop multicast back on `lo`; the
// multi-host case runs across network namespaces (tests/netns).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
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

// Administratively scoped (RFC 2365) and not the discovery group, so that nothing else on this
// machine hears these tests.
constexpr const char* kGroup4 = "239.255.77.1";
constexpr const char* kGroup6 = "ff02::77:1";

/// A UDP socket whose group datagrams leave through `lo` and loop back to this host.
std::unique_ptr<DatagramPeer> group_sender(const std::string& group_url) {
  auto p = std::make_unique<DatagramPeer>(group_url);
  const unsigned lo = ::if_nametoindex("lo");
  if (group_url.find('[') == std::string::npos) {
    ip_mreqn req{};
    req.imr_ifindex = static_cast<int>(lo);
    ::setsockopt(p->fd(), IPPROTO_IP, IP_MULTICAST_IF, &req, sizeof req);
    const unsigned char loop = 1;
    ::setsockopt(p->fd(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
  } else {
    const int index = static_cast<int>(lo);
    ::setsockopt(p->fd(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index);
    const int loop = 1;
    ::setsockopt(p->fd(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop);
  }
  return p;
}

/// The datagrams that arrive, each within 500 ms of the one before (the first within 3 s), at
/// most one more than `at_most` (so that an extra reply is seen).
std::vector<std::string> collect(DatagramPeer& p, std::size_t at_most) {
  std::vector<std::string> got;
  if (auto first = p.recv(3s)) got.push_back(*first);
  while (!got.empty() && got.size() < at_most + 1)
    if (auto more = p.recv(500ms))
      got.push_back(*more);
    else
      break;
  return got;
}

/// Why multicast cannot be tested on `lo` here, or nothing when it can: a plain socket joins
/// the group on lo and must hear its own datagram.
std::optional<std::string> loopback_multicast_unavailable(bool v6) {
  const int family = v6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  const unsigned lo = ::if_nametoindex("lo");
  DatagramAddress group;
  int rc = 0;
  if (!v6) {
    auto& in = reinterpret_cast<sockaddr_in&>(group.sa);
    in.sin_family = AF_INET;
    ::inet_pton(AF_INET, kGroup4, &in.sin_addr);
    group.len = sizeof in;
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in);
    ip_mreqn req{};
    req.imr_multiaddr = in.sin_addr;
    req.imr_ifindex = static_cast<int>(lo);
    if (rc == 0) rc = ::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &req, sizeof req);
    if (rc == 0) rc = ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &req, sizeof req);
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(group.sa);
    in6.sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, kGroup6, &in6.sin6_addr);
    in6.sin6_scope_id = lo;
    group.len = sizeof in6;
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&in6), sizeof in6);
    ipv6_mreq req{};
    req.ipv6mr_multiaddr = in6.sin6_addr;
    req.ipv6mr_interface = lo;
    const int index = static_cast<int>(lo);
    if (rc == 0) rc = ::setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &req, sizeof req);
    if (rc == 0) rc = ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index);
  }
  std::optional<std::string> why;
  if (rc != 0) why = std::string("joining a group on lo: ") + std::strerror(errno);
  if (!why) {
    sockaddr_storage self{};
    socklen_t len = sizeof self;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len);
    if (v6)
      reinterpret_cast<sockaddr_in6&>(group.sa).sin6_port =
          reinterpret_cast<sockaddr_in6&>(self).sin6_port;
    else
      reinterpret_cast<sockaddr_in&>(group.sa).sin_port =
          reinterpret_cast<sockaddr_in&>(self).sin_port;
    if (::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&group.sa), group.len) != 1) {
      why = std::string("sending to a group on lo: ") + std::strerror(errno);
    } else {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1) why = "the kernel does not loop multicast back on lo";
    }
  }
  ::close(fd);
  return why;
}

class DatagramMulticast : public ::testing::TestWithParam<bool> {};

TEST_P(DatagramMulticast, TwoServersInOneGroupBothAnswer) {
  const bool v6 = GetParam();
  if (auto why = loopback_multicast_unavailable(v6))
    GTEST_SKIP() << (v6 ? "IPv6" : "IPv4") << " multicast on lo is not possible here (" << *why
                 << "); tests/netns runs groups between namespaces";
  // IPv4 takes the interface from --multicast-if; IPv6 from the group's zone.
  const std::string any_port =
      v6 ? std::string("udp://[") + kGroup6 + "%lo]:0" : std::string("udp://") + kGroup4 + ":0";
  const std::vector<std::string> extra =
      v6 ? std::vector<std::string>{} : std::vector<std::string>{"--multicast-if", "lo"};
  auto with = [&](const std::string& url) {
    std::vector<std::string> a{"--listen", url, "-v"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  TestServer first(with(any_port));
  const std::string port = std::to_string(first.port());
  const std::string group_url = v6 ? std::string("udp://[") + kGroup6 + "%lo]:" + port
                                   : std::string("udp://") + kGroup4 + ":" + port;
  EXPECT_EQ(first.url(), group_url);
  TestServer second(with(group_url));  // the same group and port: allowed, both get a copy
  EXPECT_TRUE(first.wait_stderr("joined multicast group"));

  const std::string send_to = v6 ? std::string("udp://[") + kGroup6 + "]:" + port : group_url;
  {
    auto p = group_sender(send_to);
    ASSERT_EQ(p->send("hello group"), 0);
    const auto replies = collect(*p, 2);
    EXPECT_EQ(replies, (std::vector<std::string>{"HELLO GROUP", "HELLO GROUP"}));
  }
  {
    // Each server answers a discovery probe sent to the group: two replies, two pids.
    auto p = group_sender(send_to);
    ASSERT_EQ(p->send(std::string("\0DPX?\x01\0\0\0\0\0\0\0\x05", 14)), 0);
    const auto replies = collect(*p, 2);
    ASSERT_EQ(replies.size(), 2u);
    std::set<long> pids;
    for (const auto& r : replies)
      pids.insert(nlohmann::json::parse(r.substr(14), nullptr, false).value("pid", -1L));
    EXPECT_EQ(pids, (std::set<long>{first.pid(), second.pid()}));
  }
}

std::string family_name(const ::testing::TestParamInfo<bool>& p) {
  return p.param ? "Ipv6" : "Ipv4";
}

INSTANTIATE_TEST_SUITE_P(Families, DatagramMulticast, ::testing::Values(false, true), family_name);

TEST(DatagramMulticastOptions, UnknownInterfaceIsRefusedInOneLine) {
  const auto r = run({duplex_bin(), "serve", "--listen", std::string("udp://") + kGroup4 + ":0",
                      "--multicast-if", "no-such-if0"},
                     {}, std::chrono::seconds(10));
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("no network interface named 'no-such-if0'"), std::string::npos) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
}

TEST(DatagramMulticastOptions, LinkLocalGroupWithoutInterfaceIsRefusedInOneLine) {
  const auto r = run({duplex_bin(), "serve", "--listen", std::string("udp://[") + kGroup6 + "]:0"},
                     {}, std::chrono::seconds(10));
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("a link-local group needs an interface"), std::string::npos) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
}

}  // namespace
}  // namespace duplex::test
