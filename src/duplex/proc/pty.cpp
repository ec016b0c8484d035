// Pseudo-terminal set-up: posix_openpt(3), grantpt, unlockpt, ptsname_r, TIOCSWINSZ.
#include "duplex/proc/pty.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>

#include <array>
#include <cerrno>
#include <new>

namespace duplex::proc {

Result<Pty> open_pty(std::uint16_t rows, std::uint16_t cols) noexcept {
  // O_NOCTTY: the master must never become *our* controlling terminal; O_CLOEXEC: it must not
  // leak into children other than the one we give it to (glibc passes the flags to open).
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return std::error_code(errno, std::system_category());
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
    return std::error_code(errno, std::system_category());
  std::array<char, 128> name{};
  // ptsname_r, not ptsname: the latter returns a static buffer shared by all threads.
  if (int e = ::ptsname_r(master.get(), name.data(), name.size()); e != 0)
    return std::error_code(e, std::system_category());
  if (rows != 0 || cols != 0) {
    if (auto ec = set_window_size(master.get(), rows, cols)) return ec;
  }
  try {
    return Pty{std::move(master), std::string(name.data())};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
}

std::error_code set_window_size(int master_fd, std::uint16_t rows, std::uint16_t cols) noexcept {
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (::ioctl(master_fd, TIOCSWINSZ, &ws) != 0) return {errno, std::system_category()};
  return {};
}

}  // namespace duplex::proc
