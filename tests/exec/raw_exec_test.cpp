// --raw-exec (issue 3, test 7): the seed's remote_client.py, only its port changed, against our
// server; the documented reply to a command without output; refusal on non-loopback listeners.
#include <algorithm>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "compat/seed_programs.hpp"
#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

class SeedRemoteClient : public SeedTest {};

TEST_F(SeedRemoteClient, RunsCommandsAgainstRawExec) {
  TempDir dir;
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  const auto client = seed_copy(dir, "remote_client.py", server.port());
  // remote_client.py loops on input(); at the end of our input it stops with EOFError.
  const auto r =
      run(python(client), "echo hello\ntrue\necho oops 1>&2; false\necho out; echo err >&2\n", 30s);
  const auto replies = printed_replies(r.out);
  ASSERT_EQ(replies.size(), 4u) << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(replies[0], "hello");
  // A command without output gets this line, so that the seed's client (which waits for a reply)
  // never hangs; documented in exec.hpp (run_raw_command).
  EXPECT_EQ(replies[1], "[no output; exit status 0]");
  EXPECT_EQ(replies[2], "oops");  // stderr of a failing command comes back
  EXPECT_EQ(replies[3], "out");   // stdout, then stderr, as the seed's server sends them
  EXPECT_NE(r.out.find("\nerr\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("客户端输入命令:echo hello,等待服务器的响应..."), std::string::npos)
      << r.out;
}

TEST(RawExec, RepliesStdoutThenStderrAndTheNoOutputLine) {
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  auto ask = [&](std::string_view command, std::string_view want) {
    c.send_all(command);
    EXPECT_EQ(c.recv_exact(want.size()), want) << command;
  };
  ask("echo hello", "hello\n");
  ask("true", "[no output; exit status 0]\n");
  ask("exit 3", "[no output; exit status 3]\n");
  ask("kill -TERM $$", "[no output; exit status 143]\n");
  ask("echo err >&2; echo out", "out\nerr\n");
  ask("printf '%s|' 'a b' ';x'", "a b|;x|");
  // Any size: no 1024-byte limit on our side.
  const std::string big(100'000, 'x');
  ask("head -c 100000 /dev/zero | tr '\\0' x", big);
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "");
}

TEST(RawExec, AllowedOnAUnixSocket) {
  TempDir dir;
  TestServer server({"-q", "--raw-exec", "--listen", "unix://" + dir.file("raw.sock")});
  SocketClient c(server.url());
  c.send_all("echo via unix");
  EXPECT_EQ(c.recv_exact(9), "via unix\n");
}

TEST(RawExec, FramedClientsStillServedBesideRawExec) {
  TestServer server({"-q", "--raw-exec", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  c.send_all(preface_and_hello() + frame(msg::upper_request, "framed"));
  EXPECT_EQ(read_frame(c).type, msg::welcome);
  const auto f = read_frame(c);
  EXPECT_EQ(f.type, msg::upper_reply);
  EXPECT_EQ(f.payload, "FRAMED");
}

TEST(RawExec, WithoutRawExecARawCommandIsOnlyUpperCased) {
  // --exec serves framed, authenticated clients only: raw text is never a command.
  ExecServer server;
  const auto marker = server.dir().file("ran");
  SocketClient c(server.url());
  const std::string command = "touch " + marker;
  c.send_all(command);
  std::string want = command;
  std::transform(want.begin(), want.end(), want.begin(),
                 [](char ch) { return ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 32) : ch; });
  EXPECT_EQ(c.recv_exact(want.size()), want);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

void expect_refused_at_start(std::vector<std::string> args, const std::string& flag) {
  std::vector<std::string> argv{duplex_bin(), "serve"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run(argv, {}, std::chrono::seconds(10));
  EXPECT_EQ(r.status, (ExitStatus{true, 2})) << r.err;
  EXPECT_EQ(r.out, "") << "it must not start listening";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, got:\n" << r.err;
  EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("loopback"), std::string::npos) << r.err;
}

TEST(RawExec, RefusedOnANonLoopbackListener) {
  expect_refused_at_start({"--raw-exec", "--listen", "tcp://0.0.0.0:0"}, "--raw-exec");
}

TEST(RawExec, RefusedWhenAnyListenerIsNotLoopback) {
  expect_refused_at_start(
      {"--raw-exec", "--listen", "tcp://127.0.0.1:0", "--listen", "tcp://0.0.0.0:0"}, "--raw-exec");
}

TEST(RawExec, ExecRefusedOnANonLoopbackListener) {
  TempDir dir;
  expect_refused_at_start(
      {"--exec", "--token-file", dir.file("token"), "--listen", "tcp://0.0.0.0:0"}, "--exec");
  EXPECT_FALSE(std::filesystem::exists(dir.file("token"))) << "refused before creating anything";
}

TEST(RawExec, ExecRefusedOnIpv6Any) {
  TempDir dir;
  expect_refused_at_start({"--exec", "--token-file", dir.file("token"), "--listen", "tcp://[::]:0"},
                          "--exec");
}

}  // namespace
}  // namespace duplex::test
