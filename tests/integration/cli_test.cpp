// The command line as a user sees it: `duplex send` and `duplex chat` against our server, exit
// codes (0 ok, 1 failure, 2 usage), one-line errors, --help and --version.
#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kFailure{true, 1};
constexpr ExitStatus kUsage{true, 2};

TEST(Cli, SendPrintsOneReplyLinePerMessage) {
  TestServer server;
  const auto r = run({duplex_bin(), "send", server.url(), "hello", "wörld ✓ ça", "a b  c"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\nWöRLD ✓ çA\nA B  C\n");
  EXPECT_EQ(r.err, "");
}

TEST(Cli, SendWithRawAndFramedFlags) {
  TestServer server;
  for (const char* flag : {"--raw", "--framed"}) {
    const auto r = run({duplex_bin(), "send", flag, server.url(), "mixed Case", "日本 abc"});
    EXPECT_EQ(r.status, kOk) << flag << ": " << r.err;
    EXPECT_EQ(r.out, "MIXED CASE\n日本 ABC\n") << flag;
  }
}

TEST(Cli, SendOverUnixSocketAndBareHostPort) {
  TempDir dir;
  const std::string path = dir.file("cli.sock");
  TestServer server({"--listen", "unix://" + path, "--listen", "tcp://127.0.0.1:0"});
  auto r = run({duplex_bin(), "send", "unix://" + path, "over unix"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "OVER UNIX\n");
  r = run({duplex_bin(), "send", fmt::format("127.0.0.1:{}", server.port(1)), "bare host:port"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "BARE HOST:PORT\n");
}

TEST(Cli, ChatWithPipedInputKeepsBlankLines) {
  TestServer server;
  const auto r =
      run({duplex_bin(), "chat", server.url()}, "hello\n\n  \nworld\r\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\n\n  \nWORLD\n");
}

TEST(Cli, ChatRawWithPipedInputKeepsBlankLinesAndCr) {
  TestServer server;
  // In raw mode an empty message cannot be sent (it would get no reply: the seed's hang): its
  // reply, the empty line, is printed in its turn without a round trip. --raw keeps the CR.
  const auto r = run({duplex_bin(), "chat", "--raw", "--timeout", "5", server.url()},
                     "hello\n\nworld ü\r\n", std::chrono::seconds(20));
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\n\nWORLD ü\r\n");
}

TEST(Cli, ChatNoticesAtOnceWhenTheServerGoesAway) {
  auto server = std::make_unique<TestServer>();
  Process chat({duplex_bin(), "chat", server->url()});
  chat.write_stdin("first\n");
  EXPECT_EQ(chat.read_line(), "FIRST");
  EXPECT_EQ(server->stop(), kOk);
  // No more input: the chat is waiting for its next line, and still learns that the server left.
  const auto st = chat.wait(std::chrono::seconds(20));
  ASSERT_TRUE(st.has_value()) << "chat did not exit after the server went away";
  EXPECT_EQ(*st, kFailure);
  EXPECT_EQ(chat.read_all_stdout(std::chrono::seconds(2)), "");
  const std::string err = chat.read_all_stderr(std::chrono::seconds(2));
  EXPECT_EQ(line_count(err), 1u) << err;
  EXPECT_NE(err.find("closed the connection"), std::string::npos) << err;
}

TEST(Cli, BadUrlsAreUsageErrorsWithOneLine) {
  for (const std::string url :
       {"tcp://::1:80", "tcp://h:99999", "ftp://x:1", "unix://rel", "[::1:80", ""}) {
    for (const std::string cmd : {"send", "chat"}) {
      std::vector<std::string> argv{duplex_bin(), cmd, url};
      if (cmd == "send") argv.push_back("msg");
      const auto r = run(argv, "line\n", std::chrono::seconds(20));
      EXPECT_EQ(r.status, kUsage) << cmd << " '" << url << "': " << r.err;
      EXPECT_EQ(line_count(r.err), 1u) << cmd << " '" << url << "': " << r.err;
      EXPECT_NE(r.err.find("bad URL"), std::string::npos) << cmd << " '" << url << "': " << r.err;
      EXPECT_EQ(r.out, "") << cmd << " '" << url << "'";
    }
  }
}

TEST(Cli, ServeWithBadListenUrlIsAUsageError) {
  for (const std::string url : {"tcp://h:99999", "ftp://x:1", "unix://rel", ""}) {
    const auto r = run({duplex_bin(), "serve", "--listen", url}, {}, std::chrono::seconds(20));
    EXPECT_EQ(r.status, kUsage) << "'" << url << "': " << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << "'" << url << "': " << r.err;
    EXPECT_NE(r.err.find("bad URL"), std::string::npos) << "'" << url << "': " << r.err;
    EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  }
}

TEST(Cli, ConnectionRefusedIsFailureNotUsage) {
  int port = 0;
  {
    TestServer server;
    port = server.port();
    EXPECT_EQ(server.stop(), kOk);
  }
  const std::string url = fmt::format("tcp://127.0.0.1:{}", port);
  for (const std::string cmd : {"send", "chat"}) {
    std::vector<std::string> argv{duplex_bin(), cmd, url};
    if (cmd == "send") argv.push_back("anyone?");
    const auto r = run(argv, "anyone?\n", std::chrono::seconds(20));
    EXPECT_EQ(r.status, kFailure) << cmd << ": " << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("refused"), std::string::npos) << cmd << ": " << r.err;
  }
}

// The subcommands that `duplex --help` lists (the lines under "Subcommands:").
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> out;
  std::istringstream in(help);
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0 || line.rfind("SUBCOMMANDS:", 0) == 0) {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (line.empty()) break;
    std::istringstream words(line);
    std::string name;
    if (words >> name) out.push_back(name);
  }
  return out;
}

TEST(Cli, HelpForEveryCommandExitsZero) {
  const auto root = run({duplex_bin(), "--help"});
  EXPECT_EQ(root.status, kOk);
  EXPECT_NE(root.out.find("Usage"), std::string::npos);
  const auto subs = listed_subcommands(root.out);
  for (const char* must : {"serve", "send", "chat"})
    EXPECT_NE(std::find(subs.begin(), subs.end(), must), subs.end())
        << must << " missing from --help";
  for (const auto& sub : subs) {
    for (const char* flag : {"--help", "-h"}) {
      const auto r = run({duplex_bin(), sub, flag});
      EXPECT_EQ(r.status, kOk) << sub << " " << flag << ": " << r.err;
      EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << " " << flag;
      EXPECT_NE(r.out.find(sub), std::string::npos) << sub << " " << flag;
    }
  }
}

TEST(Cli, VersionPrintsNameAndVersion) {
  const auto r = run({duplex_bin(), "--version"});
  EXPECT_EQ(r.status, kOk);
  // The first line is the version alone (what scripts read); then the build and its features.
  EXPECT_EQ(r.out.substr(0, r.out.find('\n') + 1), "duplex 0.1.0\n");
  EXPECT_NE(r.out.find("\nbuild: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nfeatures: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tls (OpenSSL 3."), std::string::npos) << r.out;
}

TEST(Cli, UnknownFlagsAndMissingSubcommandAreUsageErrors) {
  const std::vector<std::vector<std::string>> cases{
      {"--no-such-flag"},
      {"serve", "--no-such-flag"},
      {"send", "--bogus", "tcp://127.0.0.1:1", "x"},
      {"chat", "--bogus"},
      {"no-such-command"},
      // `duplex` alone lists the commands (several lines, exit 2): CliUsage.DuplexAlone….
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv{duplex_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv, {}, std::chrono::seconds(20));
    const std::string what =
        args.empty() ? "(no arguments)" : args.front() + (args.size() > 1 ? " " + args[1] : "");
    EXPECT_EQ(r.status, kUsage) << what << ": " << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << what << ": " << r.err;
  }
}

}  // namespace
}  // namespace duplex::test
