// Our clients against the seed's server.py (only its port changed): `duplex send` and
// `duplex chat` fall back to the raw protocol; `--framed` refuses it with a one-line reason.
// server.py serves one client at a time, so every client here runs to its end before the next.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "seed_programs.hpp"

namespace duplex::test {
namespace {

class SeedServerTest : public SeedTest {
 protected:
  void SetUp() override {
    SeedTest::SetUp();
    if (IsSkipped()) return;
    server_ = std::make_unique<SeedServer>(dir_);
  }
  // What server.py printed (it logs every message it received); ends it.
  std::string server_log() {
    server_->process().signal(SIGKILL);
    server_->process().wait(5s);
    return server_->process().read_all_stdout(5s);
  }

  TempDir dir_;
  std::unique_ptr<SeedServer> server_;
};

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

}  // namespace

TEST_F(SeedServerTest, SendPrintsTheUpperCasedReplies) {
  const auto r = run(
      {duplex_bin(), "send", server_->url(), "hello", "Hello World", "你好 wörld", "MiXeD 123 !?"},
      {}, 15s);
  EXPECT_EQ(r.out, "HELLO\nHELLO WORLD\n你好 WöRLD\nMIXED 123 !?\n") << r.err;
  EXPECT_EQ(describe(r.status), "exit 0") << r.err;
  EXPECT_EQ(r.err, "");

  // A second client after the first has left: server.py is still in its accept loop.
  const auto again =
      run({duplex_bin(), "send", "127.0.0.1:" + std::to_string(server_->port()), "again"}, {}, 15s);
  EXPECT_EQ(again.out, "AGAIN\n") << again.err;
  EXPECT_EQ(describe(again.status), "exit 0");

  // The messages really went through server.py (pipelined: one read of its may hold several).
  const auto log = server_log();
  EXPECT_NE(log.find("收到的客户端的数据: hello"), std::string::npos) << log;
  EXPECT_NE(log.find("你好 wörld"), std::string::npos) << log;
  EXPECT_NE(log.find("收到的客户端的数据: again"), std::string::npos) << log;
}

TEST_F(SeedServerTest, ChatWithPipedInputPrintsTheReplies) {
  // The empty line is kept, but not sent (the seed's own client.py would hang on it): its reply is
  // the empty line.
  const auto r = run({duplex_bin(), "chat", server_->url()},
                     "hello\n\nHello World\n你好 wörld\nMiXeD 123 !?\n", 15s);
  EXPECT_EQ(r.out, "HELLO\n\nHELLO WORLD\n你好 WöRLD\nMIXED 123 !?\n") << r.err;
  EXPECT_EQ(describe(r.status), "exit 0") << r.err;
  EXPECT_EQ(r.err, "");
  const auto log = server_log();
  EXPECT_NE(log.find("MiXeD 123 !?"), std::string::npos) << log;
}

TEST_F(SeedServerTest, StreamSendsBytesUnchangedAndEndsWhenServerPyCloses) {
  // nc's contract: NULs and no newline at the end pass unchanged; our half-close at the end of
  // stdin is server.py's empty recv, after which it closes, which ends the client. (ASCII and NUL
  // only: server.py decodes each recv(1024) as UTF-8 and drops a client whose read cuts a
  // character in two. Small: server.py prints all it gets to a pipe this test reads at the end.)
  std::string data;
  for (int i = 0; i < 200; ++i)
    data += std::string("line\0 of bytes ") + std::to_string(i) + (i % 7 == 0 ? "\r\n" : " ");
  data += "no newline";
  for (const std::string cmd : {"send", "chat"}) {
    const auto r = run({duplex_bin(), cmd, "--stream", server_->url()}, data, 30s);
    std::string want = data;
    for (auto& ch : want)
      if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    EXPECT_EQ(describe(r.status), "exit 0") << cmd << ": " << r.err;
    EXPECT_EQ(r.out.size(), want.size()) << cmd;
    EXPECT_TRUE(r.out == want) << cmd;
    EXPECT_EQ(r.err, "") << cmd;
  }
  const auto log = server_log();
  EXPECT_NE(log.find("no newline"), std::string::npos);
}

TEST_F(SeedServerTest, FramedSendSaysItIsNotADuplexServer) {
  const auto r = run({duplex_bin(), "send", "--framed", server_->url(), "hello"}, {}, 15s);
  EXPECT_EQ(describe(r.status), "exit 1");
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("not a duplex server"), std::string::npos) << r.err;

  // server.py survives the refused client and serves the next one.
  const auto next = run({duplex_bin(), "send", server_->url(), "next"}, {}, 15s);
  EXPECT_EQ(next.out, "NEXT\n") << next.err;
  EXPECT_EQ(describe(next.status), "exit 0");
}

}  // namespace duplex::test
