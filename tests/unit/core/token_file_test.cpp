// Tests for core/token_file.hpp: reading, creating and choosing the exec token, and the one-line
// reasons a refused file gets.
#include "duplex/core/token_file.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace duplex {
namespace {

namespace fs = std::filesystem;

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/duplex-token-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    ::unsetenv("DUPLEX_TOKEN");
  }
  void TearDown() override {
    fs::remove_all(dir_);
    ::unsetenv("XDG_CONFIG_HOME");
    ::unsetenv("DUPLEX_TOKEN");
  }
  std::string write_token(const std::string& path, const std::string& text,
                          fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    fs::permissions(path, mode);
    return path;
  }
  std::string dir_;
};

// A token of the generated form: 64 lowercase hex digits.
const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kOther = std::string(64, 'e');

::testing::AssertionResult refused_naming(const Result<std::string>& t, const std::string& path,
                                          std::string_view words) {
  if (t) return ::testing::AssertionFailure() << "accepted, token " << *t;
  if (t.message().find(path) == std::string::npos)
    return ::testing::AssertionFailure()
           << "the reason does not name " << path << ": " << t.message();
  if (t.message().find(words) == std::string::npos)
    return ::testing::AssertionFailure()
           << "the reason does not say '" << words << "': " << t.message();
  if (t.message().find('\n') != std::string::npos)
    return ::testing::AssertionFailure() << "more than one line: " << t.message();
  return ::testing::AssertionSuccess();
}

TEST_F(TokenFileTest, TheGeneratedFormIsRead) {
  auto t = read_token_file(write_token(dir_ + "/t", kToken + "\n"));
  ASSERT_TRUE(t) << t.message();
  EXPECT_EQ(*t, kToken);
  auto no_newline = read_token_file(write_token(dir_ + "/u", kToken));
  ASSERT_TRUE(no_newline) << no_newline.message();
  EXPECT_EQ(*no_newline, kToken);
}

// Audit item 2: any first line used to be the token. Only the generated form is one now.
TEST_F(TokenFileTest, AMalformedTokenIsRefused) {
  const std::string bad[] = {
      "sesame\n",
      "  " + kToken + "  \n",                                                // blanks around it
      kToken.substr(0, 63) + "\n",                                           // short
      kToken + "0\n",                                                        // long
      "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n",  // upper case
      kToken + "\nsecond line\n",                                            // more than one line
      kToken + "\r\n",
  };
  int i = 0;
  for (const auto& text : bad) {
    const auto path = write_token(dir_ + "/bad" + std::to_string(i++), text);
    EXPECT_TRUE(refused_naming(read_token_file(path), path, "64 lowercase hex digits"))
        << "content #" << i;
  }
}

// Audit item 2: stat() followed the link, so a link to a root-owned 0600 file made that
// file's first line the token.
TEST_F(TokenFileTest, ASymlinkIsRefusedEvenToAPrivateFileOfOurs) {
  const auto target = write_token(dir_ + "/real", kToken + "\n");
  const auto link = dir_ + "/link";
  fs::create_symlink(target, link);
  EXPECT_TRUE(refused_naming(read_token_file(link), link, "symbolic link"));
  EXPECT_TRUE(refused_naming(load_or_create_token_file(link), link, "symbolic link"))
      << "an existing link is not replaced by a fresh token either";
}

// Audit item 2: a 0600 file planted by `nobody` was accepted by a root server.
TEST_F(TokenFileTest, AFileOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to nobody";
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const auto path = write_token(dir_ + "/t", kToken + "\n");
  ASSERT_EQ(::chown(path.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  EXPECT_TRUE(refused_naming(read_token_file(path), path,
                             "owned by uid " + std::to_string(nobody->pw_uid)));
}

// StrictModes: whoever can write the directory can swap the file.
TEST_F(TokenFileTest, AGroupWritableDirectoryIsRefused) {
  const auto path = write_token(dir_ + "/shared/t", kToken + "\n");
  fs::permissions(dir_ + "/shared", fs::perms::group_write, fs::perm_options::add);
  EXPECT_TRUE(refused_naming(read_token_file(path), path, "chmod go-w"));
}

TEST_F(TokenFileTest, AFifoIsRefusedWithoutHanging) {
  const auto path = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_TRUE(refused_naming(read_token_file(path), path, "not a regular file"));
}

TEST_F(TokenFileTest, MissingFileNamesThePathAndKeepsTheErrno) {
  auto t = read_token_file(dir_ + "/absent");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), std::error_code(ENOENT, std::system_category()));
  EXPECT_NE(t.message().find(dir_ + "/absent"), std::string::npos) << t.message();
  EXPECT_EQ(t.message().find('\n'), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, ReadableByOthersIsRefusedWithTheFix) {
  const auto path = write_token(dir_ + "/t", kToken + "\n",
                                fs::perms::owner_read | fs::perms::owner_write |
                                    fs::perms::group_read | fs::perms::others_read);
  auto t = read_token_file(path);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), std::errc::permission_denied);
  EXPECT_NE(t.message().find("chmod 600 " + path), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, EmptyTokenIsRefused) {
  auto t = read_token_file(write_token(dir_ + "/t", "\n"));
  ASSERT_FALSE(t);
  EXPECT_NE(t.message().find("is empty"), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, CreatedWith64HexDigitsMode0600AndReadBack) {
  const auto path = dir_ + "/new/dir/token";
  auto t = load_or_create_token_file(path);
  ASSERT_TRUE(t) << t.message();
  ASSERT_EQ(t->size(), 64u);
  EXPECT_EQ(t->find_first_not_of("0123456789abcdef"), std::string::npos) << *t;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/new/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto again = load_or_create_token_file(path);
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ(*again, *t);
  auto other = load_or_create_token_file(dir_ + "/other");
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *t) << "each token is fresh";
}

TEST_F(TokenFileTest, CannotCreateSaysWhy) {
  const auto blocker = write_token(dir_ + "/file", "x");  // a file where a directory should be
  auto t = load_or_create_token_file(blocker + "/sub/token");
  ASSERT_FALSE(t);
  EXPECT_NE(t.message().find(blocker), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, ResolveWithNoFileNoEnvMeansEmptyToken) {
  auto t = resolve_token("");
  ASSERT_TRUE(t) << t.message();
  EXPECT_EQ(*t, "");
}

TEST_F(TokenFileTest, ResolveDefaultFileThenEnvThenExplicitFile) {
  write_token(dir_ + "/duplex/token", kToken + "\n");
  EXPECT_EQ(*resolve_token(""), kToken);
  ::setenv("DUPLEX_TOKEN", "from-env", 1);
  EXPECT_EQ(*resolve_token(""), "from-env");
  const auto explicit_file = write_token(dir_ + "/other", kOther + "\n");
  EXPECT_EQ(*resolve_token(explicit_file), kOther);
}

TEST_F(TokenFileTest, ResolveMissingExplicitFileIsAnError) {
  auto t = resolve_token(dir_ + "/absent");
  EXPECT_FALSE(t);
  EXPECT_NE(t.message().find("absent"), std::string::npos) << t.message();
}

}  // namespace
}  // namespace duplex
