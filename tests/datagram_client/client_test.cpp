// `duplex send` and `duplex chat` over udp:// and unixgram:// against peers the test controls:
// timeouts and retries, the one-line failure, replies from a wrong address, stale duplicates, a
// lossy peer, and the unixgram reply path (0600, removed on every way out).
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "datagram_client/fake_peer.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {

/// Readable ExitStatus in assertion messages ("exit 1", "signal 15").
inline void PrintTo(const ExitStatus& st, std::ostream* os) {
  *os << (st.exited ? "exit " : "signal ") << st.code;
}

namespace {

using Family = FakePeer::Family;

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kFailure{true, 1};
constexpr ExitStatus kUsage{true, 2};

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::vector<std::string> send_argv(const std::string& url, std::vector<std::string> extra) {
  std::vector<std::string> argv{duplex_bin(), "send"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return argv;
}

// Paths in `dir` that look like our reply sockets.
std::vector<std::string> reply_sockets(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind("duplex-", 0) == 0 && e.is_socket()) out.push_back(e.path().string());
  }
  return out;
}

// Peers answer at once, so 0.2 s per try is ample and keeps the retry tests short.
const std::vector<std::string> kFast{"--timeout", "0.2"};

TEST(DatagramClient, SendsEachMessageAsOneDatagramOverIpv4AndIpv6) {
  for (auto family : {Family::v4, Family::v6}) {
    FakePeer peer(family, {});
    auto argv = send_argv(peer.url(), {});
    argv.insert(argv.end(), {"hello", "wörld ✓", "a  b"});
    const auto r = run(argv);
    EXPECT_EQ(r.status, kOk) << r.err;
    EXPECT_EQ(r.out, "HELLO\nWöRLD ✓\nA  B\n");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(peer.received(), 3u) << peer.url();
  }
}

TEST(DatagramClient, EmptyMessageIsAnEmptyDatagram) {
  FakePeer peer(Family::v4, {});
  const auto r = run({duplex_bin(), "send", peer.url(), "", "x"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "\nX\n");
  EXPECT_EQ(peer.received(), 2u);
}

TEST(DatagramClient, ThirdTryGetsTheReplyWhenTwoAreLost) {
  FakePeer peer(Family::v4, {.drop = [](std::size_t i) { return i < 2; }});
  auto argv = send_argv(peer.url(), kFast);
  argv.push_back("hello");
  const auto r = run(argv);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(peer.received(), 3u) << "the same datagram, sent three times";
  const auto from = peer.senders();
  EXPECT_TRUE(std::all_of(from.begin(), from.end(), [&](auto& s) { return s == from[0]; }))
      << "retries come from the same socket";
}

TEST(DatagramClient, WithoutRetriesALostDatagramFailsWithOneLine) {
  FakePeer peer(Family::v4, {.drop = [](std::size_t i) { return i < 2; }});
  auto argv = send_argv(peer.url(), {"--timeout", "0.2", "--retries", "0"});
  argv.push_back("hello");
  const auto start = std::chrono::steady_clock::now();
  const auto r = run(argv);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.2 s (1 try)\n", peer.url()));
  EXPECT_EQ(peer.received(), 1u);
  EXPECT_LT(took, 5s);
}

TEST(DatagramClient, DefaultsAreOneSecondAndTwoRetries) {
  FakePeer peer(Family::v4, {.drop = [](std::size_t) { return true; }});
  const auto start = std::chrono::steady_clock::now();
  const auto r = run({duplex_bin(), "send", peer.url(), "anyone?"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 1 s (3 tries)\n", peer.url()));
  EXPECT_EQ(peer.received(), 3u);
  EXPECT_GE(took, 2900ms);
  EXPECT_LT(took, 10s);
}

TEST(DatagramClient, RepliesFromAnotherAddressAreIgnored) {
  for (auto family : {Family::v4, Family::v6}) {
    FakePeer peer(family, {.drop = {}, .wrong_source_first = true});
    auto argv = send_argv(peer.url(), {});
    argv.insert(argv.end(), {"one", "two"});
    const auto r = run(argv);
    EXPECT_EQ(r.status, kOk) << r.err;
    EXPECT_EQ(r.out, "ONE\nTWO\n") << "a datagram from another port was taken for the reply";
  }
}

TEST(DatagramClient, UnixgramRepliesFromAnotherPathAreIgnored) {
  TempDir dir;
  FakePeer peer(Family::unix_dgram, {.drop = {}, .wrong_source_first = true},
                dir.file("peer.sock"));
  const auto r = run({duplex_bin(), "send", peer.url(), "one", "two"}, {}, 60s,
                     {"XDG_RUNTIME_DIR=" + dir.path().string()});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ONE\nTWO\n");
}

TEST(DatagramClient, ALateDuplicateIsNotTakenForTheNextReply) {
  // The peer answers every datagram twice, as happens when a reply was slow rather than lost
  // and the resent copy is answered too.
  FakePeer peer(Family::v4, {.drop = {}, .wrong_source_first = false, .copies = 2});
  const auto r = run({duplex_bin(), "send", peer.url(), "one", "two", "three"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ONE\nTWO\nTHREE\n");
}

TEST(DatagramClient, AServerThatRepeatsItselfIsStillHeard) {
  // Not an upper service: every reply is the same. None of them is a late duplicate.
  FakePeer peer(Family::v4, {.drop = {}, .wrong_source_first = false, .constant_reply = "OK"});
  const auto r = run({duplex_bin(), "send", peer.url(), "one", "two", "three"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "OK\nOK\nOK\n");
}

TEST(DatagramClient, NothingListeningIsOneLineAtOnce) {
  // A port that was just ours and is closed again: the kernel answers port-unreachable.
  std::string url;
  {
    FakePeer gone(Family::v4, {});
    url = gone.url();
  }
  const auto start = std::chrono::steady_clock::now();
  const auto r = run({duplex_bin(), "send", url, "hello"});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.err, fmt::format("duplex: nothing listens on {} (port unreachable)\n", url));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms) << "it waited for a timeout";
}

TEST(DatagramClient, LossyPeerNeedsTheRetries) {
  // Three datagrams in ten are lost (never two in a row): with the retries every message is
  // answered; without them one of the first few is not, and the command says so in one line.
  auto lossy = [](std::size_t i) { return i % 10 == 0 || i % 10 == 3 || i % 10 == 6; };
  std::vector<std::string> messages, want;
  for (int i = 0; i < 20; ++i) {
    messages.push_back(fmt::format("message {}", i));
    want.push_back(fmt::format("MESSAGE {}", i));
  }
  {
    FakePeer peer(Family::v4, {.drop = lossy});
    auto argv = send_argv(peer.url(), {"--timeout", "0.1", "--retries", "1"});
    argv.insert(argv.end(), messages.begin(), messages.end());
    const auto r = run(argv);
    EXPECT_EQ(r.status, kOk) << r.err;
    EXPECT_EQ(r.out, fmt::format("{}\n", fmt::join(want, "\n")));
    EXPECT_GT(peer.received(), messages.size()) << "nothing was lost, so nothing was resent";
  }
  {
    FakePeer peer(Family::v4, {.drop = lossy});
    auto argv = send_argv(peer.url(), {"--timeout", "0.1", "--retries", "0"});
    argv.insert(argv.end(), messages.begin(), messages.end());
    const auto r = run(argv);
    EXPECT_EQ(r.status, kFailure);
    EXPECT_EQ(r.out, "") << "the very first datagram is lost";
    EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.1 s (1 try)\n", peer.url()));
  }
}

TEST(DatagramClient, SendAndChatAgainstTheServerOnEveryDatagramFamily) {
  TempDir dir;
  const std::string env = "XDG_RUNTIME_DIR=" + dir.path().string();
  TestServer server({"--listen", "udp://127.0.0.1:0", "--listen", "udp://[::1]:0", "--listen",
                     "unixgram://" + dir.file("server.sock")});
  for (const auto& url : server.urls()) {
    auto r = run({duplex_bin(), "send", url, "hello wörld", "", "x"}, {}, 60s, {env});
    EXPECT_EQ(r.status, kOk) << url << ": " << r.err;
    EXPECT_EQ(r.out, "HELLO WöRLD\n\nX\n") << url;
    r = run({duplex_bin(), "chat", url}, "one\n\ntwo\n", 60s, {env});
    EXPECT_EQ(r.status, kOk) << url << ": " << r.err;
    EXPECT_EQ(r.out, "ONE\n\nTWO\n") << url;  // a blank line is a (empty) datagram too
    r = run({duplex_bin(), "send", url}, "from\n\nstdin", 60s, {env});
    EXPECT_EQ(r.status, kOk) << url << ": " << r.err;
    EXPECT_EQ(r.out, "FROM\n\nSTDIN\n") << url;
  }
  EXPECT_TRUE(reply_sockets(dir.path()).empty()) << "a reply path is left behind";
}

TEST(DatagramClient, RetriesCarryTheRealServersRepliesThroughALossyRelay) {
  // The same loss, both ways, between our client and our server (requests and replies are lost
  // three in ten each): the default two retries get every reply, none gets the one line.
  auto lossy = [](std::size_t i) { return i % 10 == 0 || i % 10 == 3 || i % 10 == 6; };
  TestServer server({"--listen", "udp://127.0.0.1:0"});
  std::vector<std::string> messages;
  std::string want;
  for (int i = 0; i < 20; ++i) {
    messages.push_back(fmt::format("through the relay {}", i));
    want += fmt::format("THROUGH THE RELAY {}\n", i);
  }
  {
    FakePeer relay(Family::v4, {.drop = lossy, .forward_port = server.port()});
    auto argv = send_argv(relay.url(), {"--timeout", "0.1"});
    argv.insert(argv.end(), messages.begin(), messages.end());
    const auto r = run(argv);
    EXPECT_EQ(r.status, kOk) << r.err;
    EXPECT_EQ(r.out, want);
  }
  {
    FakePeer relay(Family::v4, {.drop = lossy, .forward_port = server.port()});
    auto argv = send_argv(relay.url(), {"--timeout", "0.1", "--retries", "0"});
    argv.insert(argv.end(), messages.begin(), messages.end());
    const auto r = run(argv);
    EXPECT_EQ(r.status, kFailure);
    EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.1 s (1 try)\n", relay.url()));
  }
}

TEST(DatagramClient, ChatSendsEachLineAsADatagram) {
  FakePeer peer(Family::v4, {});
  const auto r = run({duplex_bin(), "chat", peer.url()}, "hello\n\n   \nworld\n", 20s);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\n\n   \nWORLD\n");
  EXPECT_EQ(peer.received(), 4u) << "blank lines are lines: each is a datagram, as send's are";
}

TEST(DatagramClient, ChatEndsWithTheOneLineWhenALineGetsNoReply) {
  FakePeer peer(Family::v4, {.drop = [](std::size_t i) { return i >= 1; }});
  const auto r = run({duplex_bin(), "chat", "--timeout", "0.1", "--retries", "1", peer.url()},
                     "first\nsecond\nthird\n", 20s);
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.out, "FIRST\n");
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.1 s (2 tries)\n", peer.url()));
  EXPECT_EQ(peer.received(), 3u);
}

TEST(DatagramClient, StreamOnlyFlagsAreUsageErrors) {
  FakePeer peer(Family::v4, {});
  for (const char* flag : {"--raw", "--framed"}) {
    const auto r = run({duplex_bin(), "send", flag, peer.url(), "x"});
    EXPECT_EQ(r.status, kUsage) << flag;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
  }
  const auto r = run({duplex_bin(), "send", "--retries", "x", peer.url(), "x"});
  EXPECT_EQ(r.status, kUsage);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_EQ(peer.received(), 0u);
}

TEST(DatagramClient, HelpNamesTheNewOptions) {
  const auto r = run({duplex_bin(), "send", "--help"});
  EXPECT_EQ(r.status, kOk);
  for (const char* want : {"--retries COUNT", "--timeout SECONDS", "--broadcast", "udp://"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from\n" << r.out;
}

// -v shows the steps in the stream clients' words: where datagrams go and from which socket,
// each try sent again, the first reply (not every one: send may make thousands); resolving a
// name first; over unixgram, the reply path. Without -v, nothing (the tests above).
TEST(DatagramClient, VerboseShowsTheSteps) {
  FakePeer peer(Family::v4, {.drop = [](std::size_t i) { return i == 0; }});
  auto argv = send_argv(peer.url(), {"-v", "--timeout", "0.2"});
  argv.insert(argv.end(), {"one", "two"});
  const auto r = run(argv);
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ONE\nTWO\n");
  ASSERT_FALSE(peer.senders().empty());
  const auto has = [&](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  for (const std::string& step :
       {"sending to " + peer.url() + " from udp://" + peer.senders()[0] + "\n",
        "no reply from " + peer.url() + " within 0.2 s: sending again (try 2 of 3)\n",
        "reply from " + peer.url() + ": 3 bytes after "})
    EXPECT_TRUE(has(r.err, step)) << "no '" << step << "' in:\n" << r.err;
  EXPECT_EQ(r.err.find(": reply from"), r.err.rfind(": reply from")) << "one reply step:\n"
                                                                     << r.err;

  const std::string port = peer.url().substr(peer.url().rfind(':') + 1);
  const auto named = run({duplex_bin(), "-v", "send", "udp://localhost:" + port, "x"});
  EXPECT_EQ(named.status, kOk) << named.err;
  EXPECT_TRUE(has(named.err, "resolving localhost port " + port + "\n")) << named.err;
  EXPECT_TRUE(has(named.err, "localhost is ")) << named.err;

  TempDir dir;
  FakePeer unix_peer(Family::unix_dgram, {}, dir.file("peer.sock"));
  const auto chat = run({duplex_bin(), "-v", "chat", unix_peer.url()}, "over unix\n", 20s,
                        {"XDG_RUNTIME_DIR=" + dir.path().string()});
  EXPECT_EQ(chat.status, kOk) << chat.err;
  EXPECT_TRUE(has(chat.out, "OVER UNIX")) << chat.out;
  EXPECT_TRUE(has(chat.err, "sending to the Unix datagram socket " + dir.file("peer.sock") +
                                ", replies to " + dir.file("duplex-")))
      << chat.err;
  EXPECT_TRUE(has(chat.err, "reply from " + unix_peer.url() + ": 9 bytes after ")) << chat.err;
}

// ---- The unixgram reply path -----------------------------------------------------------------

TEST(DatagramClient, UnixgramReplyPathIsPrivateAndRemovedAfterwards) {
  TempDir dir;
  FakePeer peer(Family::unix_dgram, {}, dir.file("peer.sock"));
  const std::string env = "XDG_RUNTIME_DIR=" + dir.path().string();
  const auto r = run({duplex_bin(), "send", peer.url(), "hello", "again"}, {}, 60s, {env});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\nAGAIN\n");
  const auto from = peer.senders();
  ASSERT_EQ(from.size(), 2u);
  EXPECT_EQ(from[0], from[1]) << "one reply path for the whole command";
  EXPECT_EQ(std::filesystem::path(from[0]).parent_path(), dir.path())
      << "the reply path is not in $XDG_RUNTIME_DIR: " << from[0];
  EXPECT_FALSE(std::filesystem::exists(from[0])) << from[0] << " is left behind";
  EXPECT_TRUE(reply_sockets(dir.path()).empty());
}

TEST(DatagramClient, UnixgramReplyPathIsRemovedAfterTheOneLineFailure) {
  TempDir dir;
  FakePeer peer(Family::unix_dgram, {.drop = [](std::size_t) { return true; }},
                dir.file("peer.sock"));
  const auto r = run({duplex_bin(), "send", "--timeout", "0.1", peer.url(), "hello"}, {}, 60s,
                     {"XDG_RUNTIME_DIR=" + dir.path().string()});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(r.err, fmt::format("duplex: no reply from {} within 0.1 s (3 tries)\n", peer.url()));
  ASSERT_EQ(peer.received(), 3u);
  EXPECT_FALSE(std::filesystem::exists(peer.senders()[0]));
}

TEST(DatagramClient, UnixgramReplyPathIsRemovedOnSigintSigtermAndSighup) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    TempDir dir;
    FakePeer peer(Family::unix_dgram, {.drop = [](std::size_t) { return true; }},
                  dir.file("peer.sock"));
    Process client({duplex_bin(), "send", "--timeout", "30", peer.url(), "hello"},
                   {"XDG_RUNTIME_DIR=" + dir.path().string()});
    ASSERT_TRUE(peer.wait_received(1)) << "the client sent nothing";
    const std::string path = peer.senders()[0];
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "mode " << std::oct << (st.st_mode & 0777);
    EXPECT_EQ(st.st_uid, ::getuid());
    client.signal(sig);
    const auto status = client.wait(10s);
    ASSERT_TRUE(status.has_value()) << "the client did not end on signal " << sig;
    EXPECT_EQ(*status, (ExitStatus{false, sig})) << "it ends the way the signal says";
    EXPECT_FALSE(std::filesystem::exists(path)) << path << " is left behind after signal " << sig;
  }
}

TEST(DatagramClient, UnixgramWithoutXdgRuntimeDirUsesTmp) {
  TempDir dir;
  FakePeer peer(Family::unix_dgram, {}, dir.file("peer.sock"));
  const auto r = run({duplex_bin(), "send", peer.url(), "hello"}, {}, 60s,
                     {"XDG_RUNTIME_DIR=" + dir.file("does-not-exist")});
  EXPECT_EQ(r.status, kOk) << r.err;
  ASSERT_EQ(peer.received(), 1u);
  EXPECT_EQ(std::filesystem::path(peer.senders()[0]).parent_path(), "/tmp");
  EXPECT_FALSE(std::filesystem::exists(peer.senders()[0]));
}

TEST(DatagramClient, UnixgramToAMissingPathIsOneLine) {
  TempDir dir;
  const auto r = run({duplex_bin(), "send", "unixgram://" + dir.file("nobody.sock"), "hello"}, {},
                     60s, {"XDG_RUNTIME_DIR=" + dir.path().string()});
  EXPECT_EQ(r.status, kFailure);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(dir.file("nobody.sock")), std::string::npos) << r.err;
  EXPECT_TRUE(reply_sockets(dir.path()).empty()) << "the reply path is left behind";
}

}  // namespace
}  // namespace duplex::test
