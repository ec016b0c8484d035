// Datagram service basics over UDP (127.0.0.1, ::1) and unixgram: one exact reply per datagram,
// boundaries kept from 0 to 65,507 bytes, many peers at once, truncation, unbound senders.
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datagram/datagram_peer.hpp"
#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr std::size_t kMaxUdp4 = 65507;  // 65,535 - 20 (IPv4 header) - 8 (UDP header)

enum class Kind { udp4, udp6, unixgram };

std::string kind_name(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::udp4: return "Udp4";
    case Kind::udp6: return "Udp6";
    case Kind::unixgram: return "Unixgram";
  }
  return "?";
}

class DatagramBasics : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case Kind::udp4: server_ = std::make_unique<TestServer>(args("udp://127.0.0.1:0")); break;
      case Kind::udp6: server_ = std::make_unique<TestServer>(args("udp://[::1]:0")); break;
      case Kind::unixgram:
        server_ = std::make_unique<TestServer>(args("unixgram://" + dir_.file("s")));
        break;
    }
  }
  static std::vector<std::string> args(const std::string& url) { return {"--listen", url, "-v"}; }
  std::unique_ptr<DatagramPeer> peer(bool bind_unix = true) {
    return std::make_unique<DatagramPeer>(server_->url(), dir_.path().string(), bind_unix);
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

TEST_P(DatagramBasics, ExactReplies) {
  auto p = peer();
  for (const std::string& msg :
       {std::string("hello"), std::string("Grüße, ünïcödé ✓ stays"), std::string("a\0b\nc", 5),
        std::string("ALREADY UPPER 123"), std::string(1, '\xff')}) {
    const auto reply = p->ask(msg);
    ASSERT_TRUE(reply) << "no reply to '" << msg << "'";
    EXPECT_TRUE(same_bytes(*reply, ascii_upper(msg)));
  }
}

TEST_P(DatagramBasics, EmptyDatagramGetsAnEmptyReply) {
  auto p = peer();
  const auto reply = p->ask("");
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "");
  // And the next one is still its own datagram.
  EXPECT_EQ(p->ask("next"), "NEXT");
}

// 1,000 datagrams of distinct sizes spread over 0..65,507: each reply is one datagram of the
// same size, upper-cased. Several are in flight at once, but at most 8 and 48 KiB: more could
// overflow this client's own receive queue (a UDP socket's net.core.rmem_default counts kernel
// overhead too; a Unix one holds net.unix.max_dgram_qlen = 10) and lose replies unread.
TEST_P(DatagramBasics, ThousandSizesKeepTheirBoundaries) {
  auto p = peer();
  constexpr std::size_t kCount = 1000;
  constexpr std::size_t kWindowBytes = 48 * 1024;
  constexpr std::size_t kWindowCount = 8;
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < kCount; ++i) {
    const std::size_t size = i * kMaxUdp4 / (kCount - 1);
    sent.push_back(random_bytes(size, i));
  }
  ASSERT_EQ(sent.front().size(), 0u);
  ASSERT_EQ(sent.back().size(), kMaxUdp4);
  std::size_t next = 0, answered = 0, in_flight = 0;
  while (answered < kCount) {
    while (next < kCount && (next == answered || (next - answered < kWindowCount &&
                                                  in_flight + sent[next].size() <= kWindowBytes))) {
      ASSERT_EQ(p->send(sent[next]), 0) << "size " << sent[next].size();
      in_flight += sent[next++].size();
    }
    const auto reply = p->recv();
    ASSERT_TRUE(reply) << "no reply to datagram " << answered << " (" << sent[answered].size()
                       << " bytes)";
    ASSERT_TRUE(same_bytes(*reply, ascii_upper(sent[answered]))) << "datagram " << answered;
    in_flight -= sent[answered++].size();
  }
}

TEST_P(DatagramBasics, FiftyPeersAtOnce) {
  constexpr std::size_t kPeers = 50;
  std::vector<std::unique_ptr<DatagramPeer>> peers;
  for (std::size_t i = 0; i < kPeers; ++i)
    peers.push_back(peer());
  for (int round = 0; round < 20; ++round) {
    for (std::size_t i = 0; i < kPeers; ++i)
      ASSERT_EQ(peers[i]->send("peer " + std::to_string(i) + " round " + std::to_string(round)), 0);
    for (std::size_t i = 0; i < kPeers; ++i) {
      const auto reply = peers[i]->recv();
      ASSERT_TRUE(reply) << "peer " << i << " round " << round;
      EXPECT_EQ(*reply, "PEER " + std::to_string(i) + " ROUND " + std::to_string(round));
    }
  }
}

TEST_P(DatagramBasics, LargestDatagramOfTheFamily) {
  // IPv6 carries 20 bytes more than IPv4 (no IP header options in the payload limit: 65,535 -
  // 8); a Unix datagram is served up to 64 KiB.
  const std::size_t largest = GetParam() == Kind::udp4   ? kMaxUdp4
                              : GetParam() == Kind::udp6 ? 65527
                                                         : 65536;
  auto p = peer();
  const std::string msg = random_bytes(largest, 7);
  const auto reply = p->ask(msg);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(same_bytes(*reply, ascii_upper(msg)));
}

INSTANTIATE_TEST_SUITE_P(Transports, DatagramBasics,
                         ::testing::Values(Kind::udp4, Kind::udp6, Kind::unixgram), kind_name);

// A Unix datagram longer than the server receives (64 KiB) arrives truncated: it is counted and
// not answered with the upper-cased prefix, and the server goes on answering.
TEST(DatagramUnix, TruncatedDatagramIsNotAnswered) {
  TempDir dir;
  TestServer server({"--listen", "unixgram://" + dir.file("s"), "-v"});
  DatagramPeer p(server.url(), dir.path().string());
  const int sndbuf = 512 * 1024;
  ASSERT_EQ(::setsockopt(p.fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  ASSERT_EQ(p.send(std::string(100'000, 'x')), 0);
  ASSERT_EQ(p.send(std::string(65537, 'y')), 0);
  // Datagrams from one socket are delivered in order: the first reply must be this one's.
  const auto reply = p.ask("after");
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "AFTER");
  EXPECT_FALSE(p.recv(200ms)) << "a truncated datagram was answered";
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  // The summary line is the server's last words; its stderr may still be in the pipe.
  EXPECT_TRUE(server.wait_stderr("3 datagrams received, 1 replied, 2 truncated"))
      << server.stderr_text();
}

// An unbound Unix datagram socket has no address: its datagrams are counted and dropped.
TEST(DatagramUnix, UnboundSenderIsCountedAndDropped) {
  TempDir dir;
  TestServer server({"--listen", "unixgram://" + dir.file("s"), "-v"});
  DatagramPeer unbound(server.url(), dir.path().string(), /*bind_unix=*/false);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(unbound.send("nobody to answer"), 0);
  DatagramPeer bound(server.url(), dir.path().string());
  EXPECT_EQ(bound.ask("still here"), "STILL HERE");
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  EXPECT_TRUE(server.wait_stderr("5 without a reply address")) << server.stderr_text();
}

// A Unix peer that never reads: its queue fills (net.unix.max_dgram_qlen), the server's
// replies to it would block, so they are dropped and counted, and everyone else is served.
TEST(DatagramUnix, PeerThatNeverReadsCostsOthersNothing) {
  TempDir dir;
  TestServer server({"--listen", "unixgram://" + dir.file("s"), "-v"});
  DatagramPeer deaf(server.url(), dir.path().string());
  DatagramPeer other(server.url(), dir.path().string());
  constexpr int kSent = 100;
  for (int i = 0; i < kSent; ++i) {
    ASSERT_EQ(deaf.send(std::string(1000, 'q')), 0);
    if (i % 10 == 0) {
      const auto reply = other.ask("others first " + std::to_string(i), 1, 2s);
      ASSERT_TRUE(reply) << "no reply while a deaf peer's queue is full, round " << i;
      EXPECT_EQ(*reply, "OTHERS FIRST " + std::to_string(i));
    }
  }
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  // At most the deaf peer's queue length (10 by default) of its replies got through. The
  // summary line: "..., N replies dropped, ...".
  ASSERT_TRUE(server.wait_stderr(" replies dropped, ")) << server.stderr_text();
  const std::string text = server.stderr_text();
  const auto at = text.find(" replies dropped, ");
  const auto start = text.rfind(", ", at) + 2;
  EXPECT_GE(std::stoi(text.substr(start, at - start)), kSent / 2) << text;
}

TEST(DatagramUnix, SocketFileIsOwnerOnlyAndRemovedAtExit) {
  TempDir dir;
  const std::string path = dir.file("s");
  {
    TestServer server({"--listen", "unixgram://" + path});
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(DatagramUnix, LiveServerIsNotReplacedButAStaleFileIs) {
  TempDir dir;
  const std::string path = dir.file("s");
  TestServer first({"--listen", "unixgram://" + path});
  const auto second =
      run({duplex_bin(), "serve", "--listen", "unixgram://" + path}, {}, std::chrono::seconds(10));
  EXPECT_NE(second.status.code, 0);
  EXPECT_NE(second.err.find("another server is bound there"), std::string::npos) << second.err;
  EXPECT_EQ(line_count(second.err), 1u) << second.err;
  DatagramPeer p(first.url(), dir.path().string());
  EXPECT_EQ(p.ask("first"), "FIRST");

  // A server killed with SIGKILL leaves its file behind: the next one takes the path over.
  first.process().signal(SIGKILL);
  ASSERT_TRUE(first.process().wait(5s));
  ASSERT_TRUE(std::filesystem::exists(path));
  TestServer third({"--listen", "unixgram://" + path});
  DatagramPeer q(third.url(), dir.path().string());
  EXPECT_EQ(q.ask("third"), "THIRD");
}

// Two servers on one unicast UDP port would split its datagrams between them: the second is
// refused, in one line.
TEST(DatagramUdp, SecondServerOnSameUnicastPortIsRefused) {
  for (const std::string& host : {std::string("127.0.0.1"), std::string("[::1]")}) {
    TestServer first({"--listen", "udp://" + host + ":0"});
    const auto second =
        run({duplex_bin(), "serve", "--listen", first.url()}, {}, std::chrono::seconds(10));
    EXPECT_TRUE(second.status.exited);
    EXPECT_NE(second.status.code, 0);
    EXPECT_NE(second.err.find("address already in use"), std::string::npos) << second.err;
    EXPECT_EQ(line_count(second.err), 1u) << second.err;
    EXPECT_EQ(second.out.find("listening on"), std::string::npos) << second.out;
    DatagramPeer p(first.url());
    EXPECT_EQ(p.ask("first still serves"), "FIRST STILL SERVES");
  }
}

// A server bound to 0.0.0.0 answers from the address it was asked on (IP_PKTINFO): a client on
// a connected socket, which accepts datagrams only from that address, gets its reply.
TEST(DatagramUdp, WildcardServerAnswersFromTheAddressAsked) {
  TestServer server({"--listen", "udp://0.0.0.0:0"});
  const std::string port = std::to_string(server.port());
  for (const char* host : {"127.0.0.1", "127.0.0.2"}) {
    DatagramPeer p(std::string("udp://") + host + ":" + port);
    const auto to = DatagramAddress::parse(std::string("udp://") + host + ":" + port);
    ASSERT_EQ(::connect(p.fd(), reinterpret_cast<const sockaddr*>(&to.sa), to.len), 0);
    const auto reply = p.ask("which address?");
    ASSERT_TRUE(reply) << "no reply via " << host;
    EXPECT_EQ(*reply, "WHICH ADDRESS?");
  }
}

}  // namespace
}  // namespace duplex::test
