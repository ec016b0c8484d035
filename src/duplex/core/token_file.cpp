// Token file helpers: the file holds one line of 64 hex digits.
#include "duplex/core/token_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

namespace duplex {
namespace {

Failure errno_failure(int e, std::string detail) {
  return fail(std::error_code(e, std::system_category()), std::move(detail));
}

}  // namespace

std::string default_token_path() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::string(x) + "/duplex/token";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/") + "/.config/duplex/token";
}

Result<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    return errno_failure(e, fmt::format("cannot read token file {}: {}", path, std::strerror(e)));
  }
  if ((st.st_mode & 077) != 0)
    return fail(
        std::errc::permission_denied,
        fmt::format("token file {} is accessible by other users; run: chmod 600 {}", path, path));
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  const auto b = line.find_first_not_of(" \t\r\n");
  const auto e = line.find_last_not_of(" \t\r\n");
  if (b == std::string::npos)
    return fail(std::errc::invalid_argument, fmt::format("token file {} is empty", path));
  return line.substr(b, e - b + 1);
}

Result<std::string> load_or_create_token_file(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return read_token_file(path);
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::filesystem::create_directories(dir, ec);
    if (!ec) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) return fail(ec, fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  }
  std::array<unsigned char, 32> raw{};
  if (::getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size()))
    return errno_failure(errno, "cannot generate a token: getrandom failed");
  const std::string token = fmt::format("{:02x}", fmt::join(raw, ""));
  // O_EXCL: if another process creates it at the same moment, read theirs instead.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    if (e == EEXIST) return read_token_file(path);
    return errno_failure(e, fmt::format("cannot create token file {}: {}", path, std::strerror(e)));
  }
  const std::string line = token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) return fail(std::errc::io_error, fmt::format("cannot write token file {}", path));
  return token;
}

Result<std::string> resolve_token(const std::string& token_file) {
  if (!token_file.empty()) return read_token_file(token_file);
  if (const char* t = std::getenv("DUPLEX_TOKEN"); t && *t) return std::string(t);
  const std::string path = default_token_path();
  if (::access(path.c_str(), F_OK) != 0) return std::string{};  // the server may use SO_PEERCRED
  return read_token_file(path);
}

}  // namespace duplex
