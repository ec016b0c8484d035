// Exit statuses with a fixed meaning (POSIX shells' and ssh's conventions), each rule in one place.
#pragma once

#include <algorithm>
#include <cerrno>

namespace duplex {

/// The command was found but could not be run (POSIX shells).
inline constexpr int kExitCannotExecute = 126;
/// The command was not found (POSIX shells).
inline constexpr int kExitNotFound = 127;
/// The exec client's own failure: connection, protocol or authentication (ssh's 255).
inline constexpr int kExitConnection = 255;

/// What a shell reports when exec failed with `err`: 127 for ENOENT, 126 for every other reason.
constexpr int exit_status_for_exec_errno(int err) noexcept {
  return err == ENOENT ? kExitNotFound : kExitCannotExecute;
}

/// What a shell reports for a process killed by signal `signo`: 128 + signo, kept in 129..255.
constexpr int exit_status_for_signal(int signo) noexcept {
  return std::clamp(128 + signo, 129, 255);
}

}  // namespace duplex
