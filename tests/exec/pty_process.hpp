// A child process on a pseudo-terminal that the test opens itself (posix_openpt), so that an
// interactive client (`duplex shell`) can be driven as if a person typed into a terminal.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"

namespace duplex::test {

class PtyProcess {
 public:
  /// Starts argv in a new session whose controlling terminal is the pty's slave (stdin, stdout
  /// and stderr), with the given window size. With `stdin_fd` >= 0 the child's stdin is that fd
  /// instead (`yes | duplex exec ...` typed in a terminal); the caller keeps its own copy.
  PtyProcess(std::vector<std::string> argv, std::vector<std::string> extra_env, unsigned short rows,
             unsigned short cols, int stdin_fd = -1);
  ~PtyProcess();
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Types bytes into the terminal.
  void type(std::string_view bytes);
  /// Reads the terminal until `text` appears after offset `from` of everything read; true when
  /// it did, false on timeout or when the process ended first.
  bool wait_for(std::string_view text, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::size_t from = 0);
  /// Reads the terminal until pred(screen) holds; false on timeout or when the process ended first.
  bool wait_until(const std::function<bool(const std::string&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Everything the terminal showed so far.
  const std::string& screen() const { return screen_; }
  /// Sets the window size (the kernel sends SIGWINCH to the terminal's foreground group).
  void resize(unsigned short rows, unsigned short cols);
  /// The terminal's current settings, as the client left them.
  termios settings() const;
  void signal(int sig);
  /// Waits for exit, reading the terminal meanwhile; nullopt on timeout.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool pump(std::chrono::milliseconds timeout);  // one read; false when nothing came
  int master_ = -1;
  int slave_ = -1;  // kept open by the test to read the terminal's settings
  pid_t pid_ = -1;
  bool reaped_ = false;
  ExitStatus status_;
  std::string screen_;
};

/// A screen whose last non-blank character ends a shell prompt ($, # or >): what a test waits
/// for before typing to a remote shell.
inline bool ends_with_shell_prompt(const std::string& screen) {
  const auto end = screen.find_last_not_of(' ');
  return end != std::string::npos &&
         (screen[end] == '$' || screen[end] == '#' || screen[end] == '>');
}

}  // namespace duplex::test
