// The seed's client.py (only its port changed) against `duplex serve`: it must see exactly what
// the seed's own server.py shows it, and more (large messages, several clients at once).
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "seed_programs.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

class SeedClient : public SeedTest {};

// client.py strips each line and would hang on an empty one (it sends nothing, then waits for a
// reply): never feed it an empty line.
const std::vector<std::string> kLines = {"hello", "Hello World", "你好 wörld", "MiXeD 123 !?"};

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines)
    s += l + "\n";
  return s;
}

RunResult run_client_py(int port, std::string_view input) {
  TempDir dir;
  return run(python(seed_copy(dir, "client.py", port)), input, 15s);
}

// An ASCII message of n bytes, mostly lower case, so that the upper-cased reply differs from it.
std::string message(std::size_t n, char first) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -ABC";
  std::string m;
  m.reserve(n);
  m.push_back(first);
  for (std::size_t i = 1; i < n; ++i)
    m.push_back(kAlphabet[(i * 7) % kAlphabet.size()]);
  return m;
}

std::string concat(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts)
    s += p;
  return s;
}

// client.py reads at most 1024 bytes per reply: a long reply is printed over several of the
// following prompts. Whatever the chunking, what it prints is a prefix of the byte stream the
// server should send back, and the first reply starts with the start of the first message.
void expect_chunked_replies(const RunResult& r, const std::vector<std::string>& fed) {
  const auto replies = printed_replies(r.out);
  ASSERT_EQ(replies.size(), fed.size()) << r.out << r.err;
  ASSERT_GE(replies.front().size(), 16u);
  EXPECT_EQ(replies.front().substr(0, 16), upper(fed.front().substr(0, 16)));
  std::string expected_stream;
  for (const auto& f : fed)
    expected_stream += upper(f);
  const auto got = concat(replies);
  EXPECT_EQ(expected_stream.substr(0, got.size()), got);
  EXPECT_GT(got.size(), fed.front().size()) << "no reply to the second line at all";
  EXPECT_NE(r.err.find("EOFError"), std::string::npos) << r.err;
}

}  // namespace

TEST_F(SeedClient, PrintsTheSameAgainstDuplexAsAgainstTheSeedServer) {
  const std::string input = joined(kLines);

  RunResult with_seed;
  {
    TempDir dir;
    SeedServer seed(dir);
    with_seed = run_client_py(seed.port(), input);
  }
  TestServer ours;
  const RunResult with_ours = run_client_py(ours.port(), input);

  // The reference must itself be what we think it is, or comparing with it proves nothing.
  std::vector<std::string> expected_replies;
  for (const auto& l : kLines)
    expected_replies.push_back(upper(l));
  EXPECT_EQ(printed_replies(with_seed.out), expected_replies) << with_seed.out << with_seed.err;
  EXPECT_NE(with_seed.err.find("EOFError"), std::string::npos) << with_seed.err;

  EXPECT_EQ(split_lines(with_ours.out), split_lines(with_seed.out)) << "stderr with duplex:\n"
                                                                    << with_ours.err;
  EXPECT_EQ(describe(with_ours.status), describe(with_seed.status));
  EXPECT_NE(with_ours.err.find("EOFError"), std::string::npos) << with_ours.err;

  EXPECT_EQ(describe(ours.stop()), "exit 0");
}

TEST_F(SeedClient, OneByteMessagesAreAnsweredAtOnce) {
  TestServer ours;
  const auto r = run_client_py(ours.port(), "a\nZ\n1\nb\n");
  EXPECT_EQ(printed_replies(r.out), (std::vector<std::string>{"A", "Z", "1", "B"}))
      << r.out << r.err;
}

TEST_F(SeedClient, MessagesLargerThanItsReadBufferDoNotBreakTheServer) {
  TestServer ours;

  const std::vector<std::string> fed1000 = {message(1000, 'k'), "tail"};
  const auto r1000 = run_client_py(ours.port(), joined(fed1000));
  {
    SCOPED_TRACE("1000-byte message");
    expect_chunked_replies(r1000, fed1000);
    // 1000 bytes fit client.py's 1024-byte read: the whole reply is printed at once.
    EXPECT_EQ(printed_replies(r1000.out).front(), upper(fed1000.front()));
  }

  // 3000 bytes: client.py prints the reply 1024 bytes at a time, and exits with bytes unread
  // (its kernel answers the server's last writes with a reset).
  const std::vector<std::string> fed3000 = {message(3000, 'q'), "x", "y", "z"};
  const auto r3000 = run_client_py(ours.port(), joined(fed3000));
  {
    SCOPED_TRACE("3000-byte message");
    expect_chunked_replies(r3000, fed3000);
  }

  // The server is still up and serving.
  SocketClient after(ours.url());
  after.send_all("still there?");
  EXPECT_EQ(after.recv_exact(12), "STILL THERE?");
  after.close();
  EXPECT_EQ(describe(ours.stop()), "exit 0");
}

// The seed's server.py serves one client at a time: the second waits until the first leaves.
// Ours serves them all at once, each with its own replies.
TEST_F(SeedClient, SeveralAtOnceEachGetItsOwnReplies) {
  TestServer ours;
  TempDir dir;
  const auto script = seed_copy(dir, "client.py", ours.port());
  constexpr int kClients = 3;
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(std::make_unique<Process>(python(script)));

  auto message_of = [](int client, int round) {
    return "client " + std::to_string(client) + " round " + std::to_string(round) + " 你好 ünï";
  };
  auto expect_reply = [&](int client, int round) {
    SCOPED_TRACE("client " + std::to_string(client) + ", round " + std::to_string(round));
    const auto m = message_of(client, round);
    auto& p = *clients[static_cast<std::size_t>(client)];
    EXPECT_EQ(p.read_line(10s).value_or("<nothing>"),
              "请输入要发送的消息:客户端发送了数据:" + m + ",等待服务器的响应...");
    EXPECT_EQ(p.read_line(10s).value_or("<nothing>"), std::string(kReplyPrefix) + upper(m));
  };
  auto ask = [&](int client, int round) {
    clients[static_cast<std::size_t>(client)]->write_stdin(message_of(client, round) + "\n");
  };

  // Round 0 in order: once it is done, every client is connected (and stays so).
  for (int c = 0; c < kClients; ++c) {
    ask(c, 0);
    expect_reply(c, 0);
  }
  // Round 1 backwards: the last client is answered while the first two sit connected and silent,
  // which is where the seed's server would keep it waiting.
  for (int c = kClients - 1; c >= 0; --c) {
    ask(c, 1);
    expect_reply(c, 1);
  }
  // Round 2 interleaved: all three requests in flight together.
  for (int c = 0; c < kClients; ++c)
    ask(c, 2);
  for (int c = 0; c < kClients; ++c)
    expect_reply(c, 2);

  // End of input: each client.py dies of EOFError, as it does against the seed's server.
  for (auto& p : clients)
    p->close_stdin();
  for (auto& p : clients) {
    EXPECT_EQ(describe(p->wait(10s)), "exit 1");
    EXPECT_NE(p->read_all_stderr(5s).find("EOFError"), std::string::npos);
  }
  EXPECT_EQ(describe(ours.stop()), "exit 0");
}

}  // namespace duplex::test
