// `duplex serve --config FILE`: keys are serve's option names, the command line wins, and every
// mistake in the file is one line naming the file, the line and the key (exit 2).
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

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// One line on stderr, nothing on stdout, exit 2.
void expect_one_line_usage_error(const RunResult& r, const std::vector<std::string>& mentions) {
  EXPECT_EQ(r.status, kUsage) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  for (const auto& m : mentions)
    EXPECT_NE(r.err.find(m), std::string::npos) << "'" << m << "' not in: " << r.err;
}

TEST(ServeConfig, KeysInTheFileSetTheOptionsTheServerRunsWith) {
  TempDir dir;
  const std::string sock = dir.file("from-config.sock");
  const auto cfg = write_file(dir, "serve.toml",
                              fmt::format("# listeners and limits\n"
                                          "listen = [\"unix://{}\", \"tcp://127.0.0.1:0\"]\n"
                                          "max_connections = 40   # underscores work too\n"
                                          "idle-timeout = 30.5\n",
                                          sock));
  TestServer server({"--config", cfg}, 2);
  EXPECT_EQ(server.url(0), "unix://" + sock);
  const auto r = run({duplex_bin(), "send", server.url(0), "from the file"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "FROM THE FILE\n");
}

TEST(ServeConfig, TheCommandLineWinsOverTheFile) {
  TempDir dir;
  const std::string file_sock = dir.file("file.sock");
  const std::string cli_sock = dir.file("cli.sock");
  const auto cfg =
      write_file(dir, "serve.toml", fmt::format("listen = \"unix://{}\"\n", file_sock));
  TestServer server({"--config", cfg, "--listen", "unix://" + cli_sock}, 1);
  ASSERT_EQ(server.urls().size(), 1u);
  EXPECT_EQ(server.url(), "unix://" + cli_sock);
  EXPECT_FALSE(exists(file_sock));
}

TEST(ServeConfig, AnUnknownKeyNamesItsLine) {
  TempDir dir;
  const auto cfg = write_file(dir, "serve.toml", "threads = 1\n\nmax-conections = 5\n");
  expect_one_line_usage_error(run({duplex_bin(), "serve", "--config", cfg}),
                              {cfg + " line 3", "unknown key 'max-conections'"});
}

TEST(ServeConfig, BadValuesNameTheKeyAndTheLine) {
  TempDir dir;
  struct Case {
    std::string text;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {"threads = 1\nmax-connections = 0\n", {"line 2", "--max-connections", "0"}},
      {"max-connections = \"lots\"\n", {"line 1", "--max-connections", "lots"}},
      {"listen = [\"tcp://127.0.0.1:0\", \"bogus://x\"]\n", {"line 1", "bogus://x"}},
      {"threads = [1, 2]\n", {"line 1", "threads takes one value"}},
      {"# sections are not used\n[exec]\nenabled = true\n", {"line 2", "exec"}},
      {"idle-timeout = \n", {"line 1"}},  // not TOML at all
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const auto cfg = write_file(dir, "bad.toml", c.text);
    auto mentions = c.mentions;
    mentions.push_back(cfg);
    expect_one_line_usage_error(run({duplex_bin(), "serve", "--config", cfg}), mentions);
  }
}

TEST(ServeConfig, AMissingFileIsOneLine) {
  TempDir dir;
  const auto missing = dir.file("absent.toml");
  expect_one_line_usage_error(run({duplex_bin(), "serve", "--config", missing}), {missing});
}

TEST(ServeConfig, CheckConfigBindsNothingAndMakesNoFile) {
  TempDir dir;
  const std::string sock = dir.file("never.sock");
  const std::string token = dir.file("token");
  const auto cfg = write_file(dir, "serve.toml",
                              fmt::format("listen = \"unix://{}\"\nexec = true\nallow-root = "
                                          "true\ntoken-file = \"{}\"\n",
                                          sock, token));
  const auto r = run({duplex_bin(), "serve", "--config", cfg, "--check-config"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "configuration OK: 1 listener(s), exec\n");
  EXPECT_FALSE(exists(sock));
  EXPECT_FALSE(exists(token));
  // And a bad file fails the check the same way it fails a start.
  const auto bad = write_file(dir, "bad.toml", "max-connections = -1\n");
  expect_one_line_usage_error(run({duplex_bin(), "serve", "--config", bad, "--check-config"}),
                              {"line 1", "--max-connections"});
}

}  // namespace
}  // namespace duplex::test
