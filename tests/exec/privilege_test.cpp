// --user and --allow-root (issue 7): a root server runs commands as the account it was told,
// with no supplementary groups, over framed --exec, a pty and --raw-exec; as root without --user
// it does not start. Checked through id, stat and /proc in the commands themselves.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

namespace fs = std::filesystem;

struct Account {
  uid_t uid;
  gid_t gid;
  std::string home;
};

// The `nobody` account, read once before any thread of ours starts.
std::optional<Account> nobody() {
  const passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr) return std::nullopt;
  return Account{pw->pw_uid, pw->pw_gid, pw->pw_dir};
}

#define SKIP_UNLESS_ROOT_WITH_NOBODY(who)                                                      \
  if (::geteuid() != 0) GTEST_SKIP() << "a server runs commands as another user only as root"; \
  const auto who = nobody();                                                                   \
  if (!who) GTEST_SKIP() << "no account named nobody"

ExecRequest shell(std::string script) {
  ExecRequest r;
  r.argv = {std::move(script)};
  r.shell = true;
  return r;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

std::string serve_refusal(std::vector<std::string> args) {
  std::vector<std::string> argv{duplex_bin(), "serve", "--listen", "tcp://127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run(argv, {}, std::chrono::seconds(10));
  EXPECT_EQ(r.status, (ExitStatus{true, 2})) << r.err;
  EXPECT_EQ(r.out, "") << "it must not start listening";
  EXPECT_TRUE(one_line(r.err)) << r.err;
  return r.err;
}

TEST(Privilege, RootWithoutUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "the refusal is for servers started as root";
  TempDir dir;
  for (const std::vector<std::string>& mode :
       {std::vector<std::string>{"--exec", "--token-file", dir.file("token")},
        std::vector<std::string>{"--raw-exec"}}) {
    const auto err = serve_refusal(mode);
    EXPECT_EQ(err,
              "duplex: refusing to run commands as root: add --user NAME (commands run as that "
              "account), or --allow-root if root is really meant\n");
  }
  EXPECT_FALSE(fs::exists(dir.file("token"))) << "refused before anything was made";
}

TEST(Privilege, RootWithAllowRootRunsAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "--allow-root matters only to a server started as root";
  ExecServer server({.args = {"--allow-root"}});
  const auto o = exec_once(server.url(), server.token(), shell("id -u"));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "0\n");
}

TEST(Privilege, UserRunsCommandsAsThatAccountWithNoSupplementaryGroups) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  ExecServer server({.args = {"--user", "nobody"}});
  const auto o = exec_once(server.url(), server.token(), shell("id -u; id -g; id -G; id -un"));
  ASSERT_TRUE(exited_with(o, 0));
  const auto u = std::to_string(who->uid), g = std::to_string(who->gid);
  // id -G lists every group the process holds: the primary one alone, none of root's.
  EXPECT_EQ(o.out, u + "\n" + g + "\n" + g + "\nnobody\n");
}

TEST(Privilege, UserCommandHoldsEveryIdOfTheAccountAndNoCapability) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  ExecServer server({.args = {"--user", "nobody"}});
  // The command's own /proc status: every id switched, no groups, no capabilities left.
  const auto o = exec_once(server.url(), server.token(),
                           shell("grep -E '^(Uid|Gid|Groups|CapPrm|CapEff):' /proc/self/status"));
  ASSERT_TRUE(exited_with(o, 0));
  const auto u = std::to_string(who->uid), g = std::to_string(who->gid);
  EXPECT_NE(o.out.find("Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("Gid:\t" + g + "\t" + g + "\t" + g + "\t" + g + "\n"), std::string::npos)
      << o.out;
  // No supplementary group at all (the kernel ends the line with a space or not, by version).
  EXPECT_TRUE(o.out.find("Groups:\t\n") != std::string::npos ||
              o.out.find("Groups:\t \n") != std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("CapPrm:\t0000000000000000\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapEff:\t0000000000000000\n"), std::string::npos) << o.out;
}

TEST(Privilege, FilesTheCommandMakesBelongToTheAccount) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  TempDir dir;
  const fs::path shared = dir.path() / "shared";
  fs::create_directory(shared);
  fs::permissions(shared, fs::perms::all | fs::perms::sticky_bit);
  // The temp dir itself is root's 0700: nobody reaches `shared` only through it.
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_exec);
  ExecServer server({.args = {"--user", "nobody"}});
  const auto made = (shared / "made").string();
  const auto o = exec_once(server.url(), server.token(), shell("touch " + made));
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  struct stat st {};
  ASSERT_EQ(::stat(made.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, who->uid);
  EXPECT_EQ(st.st_gid, who->gid);
  // And what root alone may write stays out of reach.
  const auto denied =
      exec_once(server.url(), server.token(), shell("touch " + server.dir().file("not-yours")));
  EXPECT_TRUE(exited_with(denied, 1)) << denied.err;
  EXPECT_FALSE(fs::exists(server.dir().file("not-yours")));
}

TEST(Privilege, HomeAndNamesAreTheAccountsAndAMissingHomeMeansTheRoot) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  ExecServer server({.args = {"--user", "nobody"}});
  ExecRequest r;
  r.argv = {"sh", "-c", "echo \"$HOME|$USER|$LOGNAME\"; pwd"};
  const auto o = exec_once(server.url(), server.token(), r);
  ASSERT_TRUE(exited_with(o, 0)) << o.err;
  // sshd's rule: a home that cannot be entered (nobody's is /nonexistent on Debian) means "/".
  std::error_code ec;
  const bool home_usable = fs::is_directory(who->home, ec);
  EXPECT_EQ(o.out, who->home + "|nobody|nobody\n" + (home_usable ? who->home : "/") + "\n");
}

TEST(Privilege, PtyBelongsToTheAccount) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  ExecServer server({.args = {"--user", "nobody"}});
  ExecRequest r = shell("id -u; stat -c '%u %a' \"$(tty)\"");
  r.pty = true;
  const auto o = exec_once(server.url(), server.token(), r);
  ASSERT_TRUE(exited_with(o, 0)) << o.out;
  const auto u = std::to_string(who->uid);
  EXPECT_EQ(o.out, u + "\r\n" + u + " 620\r\n");
}

TEST(Privilege, RawExecRunsAsTheAccount) {
  SKIP_UNLESS_ROOT_WITH_NOBODY(who);
  TestServer server({"-q", "--raw-exec", "--user", "nobody", "--listen", "tcp://127.0.0.1:0"});
  SocketClient c(server.url());
  c.send_all("id -u; id -G");
  const std::string want = std::to_string(who->uid) + "\n" + std::to_string(who->gid) + "\n";
  EXPECT_EQ(c.recv_exact(want.size()), want);
}

TEST(Privilege, UserThatDoesNotExistIsRefusedAtStart) {
  const auto err = serve_refusal({"--raw-exec", "--user", "duplex-no-such-user"});
  EXPECT_NE(err.find("--user duplex-no-such-user: no such user"), std::string::npos) << err;
}

}  // namespace
}  // namespace duplex::test
