// RawMode, terminal size, standard fds and whole writes: termios(3), tty_ioctl(4).
#include "duplex/client/terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>

namespace duplex::client {
namespace {

// What the fatal-signal handler needs, in a form it may touch (async-signal-safe: plain data,
// tcsetattr(3) and raise(3) only).
volatile std::sig_atomic_t g_raw_active = 0;
int g_raw_fd = -1;
termios g_raw_saved{};

constexpr std::array kFatalSignals{SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
std::array<struct sigaction, kFatalSignals.size()> g_old_actions{};

extern "C" void restore_then_die(int signo) {
  if (g_raw_active) ::tcsetattr(g_raw_fd, TCSANOW, &g_raw_saved);
  // SA_RESETHAND put the default action back: the re-raised signal ends the process as before.
  ::raise(signo);
}

int set_attr(int fd, const termios& t) noexcept {
  int r;
  do
    r = ::tcsetattr(fd, TCSADRAIN, &t);
  while (r != 0 && errno == EINTR);
  return r;
}

}  // namespace

std::optional<TerminalSize> terminal_size(int fd) noexcept {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return std::nullopt;
  return TerminalSize{ws.ws_row, ws.ws_col};
}

void ensure_std_fds() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free number, which is `fd` itself.
    const int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n >= 0 && n != fd) ::close(n);
  }
}

bool is_terminal(int fd) noexcept {
  return ::isatty(fd) == 1;
}

bool write_all(int fd, ByteView b) noexcept {
  while (!b.empty()) {
    const ssize_t n = ::write(fd, b.data(), b.size());
    if (n > 0) {
      b = b.subspan(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Someone made our stdout non-blocking (a shared terminal, a parent's pipe): wait for room.
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else {
      return false;
    }
  }
  return true;
}

RawMode::RawMode(int fd) : fd_(fd) {
  if (!is_terminal(fd) || ::tcgetattr(fd, &saved_) != 0) return;
  g_raw_fd = fd;
  g_raw_saved = saved_;
  g_raw_active = 1;
  for (std::size_t i = 0; i < kFatalSignals.size(); ++i) {
    struct sigaction sa {};
    sa.sa_handler = restore_then_die;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = static_cast<int>(SA_RESETHAND);  // the macro is unsigned (0x80000000)
    ::sigaction(kFatalSignals[i], &sa, &g_old_actions[i]);
  }
  termios raw = saved_;
  ::cfmakeraw(&raw);
  if (set_attr(fd, raw) != 0) {
    restore();
    return;
  }
  active_ = true;
}

RawMode::~RawMode() {
  restore();
}

void RawMode::restore() noexcept {
  if (!g_raw_active || g_raw_fd != fd_) return;
  if (active_) set_attr(fd_, saved_);
  active_ = false;
  g_raw_active = 0;
  for (std::size_t i = 0; i < kFatalSignals.size(); ++i)
    ::sigaction(kFatalSignals[i], &g_old_actions[i], nullptr);
}

}  // namespace duplex::client
