// The command line as a new user with nc/ssh habits meets it: `duplex` alone, a mistyped command
// or flag, a message that starts with '-', and what --help calls each value.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kUsage{true, 2};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void expect_one_line(const RunResult& r) {
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliUsage, DuplexAloneListsTheCommandsAndExitsTwo) {
  const auto r = run({duplex_bin()});
  EXPECT_EQ(r.status, kUsage);
  EXPECT_EQ(r.out, "");
  for (const char* cmd : {"serve", "send", "chat", "exec", "shell", "bench", "completion"})
    EXPECT_TRUE(contains(r.err, "\n  " + std::string(cmd) + " ")) << cmd << " missing in:\n"
                                                                  << r.err;
  EXPECT_TRUE(contains(r.err, "Usage: duplex ")) << r.err;  // not the path it was run by
}

TEST(CliUsage, AMistypedCommandSuggestsTheNearestOne) {
  const auto r = run({duplex_bin(), "sned", "127.0.0.1:8080", "hi"});
  EXPECT_EQ(r.status, kUsage);
  expect_one_line(r);
  EXPECT_TRUE(contains(r.err, "unknown command 'sned' (did you mean 'send'?)")) << r.err;
  const auto far = run({duplex_bin(), "frobnicate"});
  EXPECT_EQ(far.status, kUsage);
  EXPECT_FALSE(contains(far.err, "did you mean")) << far.err;
  EXPECT_TRUE(contains(far.err, "the commands are: serve, send")) << far.err;
}

TEST(CliUsage, AnUnknownOptionSuggestsTheNearestOne) {
  const auto r = run({duplex_bin(), "serve", "--max-conections", "5"});
  EXPECT_EQ(r.status, kUsage);
  expect_one_line(r);
  EXPECT_TRUE(contains(r.err, "'--max-conections' for 'serve' (did you mean '--max-connections'?)"))
      << r.err;
}

TEST(CliUsage, AMessageStartingWithADashIsNeverARequestForHelp) {
  TestServer server;
  const auto r = run({duplex_bin(), "send", server.url(), "-hello"});
  EXPECT_EQ(r.status, kUsage);  // was: the help text and exit 0
  expect_one_line(r);
  EXPECT_TRUE(contains(r.err, "-- -hello")) << r.err;
  const auto sent = run({duplex_bin(), "send", server.url(), "--", "-hello"});
  EXPECT_EQ(sent.status, kOk) << sent.err;
  EXPECT_EQ(sent.out, "-HELLO\n");
  // Clusters of real short flags still work: -vv before the URL.
  const auto verbose = run({duplex_bin(), "send", "-vv", server.url(), "x"});
  EXPECT_EQ(verbose.status, kOk) << verbose.err;
  EXPECT_EQ(verbose.out, "X\n");
}

TEST(CliUsage, ValuesAreNamedByWhatTheyAreNotByTheirCppType) {
  const auto r = run({duplex_bin(), "serve", "--help"});
  EXPECT_EQ(r.status, kOk);
  EXPECT_TRUE(contains(r.out, "Usage: duplex serve")) << r.out;
  EXPECT_TRUE(contains(r.out, "--idle-timeout SECONDS")) << r.out;
  EXPECT_TRUE(contains(r.out, "--max-frame BYTES")) << r.out;
  EXPECT_TRUE(contains(r.out, "--max-connections N")) << r.out;
  for (const char* cpp : {"UINT", "FLOAT", "INT in", ":INT", "1e+07"})
    EXPECT_FALSE(contains(r.out, cpp)) << cpp << " in:\n" << r.out;
  // The range still holds.
  const auto bad = run({duplex_bin(), "serve", "--threads", "5000"});
  EXPECT_EQ(bad.status, kUsage);
  EXPECT_TRUE(contains(bad.err, "--threads")) << bad.err;
}

TEST(CliUsage, LogFormatJsonIsOneObjectPerLineAtTheChosenLevel) {
  TestServer server({"--log-format", "json", "--log-level", "debug"});
  ASSERT_EQ(run({duplex_bin(), "send", server.url(), "logged"}).status, kOk);
  ASSERT_TRUE(server.wait_stderr("\"level\":\"debug\""));
  server.stop();
  std::istringstream lines(server.stderr_text());
  int parsed = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "not one JSON object: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    EXPECT_EQ(j["time"].get<std::string>().back(), 'Z') << line;
    ++parsed;
  }
  EXPECT_GE(parsed, 3);
}

TEST(CliUsage, ARootOptionsValueIsNotTakenForACommand) {
  const auto r = run({duplex_bin(), "--log-level", "error", "send", "127.0.0.1:1", "x"});
  EXPECT_EQ(r.status, (ExitStatus{true, 1}));  // refused connection, not a usage error
  EXPECT_FALSE(contains(r.err, "unknown command")) << r.err;
  const auto bad = run({duplex_bin(), "--log-level", "loud", "send", "127.0.0.1:1", "x"});
  EXPECT_EQ(bad.status, kUsage);
  EXPECT_TRUE(contains(bad.err, "--log-level")) << bad.err;
}

}  // namespace
}  // namespace duplex::test
