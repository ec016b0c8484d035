// Pseudo-terminals: open a master/slave pair and set its window size. No Asio, no child handling.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

#include "duplex/core/result.hpp"
#include "duplex/proc/unique_fd.hpp"

namespace duplex::proc {

/// A freshly opened pseudo-terminal. The slave is not opened here: whoever runs on it opens
/// `slave_name` (spawn() does). Reading the master after every slave fd is closed fails with EIO
/// on Linux: treat EIO from a master as end of output.
struct Pty {
  UniqueFd master;         // O_RDWR | O_NOCTTY | O_CLOEXEC, blocking
  std::string slave_name;  // e.g. "/dev/pts/3"
};

/// posix_openpt + grantpt + unlockpt + ptsname_r, then the initial window size.
/// rows/cols of 0 leave the kernel's default (0x0, which programs read as "unknown").
/// Errors: the errno of the failing call, in std::system_category.
Result<Pty> open_pty(std::uint16_t rows, std::uint16_t cols) noexcept;

/// TIOCSWINSZ on a master (or slave) fd; the kernel sends SIGWINCH to the terminal's foreground
/// process group when the size changes.
std::error_code set_window_size(int master_fd, std::uint16_t rows, std::uint16_t cols) noexcept;

}  // namespace duplex::proc
