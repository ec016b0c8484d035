// Token file helpers. The file holds one line: 64 hex digits.
#include "duplex/core/token_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace duplex {

std::string default_token_path() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::string(x) + "/duplex/token";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/") + "/.config/duplex/token";
}

Result<std::string> read_token_file(const std::string& path, std::string& why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    why = "cannot read token file " + path + ": " + std::strerror(e);
    return std::error_code(e, std::system_category());
  }
  if ((st.st_mode & 077) != 0) {
    why = "token file " + path + " is accessible by other users; run: chmod 600 " + path;
    return std::make_error_code(std::errc::permission_denied);
  }
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  const auto b = line.find_first_not_of(" \t\r\n");
  const auto e = line.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) {
    why = "token file " + path + " is empty";
    return std::make_error_code(std::errc::invalid_argument);
  }
  return line.substr(b, e - b + 1);
}

Result<std::string> load_or_create_token_file(const std::string& path, std::string& why) {
  if (::access(path.c_str(), F_OK) == 0) return read_token_file(path, why);
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::filesystem::create_directories(dir, ec);
    if (!ec) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) {
      why = "cannot create " + dir.string() + ": " + ec.message();
      return ec;
    }
  }
  unsigned char raw[32];
  if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    why = "cannot generate a token: getrandom failed";
    return std::error_code(errno, std::system_category());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token.push_back(kHex[c >> 4]);
    token.push_back(kHex[c & 15]);
  }
  // O_EXCL: if another process creates it at the same moment, read theirs instead.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return read_token_file(path, why);
    const int e = errno;
    why = "cannot create token file " + path + ": " + std::strerror(e);
    return std::error_code(e, std::system_category());
  }
  const std::string line = token + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) {
    why = "cannot write token file " + path;
    return std::make_error_code(std::errc::io_error);
  }
  return token;
}

}  // namespace duplex
