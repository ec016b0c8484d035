// Test helpers for child processes and /proc: run a command, drive a long-running one, read
// fds/RSS.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace duplex::test {

using namespace std::chrono_literals;

/// A fresh directory under $TMPDIR, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// argv and environ (ours plus `extra_env`) as the NULL-terminated char* arrays exec wants.
/// Built before fork/spawn; the pointers stay valid while this object and `argv` live.
class ExecArrays {
 public:
  ExecArrays(std::vector<std::string>& argv, const std::vector<std::string>& extra_env);
  char** argv() { return argv_.data(); }
  char** envp() { return envp_.data(); }

 private:
  std::vector<std::string> env_;
  std::vector<char*> argv_, envp_;
};

/// The duplex binary under test ($DUPLEX_BIN, set by CMake).
std::string duplex_bin();
/// The seed's Python programs ($DUPLEX_SEED_DIR), or empty when that folder is absent.
std::string seed_dir();

struct ExitStatus {
  bool exited = false;  // false: killed by a signal
  int code = -1;        // exit code, or signal number
  bool operator==(const ExitStatus&) const = default;
};

/// A child process with pipes on its stdin, stdout and stderr. Killed (SIGKILL) and reaped at
/// destruction if still running.
class Process {
 public:
  Process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void write_stdin(std::string_view data);
  void close_stdin();
  /// Reads one line from stdout (without '\n'); nullopt on EOF or when `timeout` passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s);
  /// Reads stdout until EOF (or timeout), returning everything not yet read by read_line.
  std::string read_all_stdout(std::chrono::milliseconds timeout = 30s);
  std::string read_all_stderr(std::chrono::milliseconds timeout = 30s);
  /// Reads whatever stderr has within `timeout` (empty when nothing came); nullopt at EOF.
  std::optional<std::string> read_stderr_some(std::chrono::milliseconds timeout);
  void signal(int sig);
  /// Waits for exit; nullopt on timeout (the process keeps running).
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout = 30s);

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string out_buf_;
  bool reaped_ = false;
  ExitStatus status_;
};

struct RunResult {
  ExitStatus status;
  std::string out, err;
};

/// Runs a command to completion with `input` on its stdin. Fails the test on timeout.
RunResult run(std::vector<std::string> argv, std::string_view input = {},
              std::chrono::milliseconds timeout = 60s, std::vector<std::string> extra_env = {});

/// Number of open fds of a process (/proc/PID/fd).
int fd_count(pid_t pid);
/// Resident set size of a process in KiB (/proc/PID/status VmRSS).
long rss_kib(pid_t pid);
/// Threads of a process (/proc/PID/status Threads).
int thread_count(pid_t pid);
/// Pids whose parent is `pid` (scanning /proc/*/stat).
std::vector<pid_t> children_of(pid_t pid);
/// Repeats `pred` until it holds or `timeout` passes (for conditions no event announces,
/// e.g. another process's /proc entry). Returns the last value of pred.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s);

}  // namespace duplex::test

#include "support/process_inl.hpp"
