// `duplex exec web1 -- …`: Host blocks of ${XDG_CONFIG_HOME}/duplex/config name a server and the
// token (or key, fingerprint) to use with it; what is typed on the command line wins.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kUsage{true, 2};

// A config home of our own, with `config` holding `text` (0600, in a 0700 directory).
class ConfigHome {
 public:
  explicit ConfigHome(const std::string& text) {
    const std::string dir = home_.file("duplex");
    ::mkdir(dir.c_str(), 0700);
    const std::string path = dir + "/config";
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600);
  }
  std::vector<std::string> env() const {
    return {"XDG_CONFIG_HOME=" + home_.path().string(), "DUPLEX_TOKEN="};
  }
  std::string file(const std::string& name) const { return home_.file(name); }

 private:
  TempDir home_;
};

TEST(HostAlias, AnAliasIsItsAddressForEveryClient) {
  TempDir dir;
  const std::string sock = dir.file("s.sock");
  TestServer server({"--exec", "--listen", "unix://" + sock});
  ConfigHome home(fmt::format("Host box other\n  Address unix://{}\n", sock));
  auto r = run({duplex_bin(), "send", "box", "hello"}, {}, std::chrono::seconds(20), home.env());
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "HELLO\n");
  r = run({duplex_bin(), "exec", "other", "--", "echo", "ran"}, {}, std::chrono::seconds(20),
          home.env());
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ran\n");
}

TEST(HostAlias, ItsTokenFileIsUsedUnlessTheCommandLineNamesAnother) {
  TempDir dir;
  const std::string token = dir.file("token");
  TestServer server({"-q", "--exec", "--token-file", token});
  ConfigHome home(fmt::format("Host tcpbox\n  Address {}\n  TokenFile {}\n", server.url(), token));
  auto r = run({duplex_bin(), "exec", "tcpbox", "--", "echo", "authenticated"}, {},
               std::chrono::seconds(20), home.env());
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "authenticated\n");
  // Typed wins: a token file that does not exist is what is used, and said.
  const std::string absent = home.file("absent-token");
  r = run({duplex_bin(), "exec", "--token-file", absent, "tcpbox", "--", "true"}, {},
          std::chrono::seconds(20), home.env());
  EXPECT_NE(r.status, kOk);
  EXPECT_NE(r.err.find(absent), std::string::npos) << r.err;
  // The same address typed out, without the alias, has no token at all.
  r = run({duplex_bin(), "exec", server.url(), "--", "true"}, {}, std::chrono::seconds(20),
          home.env());
  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;
}

TEST(HostAlias, ABadConfigIsOneLineNamingTheFileAndLine) {
  ConfigHome home("Host a\n  Adress 127.0.0.1:1\n");
  const auto r = run({duplex_bin(), "send", "a", "x"}, {}, std::chrono::seconds(20), home.env());
  EXPECT_EQ(r.status, kUsage);
  EXPECT_NE(r.err.find("duplex/config: line 2: unknown keyword 'adress'"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(HostAlias, AConfigOthersCanWriteIsRefused) {
  ConfigHome home("Host a\n  Address 127.0.0.1:1\n");
  ::chmod(home.file("duplex/config").c_str(), 0666);
  const auto r = run({duplex_bin(), "send", "a", "x"}, {}, std::chrono::seconds(20), home.env());
  EXPECT_EQ(r.status, kUsage);
  EXPECT_NE(r.err.find("duplex/config"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace duplex::test
