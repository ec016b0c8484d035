// Private files: O_NOFOLLOW opens, checks on the descriptor (not the name), sshd-style StrictModes.
#include "duplex/core/secure_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

namespace duplex {
namespace {

// Closes on every way out (the proc layer's UniqueFd is further right than core).
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  /// close(2) reports write-back errors on some file systems: a file we wrote must close cleanly.
  int close() noexcept { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

Failure errno_failure(int e, std::string detail) {
  return fail(std::error_code(e, std::system_category()), std::move(detail));
}

Failure open_failure(int e, const std::string& path, std::string_view doing) {
  // O_NOFOLLOW on a symlink fails with ELOOP: say what it means.
  if (e == ELOOP)
    return errno_failure(e, fmt::format("{} is a symbolic link; refusing to follow it", path));
  return errno_failure(e, fmt::format("cannot {} {}: {}", doing, path, std::strerror(e)));
}

std::string parent_of(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? std::string(".") : dir;
}

// sshd's StrictModes for the directory: someone who can write it can replace the file.
Status check_directory(const std::string& path) {
  const std::string dir = parent_of(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int e = errno;
    return errno_failure(e, fmt::format("cannot inspect {}: {}", dir, std::strerror(e)));
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0)
    return fail(std::errc::permission_denied,
                fmt::format("directory {} (holding {}) is owned by uid {}, not by uid {} or root",
                            dir, path, st.st_uid, me));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fail(
        std::errc::permission_denied,
        fmt::format("directory {} (holding {}) is writable by other users; run: chmod go-w {}", dir,
                    path, dir));
  return {};
}

Status check_file(const std::string& path, const struct stat& st, FileTrust trust) {
  if (!S_ISREG(st.st_mode))
    return fail(std::errc::permission_denied, fmt::format("{} is not a regular file", path));
  const uid_t me = ::geteuid();
  const bool owner_ok = st.st_uid == me || (trust == FileTrust::trusted && st.st_uid == 0);
  if (!owner_ok)
    return fail(std::errc::permission_denied,
                fmt::format("{} is owned by uid {}, not by uid {}{}", path, st.st_uid, me,
                            trust == FileTrust::trusted ? " or root" : ""));
  if (trust == FileTrust::secret && (st.st_mode & 077) != 0)
    return fail(std::errc::permission_denied,
                fmt::format("{} is accessible by other users; run: chmod 600 {}", path, path));
  if (trust == FileTrust::trusted && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fail(std::errc::permission_denied,
                fmt::format("{} is writable by other users; run: chmod go-w {}", path, path));
  return {};
}

// mkdir -p, each directory it creates 0700 (the umask may only take bits away).
Status make_directories(const std::string& dir) {
  std::filesystem::path built;
  for (const auto& part : std::filesystem::path(dir)) {
    built /= part;
    if (::mkdir(built.c_str(), 0700) != 0 && errno != EEXIST) {
      const int e = errno;
      return errno_failure(e,
                           fmt::format("cannot create {}: {}", built.string(), std::strerror(e)));
    }
  }
  return {};
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      return errno_failure(e, fmt::format("cannot write {}: {}", path, std::strerror(e)));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// Opens for writing with `flags` (O_CREAT included), making the directory first when missing.
Result<int> open_for_write(const std::string& path, int flags) {
  const std::string dir = parent_of(path);
  if (::access(dir.c_str(), F_OK) != 0)
    if (auto made = make_directories(dir); !made) return std::move(made).failure();
  const int fd = ::open(path.c_str(), flags | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return open_failure(errno, path, "create");
  return fd;
}

}  // namespace

std::string config_path(std::string_view name) {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0')
    return fmt::format("{}/duplex/{}", x, name);
  const char* home = std::getenv("HOME");
  return fmt::format("{}/.config/duplex/{}", home != nullptr && *home != '\0' ? home : "", name);
}

Result<std::string> read_private_file(const std::string& path, FileTrust trust,
                                      std::size_t max_size) {
  // O_NONBLOCK: a FIFO planted under the name must not hang the open; fstat then refuses it.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return open_failure(errno, path, "read");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return open_failure(errno, path, "inspect");
  if (auto ok = check_file(path, st, trust); !ok) return std::move(ok).failure();
  if (auto ok = check_directory(path); !ok) return std::move(ok).failure();
  if (static_cast<std::size_t>(st.st_size) > max_size)
    return fail(std::errc::file_too_large,
                fmt::format("{} is larger than {} bytes", path, max_size));

  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return open_failure(errno, path, "read");
    if (n == 0) break;  // shrank while we read: keep what is there
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

Status create_private_file(const std::string& path, std::string_view data) {
  auto fd = open_for_write(path, O_CREAT | O_EXCL);
  if (!fd) return std::move(fd).failure();
  Fd file(*fd);
  if (auto ok = write_all(file.get(), data, path); !ok) {
    ::unlink(path.c_str());
    return ok;
  }
  if (file.close() != 0) return open_failure(errno, path, "write");
  return {};
}

Status replace_private_file(const std::string& path, std::string_view data) {
  const std::string temp = fmt::format("{}.tmp.{}", path, ::getpid());
  ::unlink(temp.c_str());  // left by a process of ours that died between create and rename
  if (auto ok = create_private_file(temp, data); !ok) return ok;
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    return errno_failure(e, fmt::format("cannot replace {}: {}", path, std::strerror(e)));
  }
  return {};
}

Status append_private_file(const std::string& path, std::string_view data) {
  auto fd = open_for_write(path, O_CREAT | O_APPEND);
  if (!fd) return std::move(fd).failure();
  Fd file(*fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return open_failure(errno, path, "inspect");
  if (auto ok = check_file(path, st, FileTrust::trusted); !ok) return ok;
  if (auto ok = check_directory(path); !ok) return ok;
  if (auto ok = write_all(file.get(), data, path); !ok) return ok;
  if (file.close() != 0) return open_failure(errno, path, "write");
  return {};
}

}  // namespace duplex
