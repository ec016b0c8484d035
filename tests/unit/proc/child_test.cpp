// Tests for spawn and Child with real processes: stdio, status, exec errors, fds, session, pty.
//
// Synchronised by I/O, poll and waitid; sleeps only to re-check an observable condition (a process
// appearing in /proc) within a bounded time.
#include "duplex/proc/child.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "duplex/proc/pty.hpp"

namespace {

using namespace duplex::proc;
namespace fs = std::filesystem;

constexpr int kTimeoutMs = 10000;

SpawnOptions command(std::vector<std::string> argv) {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.env = minimal_environment();
  return o;
}

Child spawn_ok(const SpawnOptions& o) {
  auto r = spawn(o);
  if (!r) throw std::runtime_error("spawn " + o.argv.front() + ": " + r.error().message());
  return std::move(r).value();
}

/// Reads every fd to EOF (EIO from a pty master counts as EOF), all at once so that neither pipe
/// can fill up and stall the child. Fails the test if nothing arrives for kTimeoutMs.
std::vector<std::string> drain(std::vector<int> fds) {
  std::vector<std::string> out(fds.size());
  std::size_t open = fds.size();
  while (open > 0) {
    std::vector<pollfd> pfds;
    for (int fd : fds)
      pfds.push_back({fd, POLLIN, 0});  // fd -1 is ignored by poll
    int n = ::poll(pfds.data(), pfds.size(), kTimeoutMs);
    if (n <= 0) {
      ADD_FAILURE() << "no output and no EOF within " << kTimeoutMs << " ms";
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0 || pfds[i].revents == 0) continue;
      char buf[65536];
      ssize_t got = ::read(fds[i], buf, sizeof buf);
      if (got > 0) {
        out[i].append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno == EIO) {
        fds[i] = -1;
        --open;
      } else if (errno != EINTR && errno != EAGAIN) {
        ADD_FAILURE() << "read: " << std::strerror(errno);
        fds[i] = -1;
        --open;
      }
    }
  }
  return out;
}

/// Reads one line (up to and including '\n') byte by byte, so nothing after it is consumed.
std::string read_line(int fd) {
  std::string line;
  while (line.empty() || line.back() != '\n') {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kTimeoutMs) != 1) {
      ADD_FAILURE() << "no line within " << kTimeoutMs << " ms; got '" << line << "'";
      break;
    }
    char c;
    if (::read(fd, &c, 1) != 1) break;
    line.push_back(c);
  }
  return line;
}

/// Waits (bounded) for the pidfd to report the exit, then reaps.
ExitStatus wait_exit(Child& c) {
  pollfd p{c.pidfd(), POLLIN, 0};
  if (::poll(&p, 1, kTimeoutMs) != 1)
    ADD_FAILURE() << "child did not exit within " << kTimeoutMs << " ms";
  ExitStatus s;
  if (!c.try_reap(s)) ADD_FAILURE() << "pidfd readable but nothing to reap";
  return s;
}

struct Ran {
  std::string out, err;
  ExitStatus status;
};

Ran run(const SpawnOptions& o) {
  Child c = spawn_ok(o);
  c.take_stdin();  // EOF on its stdin
  auto io = drain({c.stdout_fd(), c.stderr_fd()});
  return {io[0], io[1], wait_exit(c)};
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Re-checks `done` every 10 ms for up to 2 s: for conditions only observable by looking.
bool eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  pid_t ppid = 0, pgrp = 0, session = 0;
  int tty_nr = 0;
};

std::optional<ProcStat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // "pid (comm) state ppid pgrp session tty_nr ...": comm may contain spaces and parentheses.
  auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcStat s;
  s.pid = pid;
  s.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 2));
  rest >> s.state >> s.ppid >> s.pgrp >> s.session >> s.tty_nr;
  return s;
}

/// Processes of group `pgid` that are still alive (zombies are dead: only their parent's reap is
/// missing, and orphans are reaped by pid 1, which in a container may never do it).
std::vector<ProcStat> live_in_group(pid_t pgid) {
  std::vector<ProcStat> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    auto s = read_stat(static_cast<pid_t>(std::stoi(name)));
    if (s && s->pgrp == pgid && s->state != 'Z' && s->state != 'X') out.push_back(*s);
  }
  return out;
}

std::size_t count_comm(const std::vector<ProcStat>& ps, const std::string& comm) {
  return static_cast<std::size_t>(
      std::count_if(ps.begin(), ps.end(), [&](const ProcStat& p) { return p.comm == comm; }));
}

std::set<std::string> open_fds(pid_t pid) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    out.insert(e.path().filename());
  return out;
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) {
      const auto value = line.find_first_not_of(" \t", key.size() + 1);
      return value == std::string::npos ? std::string() : line.substr(value);  // "Groups:\t"
    }
  return {};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "duplex-proc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = fs::canonical(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path file(const std::string& name, const std::string& text, fs::perms mode) const {
    fs::path p = path_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, mode);
    return p;
  }

 private:
  fs::path path_;
};

constexpr auto kExecutable = fs::perms::owner_all;
constexpr auto kNotExecutable = fs::perms::owner_read | fs::perms::owner_write;

// ---- output and exit statuses ----

TEST(Child, StdoutAndStderrArriveSeparately) {
  Ran r = run(command({"sh", "-c", "echo out; echo err >&2"}));
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status, (ExitStatus{false, 0, false}));
}

TEST(Child, ReportsExitCode) {
  Ran r = run(command({"sh", "-c", "exit 7"}));
  EXPECT_FALSE(r.status.signaled);
  EXPECT_EQ(r.status.code, 7);
  EXPECT_EQ(r.status.shell_code(), 7);
}

TEST(Child, ReportsDeathBySignalAs128PlusSignal) {
  Child c = spawn_ok(command({"sleep", "1000"}));
  EXPECT_TRUE(c.running());
  ExitStatus s;
  EXPECT_FALSE(c.try_reap(s));
  c.signal_group(SIGTERM);
  s = wait_exit(c);
  EXPECT_TRUE(s.signaled);
  EXPECT_EQ(s.code, SIGTERM);
  EXPECT_FALSE(s.core_dumped);
  EXPECT_EQ(s.shell_code(), 143);
  EXPECT_FALSE(c.running());
}

TEST(Child, WaitBlocksUntilExitAndIsIdempotent) {
  Child c = spawn_ok(command({"sh", "-c", "read x; exit 3"}));
  c.take_stdin();
  EXPECT_EQ(c.wait().code, 3);
  EXPECT_EQ(c.wait().code, 3);
  ExitStatus s;
  EXPECT_TRUE(c.try_reap(s));
  EXPECT_EQ(s.code, 3);
}

// Whoever holds the pidfd may make it O_NONBLOCK (Asio does to anything it waits on): waitid on
// it then says EAGAIN while the child runs. That is not "reaped elsewhere": the child is still
// ours, running, and must be reaped for real (no zombie, the real status).
TEST(Child, ANonBlockingPidfdStillWaitsAndReaps) {
  Child c = spawn_ok(command({"sleep", "1000"}));
  if (c.pidfd() < 0) GTEST_SKIP() << "no pidfd on this kernel";
  ASSERT_EQ(::fcntl(c.pidfd(), F_SETFL, ::fcntl(c.pidfd(), F_GETFL) | O_NONBLOCK), 0);
  const pid_t pid = c.pid();
  ExitStatus s;
  EXPECT_FALSE(c.try_reap(s)) << "taken for reaped while it runs";
  EXPECT_TRUE(c.running());
  c.signal_group(SIGKILL);
  s = c.wait();
  EXPECT_TRUE(s.signaled);
  EXPECT_EQ(s.code, SIGKILL);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid))) << "left a zombie";
}

// ---- exec errors ----

TEST(Child, CommandNotFoundMapsTo127) {
  for (std::string name : {"duplex-no-such-command", "/nonexistent/duplex-prog"}) {
    auto r = spawn(command({name}));
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error(), std::error_code(ENOENT, std::system_category())) << name;
    EXPECT_EQ(exit_code_for_spawn_error(r.error()), 127) << name;
  }
  // A PATH whose last entry is a file (ENOTDIR from execve) is still "not found".
  SpawnOptions o = command({"duplex-no-such-command"});
  o.env = {"PATH=/nonexistent:/etc/passwd"};
  auto r = spawn(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(exit_code_for_spawn_error(r.error()), 127) << r.error().message();
}

TEST(Child, NonExecutableFileMapsTo126) {
  TempDir dir;
  fs::path plain = dir.file("plain", "echo hi\n", kNotExecutable);
  auto r = spawn(command({plain.string()}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::error_code(EACCES, std::system_category()));
  EXPECT_EQ(exit_code_for_spawn_error(r.error()), 126);

  auto d = spawn(command({dir.path().string()}));  // a directory
  ASSERT_FALSE(d);
  EXPECT_EQ(exit_code_for_spawn_error(d.error()), 126);

  // Found only as a non-executable file in PATH: EACCES, like execvp.
  SpawnOptions o = command({"plain"});
  o.env = {"PATH=" + dir.path().string()};
  auto p = spawn(o);
  ASSERT_FALSE(p);
  EXPECT_EQ(exit_code_for_spawn_error(p.error()), 126);
}

TEST(Child, FileWithoutInterpreterHeaderMapsTo126) {
  TempDir dir;
  fs::path garbage = dir.file("garbage", std::string("\x01\x02\x03 not a program\n"), kExecutable);
  auto r = spawn(command({garbage.string()}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::error_code(ENOEXEC, std::system_category()));
  EXPECT_EQ(exit_code_for_spawn_error(r.error()), 126);
}

TEST(Child, RejectsEmptyArgvAndEmbeddedNul) {
  EXPECT_EQ(spawn(SpawnOptions{}).error(), std::errc::invalid_argument);
  EXPECT_EQ(spawn(command({"echo", std::string("a\0b", 3)})).error(), std::errc::invalid_argument);
  SpawnOptions o = command({"true"});
  o.env.push_back(std::string("X=\0", 3));
  EXPECT_EQ(spawn(o).error(), std::errc::invalid_argument);
}

TEST(Child, SpawnErrorExitCodes) {
  EXPECT_EQ(exit_code_for_spawn_error({ENOENT, std::system_category()}), 127);
  EXPECT_EQ(exit_code_for_spawn_error({EACCES, std::system_category()}), 126);
  EXPECT_EQ(exit_code_for_spawn_error({ENOENT, chdir_error_category()}), 126);
  EXPECT_EQ(exit_code_for_spawn_error({EPERM, child_setup_error_category()}), 126);
}

// ---- argv, environment, PATH, cwd ----

TEST(Child, ArgvIsPassedExactly) {
  Ran r = run(command({"printf", "%s|", "a b", "$HOME", ";x", "", "*"}));
  EXPECT_EQ(r.out, "a b|$HOME|;x||*|");
  EXPECT_EQ(r.status.code, 0);
}

TEST(Child, EnvironmentIsExactlyWhatWasGiven) {
  SpawnOptions o = command({"/usr/bin/env"});
  o.env = {"A=1", "B=two words"};
  Ran r = run(o);
  EXPECT_EQ(r.out, "A=1\nB=two words\n");
}

TEST(Child, ProgramIsSearchedInTheChildsPath) {
  TempDir first, second;
  first.file("duplex-test-cmd", "#!/bin/sh\necho first\n", kNotExecutable);  // skipped: EACCES
  second.file("duplex-test-cmd", "#!/bin/sh\necho second \"$0\"\n", kExecutable);
  SpawnOptions o = command({"duplex-test-cmd"});
  o.env = {"PATH=/nonexistent:" + first.path().string() + ":" + second.path().string()};
  Ran r = run(o);
  EXPECT_EQ(r.out, "second " + (second.path() / "duplex-test-cmd").string() + "\n");
  EXPECT_EQ(r.status.code, 0);
}

TEST(Child, CwdIsApplied) {
  TempDir dir;
  SpawnOptions o = command({"pwd", "-P"});
  o.cwd = dir.path().string();
  EXPECT_EQ(run(o).out, dir.path().string() + "\n");
}

TEST(Child, BadCwdIsReported) {
  SpawnOptions o = command({"true"});
  o.cwd = "/nonexistent/duplex-dir";
  auto r = spawn(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().category(), chdir_error_category());
  EXPECT_EQ(r.error().value(), ENOENT);
  EXPECT_EQ(r.error(), std::errc::no_such_file_or_directory);
  EXPECT_NE(r.error().message().find("working directory"), std::string::npos);
}

TEST(Child, MinimalEnvironmentIsBuiltNotInherited) {
  const char* lang = std::getenv("LANG");
  const std::optional<std::string> old_lang =
      lang ? std::optional<std::string>(lang) : std::nullopt;
  ::setenv("DUPLEX_TEST_SECRET", "leak", 1);
  ::setenv("LANG", "C.UTF-8", 1);
  auto env = minimal_environment();
  auto has = [&](const std::string& prefix) {
    return std::any_of(env.begin(), env.end(),
                       [&](const std::string& kv) { return kv.rfind(prefix, 0) == 0; });
  };
  EXPECT_EQ(env.front(), "PATH=/usr/local/bin:/usr/bin:/bin");
  EXPECT_TRUE(has("HOME="));
  EXPECT_TRUE(has("USER="));
  EXPECT_TRUE(has("LOGNAME="));
  EXPECT_TRUE(has("SHELL=/"));
  EXPECT_TRUE(has("LANG=C.UTF-8"));
  EXPECT_FALSE(has("DUPLEX_TEST_SECRET="));
  EXPECT_FALSE(has("TERM="));
  auto with_term = minimal_environment("xterm-256color");
  EXPECT_EQ(std::count(with_term.begin(), with_term.end(), "TERM=xterm-256color"), 1);
  ::unsetenv("DUPLEX_TEST_SECRET");
  if (old_lang) {
    ::setenv("LANG", old_lang->c_str(), 1);
  } else {
    ::unsetenv("LANG");
  }
}

// ---- stdin ----

TEST(Child, StdinRoundTripsBytesAndEof) {
  std::string data(1 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& ch : data)
    ch = static_cast<char>(rng());
  Child c = spawn_ok(command({"cat"}));
  // A writer thread: cat's output pipe fills while we write, so read and write at once.
  std::thread writer([fd = c.take_stdin(), &data]() mutable {
    EXPECT_TRUE(write_all(fd.get(), data));
  });  // fd closes when the thread ends: cat sees EOF
  auto io = drain({c.stdout_fd(), c.stderr_fd()});
  writer.join();
  EXPECT_TRUE(io[0] == data) << "got " << io[0].size() << " bytes of " << data.size();
  EXPECT_EQ(io[1], "");
  EXPECT_EQ(wait_exit(c).code, 0);
}

// ---- process discipline: fds, session, signals ----

TEST(Child, HasOnlyStdioOpen) {
  // Not close-on-exec, like the sockets Asio opens: the child must still not get them.
  duplex::proc::UniqueFd low(::open("/dev/null", O_RDONLY));
  duplex::proc::UniqueFd high(::dup2(low.get(), 200));
  ASSERT_TRUE(low);
  ASSERT_TRUE(high);
  // The shell prints "ready" and then blocks in read: by then it has no file open for itself.
  Child c = spawn_ok(command({"sh", "-c", "echo ready; read x"}));
  EXPECT_EQ(read_line(c.stdout_fd()), "ready\n");
  EXPECT_EQ(open_fds(c.pid()), (std::set<std::string>{"0", "1", "2"}));
  ASSERT_TRUE(write_all(c.stdin_fd(), "\n"));
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(Child, LeadsItsOwnSessionAndProcessGroup) {
  Child c = spawn_ok(command({"cat"}));
  EXPECT_EQ(::getsid(c.pid()), c.pid());
  EXPECT_EQ(::getpgid(c.pid()), c.pid());
  EXPECT_NE(::getsid(c.pid()), ::getsid(0));
  auto st = read_stat(c.pid());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pgrp, c.pid());
  EXPECT_EQ(st->session, c.pid());
  EXPECT_EQ(st->tty_nr, 0);  // pipes: no controlling terminal
  c.take_stdin();
  EXPECT_EQ(wait_exit(c).code, 0);
}

/// Ignores SIGPIPE and SIGUSR2 and blocks SIGUSR1 in this thread for the scope, like a server.
class ServerLikeSignals {
 public:
  ServerLikeSignals() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old_pipe_);
    ::sigaction(SIGUSR2, &ign, &old_usr2_);
    sigset_t block;
    ::sigemptyset(&block);
    ::sigaddset(&block, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
  }
  ~ServerLikeSignals() {
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    ::sigaction(SIGUSR2, &old_usr2_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  struct sigaction old_pipe_ {
  }, old_usr2_{};
  sigset_t old_mask_{};
};

TEST(Child, SignalsAreDefaultAndUnblocked) {
  ServerLikeSignals server;
  ASSERT_NE(status_field(::getpid(), "SigIgn"), "0000000000000000");
  Child c = spawn_ok(command({"cat"}));
  // spawn returns after exec, and cat changes no signal: this is what exec gave it.
  EXPECT_EQ(status_field(c.pid(), "SigIgn"), "0000000000000000");
  EXPECT_EQ(status_field(c.pid(), "SigBlk"), "0000000000000000");
  c.take_stdin();
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(Child, PipelineEndsQuietlyWithDefaultSigpipe) {
  ServerLikeSignals server;
  // With SIGPIPE inherited as ignored, yes would get EPIPE and complain on stderr.
  Ran r = run(command({"sh", "-c", "yes | head -n 1"}));
  EXPECT_EQ(r.out, "y\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.status.code, 0);
}

// ---- group kill and reaping ----

TEST(Child, SignalGroupKillsGrandchildren) {
  Child c = spawn_ok(command({"sh", "-c", "sleep 1000 & sleep 1001; wait"}));
  const pid_t pgid = c.pid();
  ASSERT_TRUE(eventually([&] { return count_comm(live_in_group(pgid), "sleep") == 2; }))
      << "both sleeps should start in the child's group";
  c.signal_group(SIGKILL);
  ExitStatus s = wait_exit(c);
  EXPECT_TRUE(s.signaled);
  EXPECT_EQ(s.code, SIGKILL);
  EXPECT_TRUE(eventually([&] { return live_in_group(pgid).empty(); }))
      << live_in_group(pgid).size() << " processes of the group still alive";
}

TEST(Child, DestructorKillsAndReapsARunningGroup) {
  pid_t pid = 0;
  {
    Child c = spawn_ok(command({"sh", "-c", "sleep 1000 & sleep 1001; wait"}));
    pid = c.pid();
    ASSERT_TRUE(eventually([&] { return count_comm(live_in_group(pid), "sleep") == 2; }));
  }
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)))
      << "the leader must be reaped, not a zombie";
  EXPECT_TRUE(eventually([&] { return live_in_group(pid).empty(); }));
}

TEST(Child, PeekKeepsTheZombieAndDestructorKillsLeftovers) {
  // The leader exits at once; a background sleep stays in its group (and holds stdout open).
  Child c = spawn_ok(command({"sh", "-c", "sleep 1000 & echo started"}));
  EXPECT_EQ(read_line(c.stdout_fd()), "started\n");
  pollfd p{c.pidfd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, kTimeoutMs), 1);
  ExitStatus s;
  ASSERT_TRUE(c.peek_exit(s));
  EXPECT_EQ(s.code, 0);
  EXPECT_FALSE(c.running());
  const pid_t pid = c.pid();
  auto st = read_stat(pid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'Z') << "peek_exit must not reap";
  ASSERT_TRUE(eventually([&] { return count_comm(live_in_group(pid), "sleep") == 1; }))
      << "the background sleep should be running in the group";

  { Child gone = std::move(c); }  // the server's "command finished, session over"
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_TRUE(eventually([&] { return live_in_group(pid).empty(); }));
}

TEST(Child, MoveTransfersTheChildAndAssignmentKillsTheOldOne) {
  Child a = spawn_ok(command({"sleep", "1000"}));
  const pid_t first = a.pid();
  Child b = std::move(a);
  EXPECT_EQ(a.pid(), -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_FALSE(a.running());
  EXPECT_EQ(b.pid(), first);
  b = spawn_ok(command({"sleep", "1001"}));
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(first)));
  EXPECT_TRUE(b.running());
}

// ---- pty ----

TEST(Child, PtyGivesWindowSizeAndTerminal) {
  SpawnOptions o = command({"sh", "-c", "stty size; tty"});
  o.stdio = StdioMode::pty;
  o.rows = 24;
  o.cols = 80;
  Child c = spawn_ok(o);
  EXPECT_EQ(c.stdin_fd(), -1);
  EXPECT_EQ(c.stdout_fd(), -1);
  ASSERT_GE(c.pty_fd(), 0);
  std::string out = drain({c.pty_fd()})[0];
  EXPECT_NE(out.find("24 80\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << out;
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(Child, PtyIsTheControllingTerminal) {
  // /dev/tty opens only for a process with a controlling terminal. The read keeps the shell alive
  // while we look: an exited process no longer has a terminal in /proc.
  SpawnOptions o = command({"sh", "-c", "echo via-tty > /dev/tty && echo ok; read x"});
  o.stdio = StdioMode::pty;
  Child c = spawn_ok(o);
  EXPECT_EQ(read_line(c.pty_fd()), "via-tty\r\n");
  EXPECT_EQ(read_line(c.pty_fd()), "ok\r\n");
  auto st = read_stat(c.pid());
  ASSERT_TRUE(st);
  EXPECT_NE(st->tty_nr, 0);
  ASSERT_TRUE(write_all(c.pty_fd(), "\n"));
  drain({c.pty_fd()});
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(Child, PtyWindowSizeChangeIsSeen) {
  SpawnOptions o = command({"sh", "-c", "read x; stty size"});
  o.stdio = StdioMode::pty;
  o.rows = 24;
  o.cols = 80;
  Child c = spawn_ok(o);
  ASSERT_FALSE(set_window_size(c.pty_fd(), 50, 132));
  ASSERT_TRUE(write_all(c.pty_fd(), "go\n"));
  std::string out = drain({c.pty_fd()})[0];
  EXPECT_NE(out.find("50 132\r\n"), std::string::npos) << out;
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(Child, PtyCtrlCInterruptsTheForegroundCommand) {
  SpawnOptions o = command({"sleep", "1000"});
  o.stdio = StdioMode::pty;
  Child c = spawn_ok(o);  // exec done: sleep leads the tty's foreground group
  ASSERT_TRUE(write_all(c.pty_fd(), "\x03"));
  ExitStatus s = wait_exit(c);
  EXPECT_TRUE(s.signaled);
  EXPECT_EQ(s.code, SIGINT);
  EXPECT_EQ(s.shell_code(), 130);
}

// ---- credentials (--user) ----

/// The `nobody` account; the tests that switch to it need root (GTEST_SKIP otherwise).
std::optional<Account> nobody() {
  passwd* pw = ::getpwnam("nobody");  // single-threaded here
  if (pw == nullptr) return std::nullopt;
  return lookup_account(pw->pw_uid);
}

#define SKIP_UNLESS_ROOT_AND_NOBODY(who)                                          \
  if (::geteuid() != 0) GTEST_SKIP() << "switching a child's account needs root"; \
  const auto who = nobody();                                                      \
  if (!who) GTEST_SKIP() << "no account named nobody"

SpawnOptions as(const Account& a, std::vector<std::string> argv) {
  SpawnOptions o = command(std::move(argv));
  o.env = account_environment(a);
  o.credentials = Credentials{a.uid, a.gid};
  o.cwd = "/";
  return o;
}

TEST(ChildCredentials, RunsAsTheAccountWithNoSupplementaryGroups) {
  SKIP_UNLESS_ROOT_AND_NOBODY(who);
  // Root has groups of its own here (at least 0): the child must keep none of them.
  const auto r = run(as(*who, {"sh", "-c", "id -u; id -g; id -G"}));
  EXPECT_EQ(r.status.code, 0) << r.err;
  const auto u = std::to_string(who->uid), g = std::to_string(who->gid);
  EXPECT_EQ(r.out, u + "\n" + g + "\n" + g + "\n");
}

TEST(ChildCredentials, AllIdsAreSwitchedAndNoCapabilityIsLeft) {
  SKIP_UNLESS_ROOT_AND_NOBODY(who);
  // The read keeps it alive while /proc is read from outside.
  SpawnOptions o = as(*who, {"sh", "-c", "echo ready; read x"});
  Child c = spawn_ok(o);
  EXPECT_EQ(read_line(c.stdout_fd()), "ready\n");
  const auto u = std::to_string(who->uid), g = std::to_string(who->gid);
  // real, effective, saved, filesystem
  EXPECT_EQ(status_field(c.pid(), "Uid"), u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(status_field(c.pid(), "Gid"), g + "\t" + g + "\t" + g + "\t" + g);
  EXPECT_EQ(status_field(c.pid(), "Groups"), "");
  EXPECT_EQ(status_field(c.pid(), "CapEff"), "0000000000000000");
  EXPECT_EQ(status_field(c.pid(), "CapPrm"), "0000000000000000");
  ASSERT_TRUE(write_all(c.stdin_fd(), "\n"));
  c.take_stdin();
  drain({c.stdout_fd(), c.stderr_fd()});
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(ChildCredentials, OurOwnThreadsKeepTheirIds) {
  SKIP_UNLESS_ROOT_AND_NOBODY(who);
  // glibc's setuid() family changes every thread of the process it runs in, walking a thread
  // list that a vfork child shares with us: the child must switch alone (raw system calls).
  // A thread of ours waits while children switch; it and the main thread stay root.
  std::atomic<bool> done{false};
  std::thread idle([&] {
    while (!done.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(run(as(*who, {"true"})).status.code, 0);
  std::vector<std::string> ids;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0) ids.push_back(line);
  }
  done = true;
  idle.join();
  ASSERT_GE(ids.size(), 4u);  // two threads at least, Uid and Gid each
  for (const auto& line : ids)
    EXPECT_EQ(line.substr(4), "\t0\t0\t0\t0") << line;
  EXPECT_EQ(::geteuid(), 0u);
}

TEST(ChildCredentials, WorkingDirectoryIsEnteredWithTheAccountsRights) {
  SKIP_UNLESS_ROOT_AND_NOBODY(who);
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all);  // root's alone: nobody cannot enter
  SpawnOptions o = as(*who, {"pwd"});
  o.cwd = dir.path().string();
  auto r = spawn(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().category(), chdir_error_category());
  EXPECT_EQ(r.error(), std::errc::permission_denied);
}

TEST(ChildCredentials, AHomeThatCannotBeEnteredFallsBackToTheRoot) {
  SpawnOptions o = command({"pwd"});
  o.cwd = "/nonexistent/duplex-home";
  o.cwd_fallback = "/";
  const auto r = run(o);
  EXPECT_EQ(r.status.code, 0);
  EXPECT_EQ(r.out, "/\n");
}

TEST(ChildCredentials, PtyBelongsToTheAccount) {
  SKIP_UNLESS_ROOT_AND_NOBODY(who);
  SpawnOptions o = as(*who, {"sh", "-c", "stat -c '%u %g %a' \"$(tty)\""});
  o.stdio = StdioMode::pty;
  Child c = spawn_ok(o);
  const std::string out = drain({c.pty_fd()})[0];
  // sshd's rule: group tty with write for write(1), else the account's group and no access.
  const group* tty = ::getgrnam("tty");
  EXPECT_EQ(out,
            std::to_string(who->uid) + " " +
                (tty ? std::to_string(tty->gr_gid) + " 620" : std::to_string(who->gid) + " 600") +
                "\r\n");
  EXPECT_EQ(wait_exit(c).code, 0);
}

TEST(ChildCredentials, AFailedSwitchIsReportedAndNothingRuns) {
  // Without root the switch fails at its first step: the error says so and the program does
  // not run. As root, a child of ours that gave up root first shows the same.
  TempDir dir;
  const auto marker = dir.path() / "ran";
  auto attempt = [&] {
    SpawnOptions o = command({"touch", marker.string()});
    o.credentials = Credentials{0, 0};
    return spawn(o);
  };
  if (::geteuid() != 0) {
    auto r = attempt();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().category(), credentials_error_category());
    EXPECT_EQ(r.error(), std::errc::operation_not_permitted);
    EXPECT_NE(r.error().message().find("--user"), std::string::npos) << r.error().message();
    EXPECT_EQ(exit_code_for_spawn_error(r.error()), 126);
  } else {
    const auto who = nobody();
    if (!who) GTEST_SKIP() << "no account named nobody";
    fs::permissions(dir.path(), fs::perms::all);  // so that only the switch can stop the touch
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setresgid(who->gid, who->gid, who->gid) != 0 ||
          ::setresuid(who->uid, who->uid, who->uid) != 0)
        ::_exit(10);
      auto r = attempt();
      if (r) ::_exit(11);
      if (r.error().category() != credentials_error_category()) ::_exit(12);
      ::_exit(r.error() == std::errc::operation_not_permitted ? 0 : 13);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setresuid, 11: spawned, 12: category, 13: errno";
  }
  EXPECT_FALSE(fs::exists(marker));
}

TEST(ChildEnvironment, AccountEnvironmentIsTheAccountsAndLangDefaults) {
  const char* lang = std::getenv("LANG");
  const std::optional<std::string> old_lang =
      lang ? std::optional<std::string>(lang) : std::nullopt;
  ::unsetenv("LANG");
  ::setenv("LC_ALL", "de_DE.UTF-8", 1);
  Account a{"alice", 1234, 1234, "/home/alice", "/bin/zsh"};
  const auto env = account_environment(a);
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/alice",
                                           "USER=alice", "LOGNAME=alice", "SHELL=/bin/zsh",
                                           "LANG=C.UTF-8"}));
  ::setenv("LANG", "fr_FR.UTF-8", 1);
  const auto with_term = account_environment(a, "vt100");
  EXPECT_EQ(with_term.back(), "TERM=vt100");
  EXPECT_EQ(std::count(with_term.begin(), with_term.end(), "LANG=fr_FR.UTF-8"), 1);
  ::unsetenv("LC_ALL");
  if (old_lang)
    ::setenv("LANG", old_lang->c_str(), 1);
  else
    ::unsetenv("LANG");
}

// ---- no leaks ----

std::size_t fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

TEST(Child, ManySpawnsLeakNoFdsAndLeaveNoChildren) {
  const std::size_t before = fd_count();
  for (int i = 0; i < 200; ++i) {
    switch (i % 5) {
      case 0:  // exec failure
        EXPECT_FALSE(spawn(command({"duplex-no-such-command"})));
        break;
      case 1:  // normal run to completion
        EXPECT_EQ(run(command({"true"})).status.code, 0);
        break;
      case 2: {  // destroyed while running: killed and reaped
        Child c = spawn_ok(command({"sleep", "1000"}));
        break;
      }
      case 3: {  // pty, fds left for the destructor
        SpawnOptions o = command({"true"});
        o.stdio = StdioMode::pty;
        Child c = spawn_ok(o);
        c.wait();
        break;
      }
      case 4: {  // bad cwd
        SpawnOptions o = command({"true"});
        o.cwd = "/nonexistent";
        EXPECT_FALSE(spawn(o));
        break;
      }
    }
  }
  EXPECT_EQ(fd_count(), before);
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child of ours is left over";
  EXPECT_EQ(errno, ECHILD);
}

TEST(Child, SpawnIsSafeFromManyThreads) {
  constexpr int kThreads = 4, kEach = 25;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &good] {
      for (int i = 0; i < kEach; ++i) {
        std::string word = std::to_string(t) + "-" + std::to_string(i);
        auto r = spawn(command({"echo", word}));
        if (!r) continue;
        r->take_stdin();
        std::string out;
        char buf[256];
        for (ssize_t n; (n = ::read(r->stdout_fd(), buf, sizeof buf)) > 0;)
          out.append(buf, static_cast<std::size_t>(n));
        if (out == word + "\n" && r->wait().code == 0) ++good;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(good.load(), kThreads * kEach);
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

}  // namespace
