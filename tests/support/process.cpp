// Child-process and /proc helpers for tests.
#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

extern char** environ;

namespace duplex::test {
namespace {

void set_cloexec_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
}

// Reads what is available from fd into out within the deadline; false on EOF.
bool read_some(int fd, std::string& out, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  pollfd p{fd, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
  if (r <= 0) return true;  // timeout: caller checks the deadline
  char buf[65536];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  if (n <= 0) return false;
  out.append(buf, static_cast<std::size_t>(n));
  return true;
}

}  // namespace

ExecArrays::ExecArrays(std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
  // An extra NAME=VALUE replaces the inherited NAME (getenv takes the first match, so appending
  // it after the inherited one would silently not override it).
  auto named = [&](std::string_view entry) {
    const auto name = entry.substr(0, entry.find('=') + 1);  // "NAME="
    return std::any_of(extra_env.begin(), extra_env.end(),
                       [&](const std::string& x) { return x.starts_with(name); });
  };
  for (char** e = environ; *e; ++e)
    if (!named(*e)) env_.emplace_back(*e);
  env_.insert(env_.end(), extra_env.begin(), extra_env.end());
  for (auto& a : argv)
    argv_.push_back(a.data());
  argv_.push_back(nullptr);
  for (auto& e : env_)
    envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/duplex-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string duplex_bin() {
  const char* b = std::getenv("DUPLEX_BIN");
  return b ? b : "duplex";
}

std::string seed_dir() {
  const char* d = std::getenv("DUPLEX_SEED_DIR");
  if (!d || !std::filesystem::exists(std::filesystem::path(d) / "server.py")) return {};
  return d;
}

Process::Process(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  // A child that exits before reading its stdin must give us EPIPE, not kill the test runner.
  static const bool sigpipe_ignored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  int in[2], out[2], err[2];
  set_cloexec_pipe(in);
  set_cloexec_pipe(out);
  set_cloexec_pipe(err);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so that a test can signal a client and everything it started.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  ExecArrays arrays(argv, extra_env);
  const int rc = ::posix_spawnp(&pid_, arrays.argv()[0], &fa, &attr, arrays.argv(), arrays.envp());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  for (int fd : {in_, out_, err_})
    if (fd >= 0) ::close(fd);
}

void Process::write_stdin(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(in_, data.data(), data.size());
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      throw std::runtime_error("write to child stdin failed");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Process::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    if (!read_some(out_, out_buf_, deadline)) return std::nullopt;
  }
}

std::string Process::read_all_stdout(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && read_some(out_, out_buf_, deadline)) {
  }
  return std::exchange(out_buf_, {});
}

std::string Process::read_all_stderr(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string s;
  while (std::chrono::steady_clock::now() < deadline && read_some(err_, s, deadline)) {
  }
  return s;
}

std::optional<std::string> Process::read_stderr_some(std::chrono::milliseconds timeout) {
  std::string s;
  if (!read_some(err_, s, std::chrono::steady_clock::now() + timeout)) return std::nullopt;
  return s;
}

void Process::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

std::optional<ExitStatus> Process::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = WIFEXITED(st) ? ExitStatus{true, WEXITSTATUS(st)} : ExitStatus{false, WTERMSIG(st)};
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

RunResult run(std::vector<std::string> argv, std::string_view input,
              std::chrono::milliseconds timeout, std::vector<std::string> extra_env) {
  Process p(std::move(argv), std::move(extra_env));
  RunResult r;
  // Feed stdin and drain stdout/stderr together so that neither side blocks on a full pipe.
  std::thread feeder([&p, input] {
    try {
      p.write_stdin(input);
    } catch (...) {
    }
    p.close_stdin();
  });
  std::thread errs([&] { r.err = p.read_all_stderr(timeout); });
  r.out = p.read_all_stdout(timeout);
  errs.join();
  feeder.join();
  auto st = p.wait(timeout);
  if (!st) {
    ADD_FAILURE() << "command timed out";
    return r;
  }
  r.status = *st;
  return r;
}

int fd_count(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

static long status_field(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0)
      return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
  return -1;
}

long rss_kib(pid_t pid) {
  return status_field(pid, "VmRSS");
}
int thread_count(pid_t pid) {
  return static_cast<int>(status_field(pid, "Threads"));
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string stat;
    std::getline(f, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == pid) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace duplex::test
