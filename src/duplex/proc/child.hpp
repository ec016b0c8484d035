// Child processes: spawn in a new session, own pidfd and stdio, kill the group, reap. No Asio.
// The only place that forks; the server watches pidfd() and the fds itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "duplex/core/result.hpp"
#include "duplex/proc/unique_fd.hpp"

namespace duplex::proc {

/// How the child's stdin/stdout/stderr are connected.
enum class StdioMode {
  pipes,  // three pipes: the parent keeps stdin_fd() (write), stdout_fd() and stderr_fd() (read)
  pty,    // one pseudo-terminal, the child's controlling tty on 0/1/2; the parent keeps pty_fd()
};

/// The account a child switches to before exec, when the server runs as root (`--user`).
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct SpawnOptions {
  /// The exact argv; never re-split by a shell. argv[0] names the program: with a '/' it is a
  /// path, otherwise it is searched in the PATH of `env` like execvp (default "/bin:/usr/bin").
  std::vector<std::string> argv;
  /// The child's complete environment, "KEY=VALUE" each; nothing of ours is inherited.
  /// Start from minimal_environment().
  std::vector<std::string> env;
  /// Working directory; empty keeps ours. A failed chdir fails the spawn (chdir_error_category()),
  /// unless `cwd_fallback` is set: then that one (sshd starts in "/" when the home directory
  /// cannot be entered: nobody's is /nonexistent). Entered after the switch of account, so with
  /// its permissions.
  std::string cwd;
  std::string cwd_fallback;
  /// Set: the child drops every supplementary group, then takes this gid, then this uid (all
  /// three of real, effective and saved), and checks that it holds exactly these and can no
  /// longer become root, before anything else of the command runs; a pty's slave is handed to
  /// the uid (mode 0620, as sshd does). Needs root. Unset: the child keeps our credentials.
  std::optional<Credentials> credentials;
  StdioMode stdio = StdioMode::pipes;
  /// Initial window size when stdio == pty (0 = leave unset).
  std::uint16_t rows = 0, cols = 0;
};

/// How a child ended, from waitid(2).
struct ExitStatus {
  bool signaled = false;  // killed by signal `code`
  int code = 0;           // exit status (0-255), or the signal number when signaled
  bool core_dumped = false;
  /// The status as a shell reports it in $?: the exit status, or 128 + signal number.
  int shell_code() const noexcept { return signaled ? 128 + code : code; }
  bool operator==(const ExitStatus&) const = default;
};

/// A running (or exited, not yet reaped) child that we spawned, and the parent's ends of its stdio.
///
/// The child leads a new session (setsid), so its process group id is its pid and
/// signal_group() reaches every descendant that stays in the group. A descendant that calls
/// setsid() or setpgid() itself leaves the group and escapes, as it would under ssh.
///
/// The zombie of the leader pins the group id: while the leader is not reaped, the kernel cannot
/// reuse its pid, so kill(-pid) cannot hit a stranger. Hence the intended order for a server:
/// watch pidfd(), learn the status with peek_exit(), drain the output, then destroy the Child,
/// which kills whatever is left of the group and reaps the leader. After try_reap()/wait()
/// the group is no longer pinned and signal_group() does nothing.
///
/// ~Child(): if not yet reaped, SIGKILL to the whole group, then a blocking reap of the leader.
/// Requires that SIGCHLD is not SIG_IGN and that nobody else reaps our children (waitpid(-1)).
/// Move-only; not thread-safe (one owner, one thread at a time).
class Child {
 public:
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  ~Child();

  pid_t pid() const noexcept { return pid_; }
  /// A pidfd (close-on-exec) that polls readable once the child has exited; -1 on kernels
  /// without pidfd_open (< 5.3). Owned by the Child: do not close it.
  int pidfd() const noexcept { return pidfd_.get(); }

  /// The parent's ends (-1 when not in this mode or taken). Blocking; see set_nonblocking().
  int stdin_fd() const noexcept { return stdin_.get(); }
  int stdout_fd() const noexcept { return stdout_.get(); }
  int stderr_fd() const noexcept { return stderr_.get(); }
  int pty_fd() const noexcept { return pty_.get(); }
  /// Hand an fd over to the caller (e.g. into an asio::posix::stream_descriptor). Taking stdin and
  /// dropping it is how the child gets EOF on its stdin.
  UniqueFd take_stdin() noexcept { return std::move(stdin_); }
  UniqueFd take_stdout() noexcept { return std::move(stdout_); }
  UniqueFd take_stderr() noexcept { return std::move(stderr_); }
  UniqueFd take_pty() noexcept { return std::move(pty_); }

  /// Non-blocking: true and `out` filled if the leader has exited, without reaping it (WNOWAIT),
  /// so the group id stays pinned and signal_group() stays safe.
  bool peek_exit(ExitStatus& out) noexcept;
  /// Non-blocking: true and `out` filled if the leader has exited; reaps it (idempotent).
  /// If someone else reaped our child the status is lost and reported as exit code 255.
  bool try_reap(ExitStatus& out) noexcept;
  /// Blocks until the leader exits, reaps it and returns its status.
  ExitStatus wait() noexcept;
  /// True until the leader has exited (a non-blocking check).
  bool running() noexcept;
  /// kill(-pid, sig): the whole process group. No-op once the leader is reaped; ESRCH ignored.
  void signal_group(int sig) noexcept;

 private:
  friend Result<Child> spawn(const SpawnOptions& opts) noexcept;
  Child() = default;
  bool wait_impl(int options, ExitStatus& out) noexcept;
  void swap(Child& o) noexcept;

  pid_t pid_ = -1;
  bool reaped_ = false;
  bool exited_ = false;  // status_ is known (peeked or reaped)
  ExitStatus status_{};
  UniqueFd pidfd_, stdin_, stdout_, stderr_, pty_;
};

/// Starts a child as described above. Between fork and exec the child only makes
/// async-signal-safe calls, so this is safe to call from any thread of a multithreaded server.
/// Blocks the calling thread until the exec succeeded or failed (about a millisecond).
/// Errors, and what a shell would exit with (see exit_code_for_spawn_error):
///  - the program: the errno of execve in std::system_category (ENOENT -> 127, others -> 126);
///  - the working directory: the errno of chdir in chdir_error_category();
///  - setting up the child (setsid, TIOCSCTTY, dup2): the errno in child_setup_error_category();
///  - switching to `credentials`, or finding the switch incomplete: the errno in
///    credentials_error_category() (EPERM when a check found the wrong ids or groups);
///  - in the parent: EINVAL for an empty argv or a NUL inside a string; pipe, pty, fork errors;
///    all in std::system_category.
/// Writing to stdin_fd() after the child has gone raises SIGPIPE in the caller: a server ignores
/// SIGPIPE (the child gets it back at its default).
Result<Child> spawn(const SpawnOptions& opts) noexcept;

/// 127 when the program was not found (ENOENT from exec), else 126 ("found but cannot execute",
/// and every other reason the command did not start), as POSIX shells report it. The spawned
/// child _exits with the same status (core/exit_status.hpp holds the one rule).
int exit_code_for_spawn_error(std::error_code ec) noexcept;

/// Error categories whose values are errno values, for failures in the child before exec.
const std::error_category& chdir_error_category() noexcept;
const std::error_category& child_setup_error_category() noexcept;
const std::error_category& credentials_error_category() noexcept;

/// Who a command runs as, for its environment: the account's name, home and login shell.
struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home = "/";
  std::string shell = "/bin/sh";
};

/// The passwd entry of uid (getpwuid_r: no static buffer shared between threads); nullopt when
/// there is none.
std::optional<Account> lookup_account(uid_t uid);

/// The environment of a command run as `account`, built from nothing: PATH=/usr/local/bin:
/// /usr/bin:/bin, HOME, USER, LOGNAME, SHELL (the account's), LANG (ours when set, else
/// C.UTF-8), and TERM only when `term` is not empty. Nothing else of ours is inherited.
std::vector<std::string> account_environment(const Account& account, std::string_view term = {});

/// account_environment() of our own account (getuid()); without a passwd entry, HOME, USER and
/// LOGNAME are left out and SHELL is /bin/sh.
std::vector<std::string> minimal_environment(std::string_view term = {});

}  // namespace duplex::proc
