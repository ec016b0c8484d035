// Tests for core/token_file.hpp: reading, creating and choosing the exec token, and the one-line
// reasons a refused file gets.
#include "duplex/core/token_file.hpp"

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

TEST_F(TokenFileTest, FirstLineWithoutSurroundingWhitespace) {
  const auto path = write_token(dir_ + "/t", "  secret \t\nsecond line\n");
  auto t = read_token_file(path);
  ASSERT_TRUE(t) << t.message();
  EXPECT_EQ(*t, "secret");
}

TEST_F(TokenFileTest, MissingFileNamesThePathAndKeepsTheErrno) {
  auto t = read_token_file(dir_ + "/absent");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), std::error_code(ENOENT, std::system_category()));
  EXPECT_NE(t.message().find(dir_ + "/absent"), std::string::npos) << t.message();
  EXPECT_EQ(t.message().find('\n'), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, ReadableByOthersIsRefusedWithTheFix) {
  const auto path = write_token(dir_ + "/t", "secret\n",
                                fs::perms::owner_read | fs::perms::owner_write |
                                    fs::perms::group_read | fs::perms::others_read);
  auto t = read_token_file(path);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), std::errc::permission_denied);
  EXPECT_NE(t.message().find("chmod 600 " + path), std::string::npos) << t.message();
}

TEST_F(TokenFileTest, EmptyTokenIsRefused) {
  auto t = read_token_file(write_token(dir_ + "/t", " \n"));
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
  write_token(dir_ + "/duplex/token", "from-default");
  EXPECT_EQ(*resolve_token(""), "from-default");
  ::setenv("DUPLEX_TOKEN", "from-env", 1);
  EXPECT_EQ(*resolve_token(""), "from-env");
  const auto explicit_file = write_token(dir_ + "/other", "from-flag");
  EXPECT_EQ(*resolve_token(explicit_file), "from-flag");
}

TEST_F(TokenFileTest, ResolveMissingExplicitFileIsAnError) {
  auto t = resolve_token(dir_ + "/absent");
  EXPECT_FALSE(t);
  EXPECT_NE(t.message().find("absent"), std::string::npos) << t.message();
}

}  // namespace
}  // namespace duplex
