// Tests for core/secure_file.hpp: private files are read only when owner, mode, type and directory
// say nobody else could have written (or, for secrets, read) them; created 0600 with O_EXCL.
#include "duplex/core/secure_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.hpp"

namespace duplex {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == std::string::npos;
}

TEST(ConfigPath, UnderXdgConfigHomeElseHomeDotConfig) {
  ::setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
  EXPECT_EQ(config_path("known_hosts"), "/x/cfg/duplex/known_hosts");
  ::unsetenv("XDG_CONFIG_HOME");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(config_path("id_ed25519"), "/home/someone/.config/duplex/id_ed25519");
}

TEST(SecureFile, CreateMakesA0600FileInA0700DirectoryAndReadsItBack) {
  TempDir dir;
  const std::string path = dir.file("a/b/key");
  ASSERT_TRUE(create_private_file(path, "secret\n"));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(dir.file("a")), 0700u);
  EXPECT_EQ(mode_of(dir.file("a/b")), 0700u);
  auto text = read_private_file(path, FileTrust::secret);
  ASSERT_TRUE(text) << text.message();
  EXPECT_EQ(*text, "secret\n");
}

TEST(SecureFile, CreateNeverReplacesAFileOrFollowsALink) {
  TempDir dir;
  const std::string path = dir.file("key");
  ASSERT_TRUE(create_private_file(path, "first"));
  auto again = create_private_file(path, "second");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::error_code(EEXIST, std::system_category()));
  EXPECT_EQ(*read_private_file(path, FileTrust::secret), "first");

  // A dangling link planted where the key goes must not create the link's target.
  const std::string link = dir.file("planted");
  fs::create_symlink(dir.file("target"), link);
  ASSERT_FALSE(create_private_file(link, "x"));
  EXPECT_FALSE(fs::exists(dir.file("target")));
}

TEST(SecureFile, SecretReadableByGroupOrOthersIsRefusedWithTheFix) {
  TempDir dir;
  for (mode_t mode : {0640u, 0604u, 0660u, 0700u}) {
    const std::string path = dir.file("key");
    write_file(path, "k", mode);
    auto r = read_private_file(path, FileTrust::secret);
    if (mode == 0700) {
      EXPECT_TRUE(r) << r.message();  // owner bits only: fine
      continue;
    }
    ASSERT_FALSE(r) << std::oct << mode;
    EXPECT_EQ(r.error(), std::make_error_code(std::errc::permission_denied));
    EXPECT_NE(r.message().find("chmod 600 " + path), std::string::npos) << r.message();
    EXPECT_TRUE(one_line(r.message()));
  }
}

TEST(SecureFile, TrustedFileMayBeReadByOthersButNotWritten) {
  TempDir dir;
  const std::string path = dir.file("authorized_keys");
  write_file(path, "x", 0644);
  EXPECT_TRUE(read_private_file(path, FileTrust::trusted));
  EXPECT_FALSE(read_private_file(path, FileTrust::secret));
  write_file(path, "x", 0664);
  auto r = read_private_file(path, FileTrust::trusted);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("writable by other users"), std::string::npos) << r.message();
}

TEST(SecureFile, SymlinkIsRefusedEvenToAGoodFile) {
  TempDir dir;
  const std::string real = dir.file("real");
  write_file(real, "k", 0600);
  const std::string link = dir.file("link");
  fs::create_symlink(real, link);
  auto r = read_private_file(link, FileTrust::secret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::error_code(ELOOP, std::system_category()));
  EXPECT_NE(r.message().find("symbolic link"), std::string::npos) << r.message();
}

TEST(SecureFile, NotARegularFileIsRefusedWithoutHanging) {
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = read_private_file(fifo, FileTrust::secret);  // O_NONBLOCK: the open does not wait
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("not a regular file"), std::string::npos) << r.message();
  EXPECT_FALSE(read_private_file(dir.path().string(), FileTrust::trusted));
}

TEST(SecureFile, DirectoryWritableByOthersIsRefused) {
  TempDir dir;
  const std::string sub = dir.file("shared");
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  const std::string path = sub + "/key";
  write_file(path, "k", 0600);
  ASSERT_EQ(::chmod(sub.c_str(), 0777), 0);
  auto r = read_private_file(path, FileTrust::secret);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("directory " + sub), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("chmod go-w " + sub), std::string::npos) << r.message();
  ASSERT_EQ(::chmod(sub.c_str(), 0755), 0);
  EXPECT_TRUE(read_private_file(path, FileTrust::secret));
}

TEST(SecureFile, OwnedBySomeoneElseIsRefused) {
  TempDir dir;
  if (::geteuid() == 0) {
    // The audit's case: a 0600 file planted by nobody must not be believed by a root server.
    const std::string path = dir.file("planted");
    write_file(path, "k", 0600);
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
    for (FileTrust trust : {FileTrust::secret, FileTrust::trusted}) {
      auto r = read_private_file(path, trust);
      ASSERT_FALSE(r);
      EXPECT_NE(r.message().find("owned by uid 65534, not by uid 0"), std::string::npos)
          << r.message();
    }
    return;
  }
  // As a normal user a root-owned file stands in for one planted by someone else.
  auto r = read_private_file("/etc/passwd", FileTrust::secret);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("owned by uid 0"), std::string::npos) << r.message();
  // A root-owned trusted file (e.g. /etc/duplex/authorized_keys) is believed.
  EXPECT_TRUE(read_private_file("/etc/passwd", FileTrust::trusted));
}

TEST(SecureFile, LargerThanTheLimitIsRefused) {
  TempDir dir;
  const std::string path = dir.file("big");
  write_file(path, std::string(100, 'x'), 0600);
  auto r = read_private_file(path, FileTrust::secret, 99);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::make_error_code(std::errc::file_too_large));
  EXPECT_TRUE(read_private_file(path, FileTrust::secret, 100));
}

TEST(SecureFile, AppendCreatesThenAddsAndChecksTheExistingFile) {
  TempDir dir;
  const std::string path = dir.file("d/known_hosts");
  ASSERT_TRUE(append_private_file(path, "one\n"));
  ASSERT_TRUE(append_private_file(path, "two\n"));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(*read_private_file(path, FileTrust::trusted), "one\ntwo\n");
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  auto r = append_private_file(path, "three\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("writable by other users"), std::string::npos) << r.message();
}

TEST(SecureFile, ReplaceSwapsTheWholeFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("d/sessions");
  ASSERT_TRUE(replace_private_file(path, "old"));
  ASSERT_TRUE(replace_private_file(path, "new"));
  EXPECT_EQ(*read_private_file(path, FileTrust::secret), "new");
  EXPECT_EQ(mode_of(path), 0600u);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.file("d")))
    ++files;
  EXPECT_EQ(files, 1u);
  // A symlink in its place is replaced itself; its target is untouched.
  const std::string target = dir.file("target");
  write_file(target, "keep", 0600);
  ASSERT_TRUE(fs::remove(path));
  fs::create_symlink(target, path);
  ASSERT_TRUE(replace_private_file(path, "mine"));
  EXPECT_EQ(*read_private_file(target, FileTrust::secret), "keep");
  EXPECT_EQ(*read_private_file(path, FileTrust::secret), "mine");
}

}  // namespace
}  // namespace duplex
