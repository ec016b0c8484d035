// A command's environment (issue 7): built from nothing (PATH, HOME, USER, LOGNAME, SHELL, LANG,
// TERM for a pty, DUPLEX_CLIENT), the server's own never leaks, and a client's variables pass only
// by the server's --env-allow, with LD_*, BASH_ENV, ENV and IFS refused whatever it says.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

// The codes are on the wire (docs/PROTOCOL.md §6).
constexpr std::uint16_t kExecFailed = 50;

ExecRequest env_command(std::vector<std::pair<std::string, std::string>> vars = {}) {
  ExecRequest r;
  r.argv = {"env"};  // exec'd directly: no shell adds PWD, SHLVL or _
  r.env = std::move(vars);
  return r;
}

std::map<std::string, std::string> parse_env(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::vector<std::string> keys(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env)
    out.push_back(k);
  return out;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

// Sets a variable in our environment for the life of the object: servers started meanwhile
// inherit it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ExecEnvironment, IsBuiltFromNothing) {
  std::unique_ptr<ExecServer> server;
  {
    ScopedEnv marker("DUPLEX_ENV_TEST_MARKER", "server-side secret");
    ScopedEnv lang("LANG", nullptr);
    server = std::make_unique<ExecServer>(ExecServerOptions{.args = {}, .unix_socket = true});
  }
  const auto o = exec_once(server->tcp_url(), server->token(), env_command());
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  const auto env = parse_env(o.out);
  EXPECT_EQ(o.out.find("server-side secret"), std::string::npos) << o.out;
  EXPECT_EQ(env.count("XDG_CONFIG_HOME"), 0u) << "the test binary's own setting leaked";
  EXPECT_EQ(env.at("PATH"), "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env.at("LANG"), "C.UTF-8") << "the server had no LANG";
  EXPECT_EQ(env.at("USER"), env.at("LOGNAME"));
  EXPECT_FALSE(env.at("HOME").empty());
  EXPECT_FALSE(env.at("SHELL").empty());
  EXPECT_EQ(env.count("TERM"), 0u) << "no pty, no TERM";
  // The peer, as SSH_CLIENT tells it: the client's address and port.
  EXPECT_TRUE(std::regex_match(env.at("DUPLEX_CLIENT"), std::regex(R"(127\.0\.0\.1:\d+)")))
      << env.at("DUPLEX_CLIENT");
  // How the client authenticated, as the server's log says it.
  EXPECT_EQ(env.at("DUPLEX_IDENTITY"), "token");
  // Nothing else at all.
  EXPECT_EQ(keys(env), (std::vector<std::string>{"DUPLEX_CLIENT", "DUPLEX_IDENTITY", "HOME", "LANG",
                                                 "LOGNAME", "PATH", "SHELL", "USER"}))
      << o.out;

  const auto u = exec_once(server->unix_url(), server->token(), env_command());
  ASSERT_TRUE(exited_with(u, 0)) << u.err;
  const auto unix_env = parse_env(u.out);
  EXPECT_EQ(unix_env.at("DUPLEX_CLIENT"), "unix:uid=" + std::to_string(::geteuid()));
  EXPECT_EQ(unix_env.at("DUPLEX_IDENTITY"), "uid " + std::to_string(::geteuid()));
}

TEST(ExecEnvironment, LangIsTheServersWhenSet) {
  std::unique_ptr<ExecServer> server;
  {
    ScopedEnv lang("LANG", "fr_FR.UTF-8");
    server = std::make_unique<ExecServer>();
  }
  const auto o = exec_once(server->url(), server->token(), env_command());
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  EXPECT_EQ(parse_env(o.out).at("LANG"), "fr_FR.UTF-8");
}

TEST(ExecEnvironment, PtyGetsTerm) {
  ExecServer server;
  ExecRequest r = env_command();
  r.pty = true;
  r.term = "vt220";
  const auto o = exec_once(server.url(), server.token(), r);
  ASSERT_TRUE(exited_with(o, 0)) << o.out;
  EXPECT_NE(o.out.find("TERM=vt220\r\n"), std::string::npos) << o.out;
}

TEST(ExecEnvironment, DefaultAllowListLetsLocaleAndTimezoneThrough) {
  ExecServer server;
  const auto o = exec_once(server.url(), server.token(),
                           env_command({{"LANG", "de_DE.UTF-8"}, {"LC_TIME", "C"}, {"TZ", "UTC"}}));
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  const auto env = parse_env(o.out);
  EXPECT_EQ(env.at("LANG"), "de_DE.UTF-8") << "the client's LANG wins over the server's";
  EXPECT_EQ(env.at("LC_TIME"), "C");
  EXPECT_EQ(env.at("TZ"), "UTC");
}

TEST(ExecEnvironment, AVariableNotAllowedIsRefusedAndNothingRuns) {
  ExecServer server;
  const auto marker = server.dir().file("ran");
  ExecRequest r;
  r.argv = {"touch", marker};
  r.env = {{"LANG", "C"}, {"FOO", "bar"}};
  const auto o = exec_once(server.url(), server.token(), r);
  ASSERT_TRUE(refused_with(o, kExecFailed));
  EXPECT_EQ(o.error->text,
            "environment variable FOO is not allowed by this server (its --env-allow)");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(ExecEnvironment, OurClientSaysWhichVariableInOneLine) {
  ExecServer server;
  const auto marker = server.dir().file("ran");
  const auto r = run({duplex_bin(), "exec", "--token-file", server.token_path(), server.url(), "-e",
                      "FOO=bar", "--", "touch", marker},
                     {}, std::chrono::seconds(30));
  EXPECT_NE(r.status, (ExitStatus{true, 0}));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("environment variable FOO is not allowed by this server (its --env-allow)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(ExecEnvironment, EnvAllowNamesAndPrefixes) {
  ExecServer server({.args = {"--env-allow", "FOO", "--env-allow", "APP_*"}});
  const auto o = exec_once(server.url(), server.token(),
                           env_command({{"FOO", "1"}, {"APP_MODE", "fast"}, {"APP_", "empty"}}));
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  const auto env = parse_env(o.out);
  EXPECT_EQ(env.at("FOO"), "1");
  EXPECT_EQ(env.at("APP_MODE"), "fast");
  EXPECT_EQ(env.at("APP_"), "empty");
  // The flag replaces the default list: LANG is no longer the client's to set.
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"FOOD", "x"}, {"APPX", "x"}, {"LANG", "C"}}) {
    const auto refused = exec_once(server.url(), server.token(), env_command({{name, value}}));
    ASSERT_TRUE(refused_with(refused, kExecFailed)) << name;
    EXPECT_NE(refused.error->text.find("variable " + name + " is not"), std::string::npos)
        << refused.error->text;
  }
}

TEST(ExecEnvironment, NeverAllowedVariablesAreRefused) {
  // They make the loader or the shell run code of the client's choosing before the command.
  // No --env-allow can name them (next test); refused here as never allowed, not as unlisted.
  ExecServer server;
  for (const char* name : {"LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "IFS"}) {
    const auto o = exec_once(server.url(), server.token(), env_command({{name, "/tmp/x"}}));
    ASSERT_TRUE(refused_with(o, kExecFailed)) << name;
    EXPECT_EQ(o.error->text, std::string("environment variable ") + name +
                                 " is not allowed by this server (never, whatever its "
                                 "--env-allow)");
  }
}

TEST(ExecEnvironment, EnvAllowOfANeverAllowedNameIsRefusedAtStart) {
  TempDir dir;
  // A pattern that would match one of them is refused too ("B*" matches BASH_ENV).
  for (const char* entry : {"LD_PRELOAD", "LD_*", "BASH_ENV", "ENV", "IFS", "*", "L*", "B*"}) {
    const auto r = run({duplex_bin(), "serve", "--allow-root", "--exec", "--token-file",
                        dir.file("token"), "--listen", "tcp://127.0.0.1:0", "--env-allow", entry},
                       {}, std::chrono::seconds(10));
    EXPECT_EQ(r.status, (ExitStatus{true, 2})) << entry << ": " << r.err;
    EXPECT_EQ(r.out, "") << "it must not start listening";
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(std::string("--env-allow ") + entry + ": a client may never set"),
              std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace duplex::test
