// Authentication (issue 3, test 6): the token over TCP (none, wrong, right), the peer uid on a
// Unix socket (allowed, not allowed), the token file itself, and exec switched off. A refused
// client learns only "authentication failed" and nothing runs: each refused request would have
// created a file, and the file must not exist.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

// A command whose only effect is a file: proof of whether it ran.
ExecRequest touch(const std::string& path) {
  ExecRequest r;
  r.argv = {"touch", path};
  return r;
}

bool exists(const std::string& path) {
  return std::filesystem::exists(path);
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(ExecAuth, TokenFileIsCreated0600WithARandomToken) {
  ExecServer a;
  EXPECT_EQ(mode_of(a.token_path()), 0600u);
  EXPECT_EQ(a.token().size(), 64u) << a.token();
  EXPECT_EQ(a.token().find_first_not_of("0123456789abcdef"), std::string::npos) << a.token();
  ExecServer b;
  EXPECT_NE(a.token(), b.token()) << "two fresh token files, one token";
}

TEST(ExecAuth, TokenFileDirectoryIsCreatedPrivate) {
  TempDir dir;
  const auto path = dir.file("sub/dir/token");
  TestServer server({"-q", "--exec", "--token-file", path});
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(dir.file("sub/dir")), 0700u);
}

TEST(ExecAuth, DefaultTokenFileIsUnderXdgConfigHome) {
  // The test binary points XDG_CONFIG_HOME at a temp dir (exec_fixture.cpp): never the real home.
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  ASSERT_NE(xdg, nullptr);
  TempDir dir;
  ::setenv("XDG_CONFIG_HOME", dir.path().c_str(), 1);
  {
    TestServer server({"-q", "--exec"});
    const auto path = dir.file("duplex/token");
    EXPECT_EQ(mode_of(path), 0600u);
    const auto o = exec_once(server.url(), first_line(path), touch(dir.file("ran")));
    EXPECT_TRUE(exited_with(o, 0));
    EXPECT_TRUE(exists(dir.file("ran")));
  }
  ::setenv("XDG_CONFIG_HOME", xdg, 1);
}

TEST(ExecAuth, RightTokenOverTcpRuns) {
  ExecServer server;
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.url(), server.token(), touch(marker));
  EXPECT_TRUE(exited_with(o, 0));
  ASSERT_TRUE(o.identity.has_value());
  EXPECT_EQ(*o.identity, "token");
  EXPECT_TRUE(exists(marker));
}

TEST(ExecAuth, NoAuthBeforeExecStartIsAuthRequired) {
  ExecServer server;
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.url(), std::nullopt, touch(marker));
  EXPECT_TRUE(refused_with(o, err::auth_required));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, EmptyTokenOverTcpIsRefused) {
  ExecServer server;
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.url(), std::string(), touch(marker));
  EXPECT_TRUE(refused_with(o, err::auth_failed));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, WrongTokensAreRefusedAlike) {
  ExecServer server;
  const std::string& t = server.token();
  const std::string wrong[] = {
      std::string(64, '0'),
      t.substr(0, 63),                               // a prefix
      t + "0",                                       // longer
      t.substr(0, 63) + (t[63] == 'a' ? "b" : "a"),  // last character differs
      t + "\n",                                      // what is in the file, newline included
      std::string("\0", 1) + t,                      // opaque bytes: NUL is not an end
  };
  int i = 0;
  for (const auto& w : wrong) {
    const auto marker = server.dir().file("ran-" + std::to_string(i++));
    const auto o = exec_once(server.url(), w, touch(marker));
    EXPECT_TRUE(refused_with(o, err::auth_failed)) << "wrong token #" << i;
    if (o.error) {
      EXPECT_EQ(o.error->text, "authentication failed") << "no hint for guessing";
    }
    EXPECT_FALSE(exists(marker)) << "wrong token #" << i << " ran its command";
  }
}

TEST(ExecAuth, UnixSocketSameUidNeedsNoToken) {
  ExecServer server({.args = {}, .tcp = false, .unix_socket = true});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), std::string(), touch(marker));
  EXPECT_TRUE(exited_with(o, 0));
  ASSERT_TRUE(o.identity.has_value());
  EXPECT_EQ(*o.identity, "uid " + std::to_string(::getuid()));
  EXPECT_TRUE(exists(marker));
}

TEST(ExecAuth, UnixSocketSameUidStillNeedsAuthFrame) {
  ExecServer server({.args = {}, .tcp = false, .unix_socket = true});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), std::nullopt, touch(marker));
  EXPECT_TRUE(refused_with(o, err::auth_required));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, UnixSocketDisallowedUidIsRefused) {
  ASSERT_NE(::getuid(), 12345u) << "the test needs a uid other than ours";
  ExecServer server({.args = {"--allow-uid", "12345"}, .tcp = false, .unix_socket = true});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), std::string(), touch(marker));
  EXPECT_TRUE(refused_with(o, err::auth_failed));
  if (o.error) {
    EXPECT_EQ(o.error->text, "authentication failed");
  }
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, UnixSocketDisallowedUidWithWrongTokenIsRefused) {
  ExecServer server({.args = {"--allow-uid", "12345"}, .tcp = false, .unix_socket = true});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), std::string(64, 'f'), touch(marker));
  EXPECT_TRUE(refused_with(o, err::auth_failed));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, UnixSocketDisallowedUidWithTheTokenRuns) {
  // The token is valid on every transport (the security contract: "a secret token ...; or, on a
  // Unix socket, the peer's uid").
  ExecServer server({.args = {"--allow-uid", "12345"}, .tcp = false, .unix_socket = true});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), server.token(), touch(marker));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_TRUE(exists(marker));
}

TEST(ExecAuth, TokenFileReadableByOthersIsRefusedAtStart) {
  TempDir dir;
  const auto path = dir.file("token");
  write_file(path, std::string(64, 'a') + "\n", 0644);
  const auto r = run({duplex_bin(), "serve", "--exec", "--allow-root", "--token-file", path,
                      "--listen", "tcp://127.0.0.1:0"},
                     {}, std::chrono::seconds(10));
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, got:\n" << r.err;
}

TEST(ExecAuth, MalformedTokenFileIsRefusedAtStart) {
  TempDir dir;
  const auto path = dir.file("token");
  write_file(path, "sesame\n", 0600);
  const auto r = run({duplex_bin(), "serve", "--exec", "--allow-root", "--token-file", path,
                      "--listen", "tcp://127.0.0.1:0"},
                     {}, std::chrono::seconds(10));
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("64 lowercase hex digits"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, got:\n" << r.err;
}

TEST(ExecAuth, SymlinkedTokenFileIsRefusedAtStart) {
  TempDir dir, elsewhere;
  const auto target = elsewhere.file("secret");
  write_file(target, std::string(64, 'c') + "\n", 0600);
  const auto path = dir.file("token");
  std::filesystem::create_symlink(target, path);
  const auto r = run({duplex_bin(), "serve", "--exec", "--allow-root", "--token-file", path,
                      "--listen", "tcp://127.0.0.1:0"},
                     {}, std::chrono::seconds(10));
  EXPECT_NE(r.status.code, 0);
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
}

TEST(ExecAuth, EmptyTokenFileIsRefusedAtStart) {
  TempDir dir;
  const auto path = dir.file("token");
  write_file(path, "\n", 0600);
  const auto r = run({duplex_bin(), "serve", "--exec", "--allow-root", "--token-file", path,
                      "--listen", "tcp://127.0.0.1:0"},
                     {}, std::chrono::seconds(10));
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, got:\n" << r.err;
}

TEST(ExecAuth, ExistingTokenFileIsKeptAsIs) {
  // A token of the generated form (issue 7: nothing else is a token) that the server did not make.
  TempDir dir;
  const auto path = dir.file("token");
  const std::string mine = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  write_file(path, mine + "\n", 0600);
  TestServer server({"-q", "--exec", "--token-file", path});
  EXPECT_EQ(first_line(path), mine);
  const auto o = exec_once(server.url(), mine, touch(dir.file("ran")));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_TRUE(exists(dir.file("ran")));
}

TEST(ExecAuth, WithoutExecFlagAuthIsServiceDisabled) {
  ExecServer server({.args = {}, .exec = false});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.url(), std::string("anything"), touch(marker));
  EXPECT_TRUE(refused_with(o, err::service_disabled));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, WithoutExecFlagExecStartIsServiceDisabled) {
  ExecServer server({.args = {}, .exec = false});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.url(), std::nullopt, touch(marker));
  EXPECT_TRUE(refused_with(o, err::service_disabled));
  EXPECT_FALSE(exists(marker));
}

TEST(ExecAuth, WithoutExecFlagUnixSocketIsServiceDisabledToo) {
  ExecServer server({.args = {}, .tcp = false, .unix_socket = true, .exec = false});
  const auto marker = server.dir().file("ran");
  const auto o = exec_once(server.unix_url(), std::string(), touch(marker));
  EXPECT_TRUE(refused_with(o, err::service_disabled));
  EXPECT_FALSE(exists(marker));
}

}  // namespace
}  // namespace duplex::test
