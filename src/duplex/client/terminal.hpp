// The local terminal and standard fds: raw mode that is always undone, window size, fds 0-2 open,
// whole writes to stdout/stderr.
#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>

#include "duplex/core/bytes.hpp"

namespace duplex::client {

struct TerminalSize {
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;
};

/// The size of the terminal on `fd` (TIOCGWINSZ), or nullopt when `fd` is not a terminal or the
/// terminal does not know its size (reports 0x0).
std::optional<TerminalSize> terminal_size(int fd) noexcept;

/// Opens /dev/null on each of fds 0, 1, 2 that is closed (like OpenSSH's sanitise_stdfd): else
/// the next open() takes that number, and `duplex exec ... <&-` would forward our own epoll fd
/// as stdin. Call it first thing, before anything opens a file or socket.
void ensure_std_fds() noexcept;

/// True when `fd` is a terminal.
bool is_terminal(int fd) noexcept;

/// Writes all of `b` to `fd`, waiting with poll(2) if fd is non-blocking. False on an error
/// (EPIPE: the reader went away).
bool write_all(int fd, ByteView b) noexcept;

/// Puts the terminal on `fd` into raw mode (cfmakeraw: no echo, no line editing, no signals from
/// keys, no output processing) for its lifetime; a no-op when `fd` is not a terminal.
/// The saved settings are restored by the destructor, and also, as a last resort, by handlers
/// for the fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL), which then re-raise: a
/// crash must not leave the user's shell unusable. SIGTERM/SIGHUP are the caller's job (the
/// exec client turns them into a normal return, so this destructor runs).
/// One RawMode at a time per process. Not copyable or movable.
class RawMode {
 public:
  explicit RawMode(int fd);
  ~RawMode();
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

  /// True when raw mode was entered (fd is a terminal and tcsetattr succeeded).
  bool active() const noexcept { return active_; }
  /// Restores the saved settings now (idempotent); the destructor then does nothing.
  void restore() noexcept;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace duplex::client
