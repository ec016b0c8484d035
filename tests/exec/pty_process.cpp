// PtyProcess: fork, setsid, the slave as controlling terminal, exec.
#include "exec/pty_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace duplex::test {

using Clock = std::chrono::steady_clock;

PtyProcess::PtyProcess(std::vector<std::string> argv, std::vector<std::string> extra_env,
                       unsigned short rows, unsigned short cols, int stdin_fd) {
  master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0)
    throw std::runtime_error(std::string("posix_openpt: ") + std::strerror(errno));
  const std::string slave_name = ::ptsname(master_);
  slave_ = ::open(slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave_ < 0) throw std::runtime_error("open " + slave_name + ": " + std::strerror(errno));
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  ::ioctl(master_, TIOCSWINSZ, &ws);

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  ExecArrays arrays(argv, extra_env);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setsid();
    const int s = ::open(slave_name.c_str(), O_RDWR);  // the first tty opened: controlling terminal
    if (s < 0) ::_exit(126);
    ::ioctl(s, TIOCSCTTY, 0);
    ::dup2(stdin_fd >= 0 ? stdin_fd : s, 0);
    ::dup2(s, 1);
    ::dup2(s, 2);
    if (s > 2) ::close(s);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig)
      ::signal(sig, SIG_DFL);
    ::execvpe(arrays.argv()[0], arrays.argv(), arrays.envp());
    ::_exit(127);
  }
}

PtyProcess::~PtyProcess() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) ::close(master_);
  if (slave_ >= 0) ::close(slave_);
}

void PtyProcess::type(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(master_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("write to pty: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool PtyProcess::pump(std::chrono::milliseconds timeout) {
  pollfd p{master_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return false;
  char buf[4096];
  const ssize_t n = ::read(master_, buf, sizeof buf);
  if (n <= 0) return false;
  screen_.append(buf, static_cast<std::size_t>(n));
  return true;
}

bool PtyProcess::wait_until(const std::function<bool(const std::string&)>& pred,
                            std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred(screen_)) return true;
    if (Clock::now() >= deadline) return false;
    if (!pump(std::chrono::milliseconds(50)) && wait(std::chrono::milliseconds(0))) {
      while (pump(std::chrono::milliseconds(0))) {
      }
      return pred(screen_);
    }
  }
}

bool PtyProcess::wait_for(std::string_view text, std::chrono::milliseconds timeout,
                          std::size_t from) {
  return wait_until(
      [&](const std::string& s) {
        return s.size() > from && s.find(text, from) != std::string::npos;
      },
      timeout);
}

void PtyProcess::resize(unsigned short rows, unsigned short cols) {
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  ::ioctl(master_, TIOCSWINSZ, &ws);
}

termios PtyProcess::settings() const {
  termios t{};
  ::tcgetattr(slave_, &t);
  return t;
}

void PtyProcess::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

std::optional<ExitStatus> PtyProcess::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = WIFEXITED(st) ? ExitStatus{true, WEXITSTATUS(st)} : ExitStatus{false, WTERMSIG(st)};
      while (pump(std::chrono::milliseconds(0))) {
      }
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    pump(
        std::chrono::milliseconds(5));  // keep the terminal drained so the child never blocks on it
  }
}

}  // namespace duplex::test
