// Addresses as people type them with nc/socat habits: a bare port, a path, a relative path after
// unix://, and `duplex serve ADDR` without -l.
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

// Runs duplex with `args` from the directory `cwd`.
RunResult run_in(const std::string& cwd, const std::vector<std::string>& args) {
  std::string cmd = "cd '" + cwd + "' && exec \"$DUPLEX\"";
  for (const auto& a : args)
    cmd += " '" + a + "'";
  return run({"sh", "-c", cmd}, {}, std::chrono::seconds(20), {"DUPLEX=" + duplex_bin()});
}

TEST(Addresses, ABarePortIsTheDefaultHost) {
  Process server({duplex_bin(), "serve", "0"});
  const auto line = server.read_line().value_or("");
  ASSERT_EQ(line.rfind("listening on tcp://127.0.0.1:", 0), 0u) << line;
  const std::string port = line.substr(line.rfind(':') + 1);
  auto r = run({duplex_bin(), "send", port, "bare port"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "BARE PORT\n");
  r = run({duplex_bin(), "send", ":" + port, "colon port"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "COLON PORT\n");
}

TEST(Addresses, APathIsAUnixSocketAndARelativeOneIsTakenFromTheWorkingDirectory) {
  TempDir dir;
  // `duplex serve ./x.sock` positional, from inside the directory.
  Process server(
      {"sh", "-c", "cd '" + dir.path().string() + "' && exec \"$DUPLEX\" serve ./x.sock"},
      {"DUPLEX=" + duplex_bin()});
  EXPECT_EQ(server.read_line().value_or(""), "listening on unix://" + dir.file("x.sock"));
  auto r = run_in(dir.path().string(), {"send", "./x.sock", "dot slash"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "DOT SLASH\n");
  r = run_in(dir.path().string(), {"send", "unix://./x.sock", "relative url"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "RELATIVE URL\n");
  r = run({duplex_bin(), "send", dir.file("x.sock"), "absolute path"});
  EXPECT_EQ(r.status, kOk) << r.err;
  EXPECT_EQ(r.out, "ABSOLUTE PATH\n");
}

TEST(Addresses, APlainWordSaysItCouldBeAHostAlias) {
  const auto r = run({duplex_bin(), "send", "webserver", "x"}, {}, std::chrono::seconds(20),
                     {"XDG_CONFIG_HOME=/nonexistent"});
  EXPECT_EQ(r.status, kUsage);
  EXPECT_NE(r.err.find("bad URL 'webserver'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Host block of /nonexistent/duplex/config"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace duplex::test
