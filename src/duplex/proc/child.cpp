// spawn and Child: fork/exec with OpenSSH session.c's discipline, errors over a CLOEXEC pipe.
//
// In the child, before exec: new session, stdio on 0/1/2, every other fd closed, signals reset.
// vfork(), as glibc's posix_spawn does (clone with CLONE_VM|CLONE_VFORK): fork() copies the
// server's page tables for every command, and bench/exec_bench showed it — round trips of `true`
// went from 0.53x to 0.81x of a local posix_spawn. The child shares our memory until it execs,
// which is safe because run_child() only reads the Plan prepared before, makes system calls,
// and never returns (it execs or _exits); signals are blocked across it, and its signal
// handler table and fd table are its own (no CLONE_SIGHAND, no CLONE_FILES). Sanitizer builds
// use fork(): their runtimes keep per-thread state that a vfork child would share.
#include "duplex/proc/child.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <utility>

#include "duplex/core/exit_status.hpp"
#include "duplex/proc/pipe.hpp"
#include "duplex/proc/pty.hpp"

namespace duplex::proc {
namespace {

/// An error category whose values are errno values, with a prefix saying which step failed.
/// Its conditions are the generic errno ones: `ec == std::errc::no_such_file_or_directory` works.
class ErrnoCategory final : public std::error_category {
 public:
  ErrnoCategory(const char* name, const char* prefix) : name_(name), prefix_(prefix) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int v) const override { return prefix_ + std::system_category().message(v); }
  std::error_condition default_error_condition(int v) const noexcept override {
    return std::system_category().default_error_condition(v);
  }

 private:
  const char* name_;
  std::string prefix_;
};

/// Which step of the child's set-up failed; sent to the parent with the errno.
enum class Stage : int { setup = 1, chdir = 2, exec = 3, credentials = 4 };
struct ChildReport {
  int stage;
  int error;
};

/// Everything the child needs, computed before fork: after fork the child may not allocate.
struct Plan {
  std::vector<std::string> candidates;  // paths to try with execve, in PATH order
  std::vector<const char*> candidate_ptrs;
  std::vector<char*> argv;             // null-terminated, pointing into SpawnOptions
  std::vector<char*> envp;             // null-terminated, pointing into SpawnOptions
  const char* cwd = nullptr;           // nullptr: keep ours
  const char* cwd_fallback = nullptr;  // where to go when cwd cannot be entered
  std::optional<Credentials> credentials;
  std::array<int, 3> stdio{-1, -1, -1};  // become the child's 0, 1, 2
  bool controlling_tty = false;          // stdio[0] is a pty slave to make our controlling tty
  bool path_search = false;              // candidates come from PATH, not from a name with a '/'
  int report_fd = -1;
};

bool has_nul(const std::string& s) noexcept {
  return s.find('\0') != std::string::npos;
}

/// The PATH value in a "K=V" environment, the first one as getenv(3) would see it in the child.
/// Without PATH, execvp's own default applies.
std::string_view path_of(const std::vector<std::string>& env) noexcept {
  for (const auto& kv : env)
    if (kv.starts_with("PATH=")) return std::string_view(kv).substr(5);
  return "/bin:/usr/bin";
}

/// execvp's search, resolved in advance: a name with a '/' is used as is, otherwise every PATH
/// entry in order, an empty entry meaning the current directory.
std::vector<std::string> exec_candidates(const std::string& name,
                                         const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos || name.empty()) return {name};
  std::vector<std::string> out;
  std::string_view path = path_of(env);
  for (;;) {
    auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    out.push_back(dir.empty() ? name : std::string(dir) + "/" + name);
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

/// The gid of the group "tty", looked up once (getgrnam_r: no static buffer).
std::optional<gid_t> tty_group() {
  static const std::optional<gid_t> gid = []() -> std::optional<gid_t> {
    group gr{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r("tty", &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr)
      return std::nullopt;
    return gr.gr_gid;
  }();
  return gid;
}

/// pidfd_open(2) by syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ cannot link it.
int open_pidfd(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));  // close-on-exec by definition
}

int open_file_limit() noexcept {
  rlimit rl{};
  // Only used by the child's fallback loop, and read there (a plain system call, safe after
  // vfork) rather than before every spawn. Capped at the kernel's default fs.nr_open.
  constexpr rlim_t kCap = rlim_t{1} << 20;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > kCap)
    return static_cast<int>(kCap);
  return static_cast<int>(rl.rlim_cur);
}

// ---- In the child, between fork and exec: async-signal-safe calls only (signal-safety(7)). ----

[[noreturn]] void child_fail(int report_fd, Stage stage, int err) noexcept {
  ChildReport r{static_cast<int>(stage), err};
  // Smaller than PIPE_BUF into an empty pipe: one write, all or nothing.
  while (::write(report_fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
  ::_exit(stage == Stage::exec ? exit_status_for_exec_errno(err) : kExitCannotExecute);
}

/// Returns a copy of fd at 3 or above (close-on-exec), so the dup2s onto 0..2 cannot clobber it.
int lift_above_stdio(int fd, int report_fd) noexcept {
  if (fd >= 3) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) child_fail(report_fd, Stage::setup, errno);
  return moved;
}

// The ids are set by raw system calls, not glibc's setuid() family: in a multithreaded process
// glibc makes every thread change its ids (nptl's setxid, a signal to each thread it knows), and
// a vfork child shares the parent's memory, thread list included, so the wrapper would act on
// the server's own threads. The kernel's calls change the calling thread, which is the whole
// child. 32-bit ABIs have 16-bit ids in the old calls: take the 32-bit ones there.
#ifdef SYS_setresuid32
constexpr long kSetgroups = SYS_setgroups32, kSetresgid = SYS_setresgid32,
               kSetresuid = SYS_setresuid32, kSetuid = SYS_setuid32;
#else
constexpr long kSetgroups = SYS_setgroups, kSetresgid = SYS_setresgid, kSetresuid = SYS_setresuid,
               kSetuid = SYS_setuid;
#endif

// OpenSSH's permanently_set_uid, then its check that the change cannot be undone: groups first
// (after setuid we could no longer drop them), gid before uid (the same), then verify rather
// than trust.
void switch_credentials(const Credentials& c, int report) noexcept {
  if (::syscall(kSetgroups, 0, nullptr) != 0) child_fail(report, Stage::credentials, errno);
  if (::syscall(kSetresgid, c.gid, c.gid, c.gid) != 0)
    child_fail(report, Stage::credentials, errno);
  if (::syscall(kSetresuid, c.uid, c.uid, c.uid) != 0)
    child_fail(report, Stage::credentials, errno);
  uid_t ru = 0, eu = 0, su = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  if (::getresuid(&ru, &eu, &su) != 0 || ru != c.uid || eu != c.uid || su != c.uid)
    child_fail(report, Stage::credentials, EPERM);
  if (::getresgid(&rg, &eg, &sg) != 0 || rg != c.gid || eg != c.gid || sg != c.gid)
    child_fail(report, Stage::credentials, EPERM);
  gid_t groups[1] = {};
  const int n = ::getgroups(0, nullptr);
  if (n < 0 || n > 1 || (n == 1 && (::getgroups(1, groups) != 1 || groups[0] != c.gid)))
    child_fail(report, Stage::credentials, EPERM);
  if (c.uid != 0 && ::syscall(kSetuid, 0) == 0) child_fail(report, Stage::credentials, EPERM);
}

[[noreturn]] void run_child(const Plan& p) noexcept {
  // Every signal to its default. exec resets handlers but keeps SIG_IGN, and a server ignores
  // SIGPIPE: a command must get the default (session.c: signal(SIGPIPE, SIG_DFL)), or the writer
  // in `yes | head -1` fails with EPIPE and complains instead of ending quietly.
  // The mask is still fully blocked (see spawn), so no handler of ours can run here.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP)
      ::sigaction(sig, &dfl, nullptr);  // EINVAL for glibc's own
  }

  int report = -1;
  // The report pipe first: every later failure is reported through it.
  if (p.report_fd < 3) {
    report = ::fcntl(p.report_fd, F_DUPFD_CLOEXEC, 3);
    if (report < 0) ::_exit(kExitCannotExecute);
  } else {
    report = p.report_fd;
  }

  // A new session: the child leads its own process group (pgid == pid), so the server can signal
  // the whole command with kill(-pid), and it is detached from any terminal of ours.
  if (::setsid() < 0) child_fail(report, Stage::setup, errno);
  // A session leader acquires a controlling tty explicitly (the slave was opened O_NOCTTY).
  if (p.controlling_tty && ::ioctl(p.stdio[0], TIOCSCTTY, 0) < 0)
    child_fail(report, Stage::setup, errno);

  std::array<int, 3> src{};
  for (int i = 0; i < 3; ++i)
    src[static_cast<std::size_t>(i)] =
        lift_above_stdio(p.stdio[static_cast<std::size_t>(i)], report);
  // dup2 clears FD_CLOEXEC on the copy: these three survive exec.
  for (int i = 0; i < 3; ++i)
    if (::dup2(src[static_cast<std::size_t>(i)], i) < 0) child_fail(report, Stage::setup, errno);
  // Park the report pipe at 3 (still close-on-exec) so one close_range can close all the rest.
  if (report != 3) {
    if (::dup3(report, 3, O_CLOEXEC) < 0) child_fail(report, Stage::setup, errno);
    report = 3;
  }
  // Close everything else we inherited: Asio's sockets are not close-on-exec, and a command must
  // never hold a client's connection or another command's pipe (session.c: closefrom).
  if (::close_range(4, ~0U, 0) != 0) {
    for (int fd = 4, limit = open_file_limit(); fd < limit; ++fd)
      ::close(fd);  // kernels before 5.9, or seccomp
  }

  // Before anything of the command's own: the working directory is entered with its rights.
  if (p.credentials) switch_credentials(*p.credentials, report);

  if (p.cwd != nullptr && ::chdir(p.cwd) != 0) {
    const int err = errno;
    if (p.cwd_fallback == nullptr || ::chdir(p.cwd_fallback) != 0)
      child_fail(report, Stage::chdir, err);
  }

  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // execvp's rules (glibc posix/execvpe.c): keep searching past names that do not exist there,
  // remember EACCES, stop on any other error. No ENOEXEC fallback to /bin/sh, as posix_spawnp.
  bool got_eacces = false;
  int err = ENOENT;
  for (const char* path : p.candidate_ptrs) {
    ::execve(path, p.argv.data(), p.envp.data());
    err = errno;
    switch (err) {
      case EACCES: got_eacces = true; [[fallthrough]];
      case ENOENT:
      case ENOTDIR:
      case ESTALE:
      case ENODEV:
      case ETIMEDOUT: continue;
      default: child_fail(report, Stage::exec, err);
    }
  }
  // Searched PATH and found nothing: "not found", whatever odd entry came last (ENOTDIR...).
  if (!got_eacces && p.path_search) err = ENOENT;
  child_fail(report, Stage::exec, got_eacces ? EACCES : err);
}

// ---- In the parent. ----

std::error_code report_to_error(const ChildReport& r) noexcept {
  switch (static_cast<Stage>(r.stage)) {
    case Stage::exec: return {r.error, std::system_category()};
    case Stage::chdir: return {r.error, chdir_error_category()};
    case Stage::credentials: return {r.error, credentials_error_category()};
    case Stage::setup: break;
  }
  return {r.error, child_setup_error_category()};
}

}  // namespace

const std::error_category& chdir_error_category() noexcept {
  static const ErrnoCategory c("duplex.chdir", "cannot change to the working directory: ");
  return c;
}

const std::error_category& child_setup_error_category() noexcept {
  static const ErrnoCategory c("duplex.child_setup", "cannot set up the child process: ");
  return c;
}

const std::error_category& credentials_error_category() noexcept {
  static const ErrnoCategory c("duplex.credentials",
                               "cannot switch the command to its account (--user): ");
  return c;
}

int exit_code_for_spawn_error(std::error_code ec) noexcept {
  // chdir and the child's set-up report in their own categories: a missing working directory
  // is not a missing program.
  return ec.category() == std::system_category() ? exit_status_for_exec_errno(ec.value())
                                                 : kExitCannotExecute;
}

Result<Child> spawn(const SpawnOptions& opts) noexcept {
  if (opts.argv.empty() || has_nul(opts.cwd) || has_nul(opts.cwd_fallback))
    return std::make_error_code(std::errc::invalid_argument);
  for (const auto& s : opts.argv)
    if (has_nul(s)) return std::make_error_code(std::errc::invalid_argument);
  for (const auto& s : opts.env)
    if (has_nul(s)) return std::make_error_code(std::errc::invalid_argument);

  Plan plan;
  try {
    plan.candidates = exec_candidates(opts.argv.front(), opts.env);
    for (const auto& c : plan.candidates)
      plan.candidate_ptrs.push_back(c.c_str());
    plan.path_search =
        opts.argv.front().find('/') == std::string::npos && !opts.argv.front().empty();
    // execve takes char* const[] for historical reasons; it does not write through them.
    for (const auto& a : opts.argv)
      plan.argv.push_back(const_cast<char*>(a.c_str()));
    plan.argv.push_back(nullptr);
    for (const auto& e : opts.env)
      plan.envp.push_back(const_cast<char*>(e.c_str()));
    plan.envp.push_back(nullptr);
  } catch (const std::exception&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  if (!opts.cwd.empty()) plan.cwd = opts.cwd.c_str();
  if (!opts.cwd_fallback.empty()) plan.cwd_fallback = opts.cwd_fallback.c_str();
  plan.credentials = opts.credentials;

  Child child;
  // The child's ends, closed in the parent as soon as the child has its copies.
  std::array<UniqueFd, 3> child_ends;
  if (opts.stdio == StdioMode::pipes) {
    auto in = make_pipe();
    if (!in) return in.error();
    auto out = make_pipe();
    if (!out) return out.error();
    auto err = make_pipe();
    if (!err) return err.error();
    child_ends = {std::move(in->read), std::move(out->write), std::move(err->write)};
    child.stdin_ = std::move(in->write);
    child.stdout_ = std::move(out->read);
    child.stderr_ = std::move(err->read);
    for (std::size_t i = 0; i < 3; ++i)
      plan.stdio[i] = child_ends[i].get();
  } else {
    auto pty = open_pty(opts.rows, opts.cols);
    if (!pty) return pty.error();
    // Opened here rather than in the child so a failure is reported plainly; O_NOCTTY keeps it
    // from becoming our controlling tty, the child takes it with TIOCSCTTY.
    child_ends[0].reset(::open(pty->slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!child_ends[0]) return std::error_code(errno, std::system_category());
    // The terminal belongs to whoever uses it (sshd's pty_setowner): the account's, group tty
    // with write for write(1), or without a tty group the account's own group and no access.
    if (opts.credentials) {
      const auto tty = tty_group();
      if (::fchown(child_ends[0].get(), opts.credentials->uid,
                   tty ? *tty : opts.credentials->gid) != 0 ||
          ::fchmod(child_ends[0].get(), tty ? 0620 : 0600) != 0)
        return std::error_code(errno, std::system_category());
    }
    child.pty_ = std::move(pty->master);
    plan.stdio = {child_ends[0].get(), child_ends[0].get(), child_ends[0].get()};
    plan.controlling_tty = true;
  }

  auto report = make_pipe();
  if (!report) return report.error();
  plan.report_fd = report->write.get();

  // Block every signal across fork: until the child has reset the dispositions, a signal would run
  // one of our handlers inside it (Asio's signal_set handler writes to a pipe we share).
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  pid_t pid = ::fork();
#else
  pid_t pid = ::vfork();
#endif
  if (pid == 0) run_child(plan);
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return std::error_code(fork_errno, std::system_category());

  child.pid_ = pid;
  // Race-free: nobody else reaps our children, so pid still names this child. -1 on old kernels.
  child.pidfd_.reset(open_pidfd(pid));
  for (auto& fd : child_ends)
    fd.reset();
  report->write.reset();

  // EOF without a report means execve succeeded and closed the close-on-exec write end.
  ChildReport r{};
  std::size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = ::read(report->read.get(), reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got == 0) return child;
  std::error_code ec =
      got == sizeof r ? report_to_error(r) : std::error_code(EIO, child_setup_error_category());
  child.wait();  // it is already on its way to _exit
  return ec;
}

// ---- Child ----

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      reaped_(o.reaped_),
      exited_(o.exited_),
      status_(o.status_),
      pidfd_(std::move(o.pidfd_)),
      stdin_(std::move(o.stdin_)),
      stdout_(std::move(o.stdout_)),
      stderr_(std::move(o.stderr_)),
      pty_(std::move(o.pty_)) {}

Child& Child::operator=(Child&& o) noexcept {
  Child tmp(std::move(o));  // our old child dies with tmp
  swap(tmp);
  return *this;
}

void Child::swap(Child& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(reaped_, o.reaped_);
  std::swap(exited_, o.exited_);
  std::swap(status_, o.status_);
  std::swap(pidfd_, o.pidfd_);
  std::swap(stdin_, o.stdin_);
  std::swap(stdout_, o.stdout_);
  std::swap(stderr_, o.stderr_);
  std::swap(pty_, o.pty_);
}

Child::~Child() {
  if (pid_ <= 0 || reaped_) return;
  // Kill the group even if the leader has exited: what it left behind in its group goes too.
  // Safe because the unreaped leader still pins the group id.
  ::kill(-pid_, SIGKILL);
  wait();
}

bool Child::wait_impl(int options, ExitStatus& out) noexcept {
  if (pid_ <= 0) return false;
  siginfo_t si{};
  idtype_t idtype = pidfd_ ? P_PIDFD : P_PID;
  for (;;) {
    id_t id = static_cast<id_t>(idtype == P_PIDFD ? pidfd_.get() : pid_);
    if (::waitid(idtype, id, &si, options | WEXITED) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EINVAL && idtype == P_PIDFD) {  // kernel 5.3: pidfd_open but no P_PIDFD
      idtype = P_PID;
      continue;
    }
    if (errno == EAGAIN && idtype == P_PIDFD) {
      // The pidfd was made O_NONBLOCK (an event loop does that): it answers EAGAIN while the
      // child runs, whatever WNOHANG says. The pid still names our unreaped child: ask by pid.
      idtype = P_PID;
      continue;
    }
    // ECHILD: someone else reaped it (SIGCHLD ignored, or a waitpid(-1)); the status is lost.
    status_ = ExitStatus{false, 255, false};
    exited_ = reaped_ = true;
    out = status_;
    return true;
  }
  if (si.si_pid == 0) return false;  // WNOHANG and still running
  status_ = ExitStatus{si.si_code != CLD_EXITED, si.si_status, si.si_code == CLD_DUMPED};
  exited_ = true;
  if ((options & WNOWAIT) == 0) reaped_ = true;
  out = status_;
  return true;
}

bool Child::peek_exit(ExitStatus& out) noexcept {
  if (exited_) {
    out = status_;
    return true;
  }
  return wait_impl(WNOHANG | WNOWAIT, out);
}

bool Child::try_reap(ExitStatus& out) noexcept {
  if (reaped_) {
    out = status_;
    return true;
  }
  return wait_impl(WNOHANG, out);
}

ExitStatus Child::wait() noexcept {
  ExitStatus s{};
  if (reaped_) return status_;
  wait_impl(0, s);
  return s;
}

bool Child::running() noexcept {
  ExitStatus s{};
  return pid_ > 0 && !peek_exit(s);
}

void Child::signal_group(int sig) noexcept {
  // After the reap the pid may be reused, and -pid could name a stranger's group.
  if (pid_ > 0 && !reaped_) ::kill(-pid_, sig);
}

// ---- Environment ----

std::optional<Account> lookup_account(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  const long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<std::size_t>(hint) : 16384);
  int e = 0;
  while ((e = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (std::size_t{1} << 20))
    buf.resize(buf.size() * 2);
  if (e != 0 || found == nullptr) return std::nullopt;
  Account a;
  a.name = pw.pw_name;
  a.uid = pw.pw_uid;
  a.gid = pw.pw_gid;
  if (pw.pw_dir != nullptr && pw.pw_dir[0] != '\0') a.home = pw.pw_dir;
  if (pw.pw_shell != nullptr && pw.pw_shell[0] != '\0') a.shell = pw.pw_shell;
  return a;
}

namespace {

std::vector<std::string> environment(const Account* account, std::string_view term) {
  std::vector<std::string> env;
  env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  if (account != nullptr) {
    env.push_back("HOME=" + account->home);
    env.push_back("USER=" + account->name);
    env.push_back("LOGNAME=" + account->name);
  }
  env.push_back("SHELL=" + (account != nullptr ? account->shell : std::string("/bin/sh")));
  // The one setting of ours a command gets: the language the server's operator chose.
  const char* lang = std::getenv("LANG");
  env.push_back(std::string("LANG=") + (lang != nullptr && lang[0] != '\0' ? lang : "C.UTF-8"));
  if (!term.empty()) env.push_back("TERM=" + std::string(term));
  return env;
}

}  // namespace

std::vector<std::string> account_environment(const Account& account, std::string_view term) {
  return environment(&account, term);
}

std::vector<std::string> minimal_environment(std::string_view term) {
  const auto me = lookup_account(::getuid());
  return environment(me ? &*me : nullptr, term);
}

}  // namespace duplex::proc
