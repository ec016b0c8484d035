// The exec service's command. Process discipline (own session, closed fds, default signals) lives
// in proc::spawn; this file is about streaming, limits and the order of the last frames.
#include "duplex/services/exec.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"
#include "duplex/proc/pipe.hpp"
#include "duplex/proc/pty.hpp"

namespace duplex::services {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t kChunk = 64 * 1024;
// Bulk output is spliced from this much in the pipe: below it a copy costs about what the
// splice's own system calls do.
constexpr std::size_t kSpliceFrom = 16 * 1024;
// Raw-exec replies are collected whole (the seed protocol has no framing); cap them.
constexpr std::size_t kRawReplyCap = 64u << 20;

// The server's own account, for commands run without --user. Looked up once per process.
const proc::Account& this_account() {
  static const proc::Account account = [] {
    if (auto a = proc::lookup_account(::getuid())) return *a;
    proc::Account a;
    a.uid = ::getuid();
    a.gid = ::getgid();
    return a;
  }();
  return account;
}

// Who the command runs as: --user's account, or ours.
proc::Account account_of(const ExecPolicy& policy) {
  if (!policy.run_as) return this_account();
  const auto& r = *policy.run_as;
  return proc::Account{r.name, r.uid, r.gid, r.home, r.shell};
}

// Variables whose mere presence runs code of the sender's choosing: the dynamic loader's
// (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT...) and the shells' start-up hooks, or that change how
// every script splits words. No allow list lets them through.
bool never_allowed(std::string_view name) noexcept {
  return name.starts_with("LD_") || name == "BASH_ENV" || name == "ENV" || name == "IFS";
}

int dup_cloexec(int fd) {
  return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

void set_env(std::vector<std::string>& env, std::string_view key, std::string_view value) {
  const std::string kv = fmt::format("{}={}", key, value);
  const auto prefix = std::string_view(kv).substr(0, key.size() + 1);
  std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
  env.push_back(kv);
}

proc::SpawnOptions spawn_options(const wire::ExecStart& req, const ExecPolicy& policy,
                                 const ExecOrigin& origin) {
  const proc::Account account = account_of(policy);
  proc::SpawnOptions o;
  if (req.login)
    o.argv = {account.shell, "-l"};
  else if (req.shell)
    o.argv = {"/bin/sh", "-c", req.argv.at(0)};
  else
    o.argv = req.argv;
  o.env = proc::account_environment(
      account, req.pty ? (req.term.empty() ? std::string_view("xterm") : req.term) : "");
  // The client's variables come after ours, so that an allowed LANG or TERM is the client's;
  // the peer's own come last, so that no client can pose as another.
  for (const auto& [k, v] : req.env)
    set_env(o.env, k, v);
  if (!origin.client.empty()) set_env(o.env, "DUPLEX_CLIENT", origin.client);
  if (!origin.identity.empty()) set_env(o.env, "DUPLEX_IDENTITY", origin.identity);
  // A server started as root switches the child; one that runs as the --user account already
  // (cmd_serve allows that) has nothing to switch.
  if (policy.run_as && ::geteuid() == 0)
    o.credentials = proc::Credentials{policy.run_as->uid, policy.run_as->gid};
  if (!req.cwd.empty()) {
    o.cwd = req.cwd;
  } else if (!policy.default_cwd.empty()) {
    o.cwd = policy.default_cwd;
  } else {
    // The home, or "/" when it cannot be entered (nobody's is /nonexistent), as sshd does.
    o.cwd = account.home;
    o.cwd_fallback = "/";
  }
  o.stdio = req.pty ? proc::StdioMode::pty : proc::StdioMode::pipes;
  o.rows = req.rows;
  o.cols = req.cols;
  return o;
}

}  // namespace

ExecOrigin ExecOrigin::of(const net::Peer& peer, std::string identity) {
  ExecOrigin o;
  o.client = peer.uid ? fmt::format("unix:uid={}", *peer.uid) : peer.address;
  o.identity = std::move(identity);
  return o;
}

bool env_allowed(std::string_view name, const std::vector<std::string>& allow) noexcept {
  if (name.empty() || never_allowed(name)) return false;
  for (const std::string_view a : allow) {
    if (a.ends_with('*') ? name.starts_with(a.substr(0, a.size() - 1)) : name == a) return true;
  }
  return false;
}

Status check_client_env(const wire::ExecStart& req, const ExecPolicy& policy) {
  for (const auto& [k, v] : req.env) {
    if (!env_allowed(k, policy.env_allow))
      return fail(errc::exec_failed,
                  fmt::format("environment variable {} is not allowed by this server{}", k,
                              never_allowed(k) ? " (never, whatever its --env-allow)"
                                               : " (its --env-allow)"));
  }
  return {};
}

Status check_env_allow(const std::vector<std::string>& allow) {
  // A pattern that could match one of them ("LD_*", "L*", "*") is refused as well: it says
  // something the server would not do.
  static constexpr std::string_view kExamples[] = {"LD_PRELOAD", "BASH_ENV", "ENV", "IFS"};
  for (const std::string_view a : allow) {
    std::string_view example;
    if (!a.ends_with('*')) {
      if (never_allowed(a)) example = a;
    } else {
      const auto stem = a.substr(0, a.size() - 1);
      for (const auto n : kExamples)
        if (example.empty() && (n.starts_with(stem) || stem.starts_with("LD_"))) example = n;
    }
    if (!example.empty())
      return fail(std::errc::invalid_argument,
                  fmt::format("--env-allow {}: a client may never set {} (LD_*, BASH_ENV, ENV "
                              "and IFS run code before the command or change how it is read)",
                              a, example == "LD_PRELOAD" && a != "LD_PRELOAD" ? "LD_*" : example));
  }
  return {};
}

Result<std::shared_ptr<ExecCommand>> ExecCommand::start(const asio::any_io_executor& ex,
                                                        const wire::ExecStart& req,
                                                        const ExecPolicy& policy,
                                                        const ExecOrigin& origin) {
  if (auto ok = check_client_env(req, policy); !ok) return std::move(ok).failure();
  auto child = proc::spawn(spawn_options(req, policy, origin));
  if (!child) return std::move(child).failure();
  return std::make_shared<ExecCommand>(Private{}, ex, std::move(*child), req, policy);
}

wire::Exit not_started_exit(const std::error_code& spawn_error) noexcept {
  // PROTOCOL.md: the errno of the failed start; the client maps not_started to 127 (ENOENT) or
  // 126, and tells bad_cwd apart (the program may well exist).
  const auto how = spawn_error.category() == proc::chdir_error_category()
                       ? wire::Exit::How::bad_cwd
                       : wire::Exit::How::not_started;
  const int code = spawn_error.category() == duplex_category() ? EPERM : spawn_error.value();
  return wire::Exit{how, code, 0, wire::Exit::Limit::none};
}

ExecCommand::ExecCommand(Private, const asio::any_io_executor& ex, proc::Child child,
                         const wire::ExecStart& req, const ExecPolicy& policy)
    : ex_(ex),
      child_(std::move(child)),
      pty_(req.pty),
      policy_(policy),
      timeout_(req.timeout_ms ? std::chrono::milliseconds(req.timeout_ms) : policy.max_timeout),
      stdin_(ex),
      stdout_(ex),
      stderr_(ex),
      pidfd_(ex),
      // One slot per byte at worst: the byte bound (stdin_fits) is the one that holds.
      stdin_queue_(ex, kStdinQueue),
      stdin_drained_(ex, 1),
      kill_timer_(ex),
      started_(Clock::now()) {
  if (policy.max_timeout.count() > 0 && timeout_ > policy.max_timeout)
    timeout_ = policy.max_timeout;
  if (pty_) {
    const int master = child_.take_pty().release();
    stdin_.assign(dup_cloexec(master));
    stdout_.assign(master);
  } else {
    stdin_.assign(child_.take_stdin().release());
    stdout_.assign(child_.take_stdout().release());
    stderr_.assign(child_.take_stderr().release());
  }
  // A pidfd of our own for the event loop, not a dup of the Child's: a dup shares the open file
  // description, and Asio makes it O_NONBLOCK, after which the Child's blocking reap
  // (waitid(P_PIDFD)) fails with EAGAIN and leaves a zombie (pidfd_open(2)).
  if (child_.pidfd() >= 0) {
    if (const int p = static_cast<int>(::syscall(SYS_pidfd_open, child_.pid(), 0U)); p >= 0)
      pidfd_.assign(p);
  }
}

ExecCommand::~ExecCommand() = default;  // ~Child kills and reaps whatever is left

awaitable<wire::Exit> ExecCommand::run(FrameSink& out, std::size_t max_payload) {
  max_payload = std::clamp<std::size_t>(max_payload, 1, kLargestRead);
  auto outputs = [&]() -> awaitable<void> {
    if (pty_)
      co_await pump(stdout_, wire::MsgType::stdout_data, out_bytes_, out, max_payload);
    else
      co_await (pump(stdout_, wire::MsgType::stdout_data, out_bytes_, out, max_payload) &&
                pump(stderr_, wire::MsgType::stderr_data, err_bytes_, out, max_payload));
  };
  auto to_the_end = [&]() -> awaitable<void> { co_await (outputs() && wait_exit()); };
  // feed_stdin() and watch_deadline() never finish on their own: the command's end cancels them.
  // (A cancelled wait completes with an error code, not an exception: unwinding a coroutine
  // costs microseconds per command.)
  // The whole queue is the client's first window; nothing is in it yet but from a client that
  // does not wait for windows (it is served all the same).
  if (!stdin_ended_)
    (void)co_await out.send(
        wire::MsgType::stdin_window,
        Payload::of(wire::StdinWindow{static_cast<std::uint32_t>(kStdinQueue)}));
  if (timeout_.count() > 0)
    co_await (to_the_end() || feed_stdin(out) || watch_deadline(timeout_));
  else
    co_await (to_the_end() || feed_stdin(out));

  // Input that arrives from now on is dropped; a reader waiting to queue some is let go.
  stdin_queue_.cancel();
  stdin_queue_.close();
  stdin_drained_.cancel();
  stdin_drained_.close();
  // Both streams ended and the leader exited: reap it (its status is already known).
  child_.try_reap(status_);
  kill_timer_.cancel();
  wire::Exit exit;
  exit.how = status_.signaled ? wire::Exit::How::signaled : wire::Exit::How::exited;
  exit.code = status_.code;
  exit.duration_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count());
  exit.limit = limit_;
  co_return exit;
}

awaitable<void> ExecCommand::pump(asio::posix::stream_descriptor& from, wire::MsgType type,
                                  std::uint64_t& count, FrameSink& out, std::size_t max_payload) {
  bool forwarding = true;
  const std::size_t first = std::min(kFirstRead, max_payload);
  std::size_t size = first;
  bool grown = pty_;  // a pty has no pipe buffer to grow
  bool bulk = false;  // the last read filled its buffer: more is waiting
  // Bulk output for a client on a plain socket goes from the pipe to the socket in the kernel
  // (splice), never through our memory. Not under an output limit, which cuts payloads at a
  // byte count, and not from a pty, which is no pipe.
  const bool may_splice = !pty_ && policy_.max_output == 0 && out.splices();
  for (;;) {
    if (bulk && forwarding && may_splice) {
      // What the pipe holds now is one frame's payload (up to the limit), asked before waiting:
      // while the command outruns us there is no need to. A little is read and sent as usual
      // below, where a short read also ends the bulk.
      int held = 0;
      if (::ioctl(from.native_handle(), FIONREAD, &held) == 0 && held == 0) {
        auto [wec] = co_await from.async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
        if (wec) co_return;  // cancelled
        if (::ioctl(from.native_handle(), FIONREAD, &held) != 0) held = 0;
      }
      if (static_cast<std::size_t>(held) >= std::min(kSpliceFrom, first)) {
        const std::size_t n = std::min(static_cast<std::size_t>(held), max_payload);
        count += n;
        count_output(n);
        if (!co_await out.send_spliced(type, from.native_handle(), n)) forwarding = false;
        continue;
      }
    }
    // Read straight into the frame's payload: one allocation per chunk, no copy.
    Payload p(size);
    auto [ec, n] = co_await from.async_read_some(asio::buffer(p.data().data(), size), use_tuple);
    if (ec) co_return;  // EOF; EIO on a pty whose last slave fd closed; or cancelled
    // A full buffer says more is waiting: read twice as much next time (fewer reads, frames and
    // wake-ups per byte of bulk output); a short read goes back to the small buffer, so a
    // command that writes a line at a time costs no large allocations.
    const bool full = n == size;
    bulk = full;
    size = full ? std::min(size * 2, max_payload) : first;
    // Bulk output, the first time: a larger pipe lets the command run on while we forward what
    // it wrote, and lets us take it in larger reads (a 64 KiB pipe wakes the writer and us for
    // every 64 KiB). Not done at spawn: a short command should not pay for it.
    if (full && !grown) grown = proc::grow_pipe(from.native_handle(), kLargestRead) > 0;
    std::size_t keep = n;
    if (policy_.max_output > 0) {
      const std::uint64_t before = out_bytes_ + err_bytes_;
      if (before >= policy_.max_output)
        keep = 0;
      else
        keep = static_cast<std::size_t>(std::min<std::uint64_t>(n, policy_.max_output - before));
    }
    count += n;
    count_output(n);
    // Past the output limit or with the client gone, keep reading so the child never blocks on a
    // full pipe before its SIGTERM arrives, and so that EOF is seen.
    if (!forwarding || keep == 0) continue;
    p.shrink(keep);
    if (!co_await out.send(type, std::move(p))) forwarding = false;
  }
}

void ExecCommand::count_output(std::size_t) noexcept {
  if (policy_.max_output > 0 && out_bytes_ + err_bytes_ > policy_.max_output)
    terminate(wire::Exit::Limit::output);
}

awaitable<void> ExecCommand::wait_exit() {
  if (pidfd_.is_open()) {
    auto [ec] = co_await pidfd_.async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
    if (!ec && child_.peek_exit(status_)) co_return;
  }
  // No pidfd (kernel < 5.3) or a spurious wake: poll the child on a short timer.
  asio::steady_timer t(ex_);
  while (!child_.peek_exit(status_)) {
    t.expires_after(std::chrono::milliseconds(20));
    auto [ec] = co_await t.async_wait(use_tuple);
    if (ec) co_return;
  }
}

awaitable<void> ExecCommand::watch_deadline(std::chrono::milliseconds timeout) {
  asio::steady_timer t(ex_, timeout);
  auto [ec] = co_await t.async_wait(use_tuple);
  if (ec) co_return;
  terminate(wire::Exit::Limit::timeout);
  // Stay pending: the command still has to be drained and reaped; run() cancels us then.
  t.expires_at(asio::steady_timer::time_point::max());
  co_await t.async_wait(use_tuple);
}

// Writes queued input to the command's stdin, in order, beside the session's reader: a command
// that does not read blocks only this loop, never the reader (which still takes SIGNAL frames).
awaitable<void> ExecCommand::feed_stdin(FrameSink& out) {
  for (;;) {
    auto [ec, data] = co_await stdin_queue_.async_receive(use_tuple);
    if (ec == asio::error::eof) {
      end_stdin();
      continue;
    }
    // Only cancellation fails the wait (run() is done with us; it closes the queue after).
    if (ec) co_return;
    std::error_code wec;
    if (stdin_.is_open())  // else the command closed its stdin: drop what follows
      std::tie(wec, std::ignore) =
          co_await asio::async_write(stdin_, asio::buffer(data), use_tuple);
    --stdin_pending_;
    stdin_bytes_ -= data.size();
    stdin_drained_.try_send(std::error_code{}, true);  // a full token slot already says the same
    // EPIPE (the command closed its stdin) or aborted by terminate(), which closed it: what
    // follows is dropped. Never return from here: returning would end run() early.
    if (wec && !pty_) {
      std::error_code ignored;
      stdin_.close(ignored);
    }
    co_await grant_stdin(out, data.size());
  }
}

// Grants back what the command has read, batched (a frame per quarter of the window, or when the
// queue ran empty), while more input can still be taken.
awaitable<void> ExecCommand::grant_stdin(FrameSink& out, std::size_t drained) {
  stdin_freed_ += drained;
  if (stdin_ended_ || !stdin_.is_open() || stdin_freed_ == 0) co_return;
  if (stdin_freed_ < kStdinQueue / 4 && stdin_pending_ != 0) co_return;
  const auto bytes = static_cast<std::uint32_t>(std::exchange(stdin_freed_, 0));
  (void)co_await out.send(wire::MsgType::stdin_window, Payload::of(wire::StdinWindow{bytes}));
}

bool ExecCommand::stdin_fits(std::size_t n) const noexcept {
  // An empty queue takes any piece (at most kChunk), so a waiting writer always progresses.
  return stdin_bytes_ == 0 || stdin_bytes_ + n <= kStdinQueue;
}

std::size_t ExecCommand::try_write_stdin(ByteView data) {
  std::size_t queued = 0;
  while (queued < data.size()) {
    const auto piece = data.subspan(queued, std::min(kChunk, data.size() - queued));
    if (!stdin_fits(piece.size())) break;
    if (!stdin_queue_.try_send(std::error_code{}, Bytes(piece.begin(), piece.end()))) break;
    ++stdin_pending_;
    stdin_bytes_ += piece.size();
    queued += piece.size();
  }
  return queued;
}

awaitable<void> ExecCommand::write_stdin(ByteView data) {
  for (std::size_t queued = 0; queued < data.size();) {
    const auto piece = data.subspan(queued, std::min(kChunk, data.size() - queued));
    while (!stdin_fits(piece.size())) {
      auto [ec, ignored] = co_await stdin_drained_.async_receive(use_tuple);
      if (ec) co_return;  // the command ended: its input is dropped
    }
    if (!stdin_queue_.try_send(std::error_code{}, Bytes(piece.begin(), piece.end())))
      co_return;  // closed: the command ended
    ++stdin_pending_;
    stdin_bytes_ += piece.size();
    queued += piece.size();
  }
}

bool ExecCommand::try_close_stdin() {
  stdin_ended_ = true;
  // Nothing queued or being written before it: end the input now, without a hop to the writer.
  if (stdin_pending_ == 0) {
    end_stdin();
    return true;
  }
  return stdin_queue_.try_send(make_error_code(asio::error::eof), Bytes{});
}

void ExecCommand::end_stdin() noexcept {
  if (!stdin_.is_open()) return;
  if (pty_) {
    // A terminal has no half-close: EOF is the VEOF character at the start of a line. One
    // byte, written only when nothing else is pending: a full terminal buffer drops it.
    (void)!::write(stdin_.native_handle(), "\x04", 1);
    return;
  }
  std::error_code ignored;
  stdin_.close(ignored);
}

awaitable<void> ExecCommand::close_stdin() {
  stdin_ended_ = true;
  co_await stdin_queue_.async_send(make_error_code(asio::error::eof), Bytes{}, use_tuple);
}

void ExecCommand::signal(int signo) noexcept {
  child_.signal_group(signo);
}

void ExecCommand::resize(std::uint16_t rows, std::uint16_t cols) noexcept {
  if (pty_ && stdout_.is_open()) proc::set_window_size(stdout_.native_handle(), rows, cols);
}

void ExecCommand::terminate(wire::Exit::Limit why) noexcept {
  if (terminating_) return;
  terminating_ = true;
  if (limit_ == wire::Exit::Limit::none) limit_ = why;
  child_.signal_group(SIGTERM);
  if (pty_) child_.signal_group(SIGHUP);  // shells ignore SIGTERM in interactive mode
  std::error_code ignored;
  if (!pty_) stdin_.close(ignored);
  kill_timer_.expires_after(policy_.kill_grace);
  kill_timer_.async_wait([self = weak_from_this()](std::error_code ec) {
    if (ec) return;
    if (auto s = self.lock()) s->child_.signal_group(SIGKILL);
  });
}

awaitable<Bytes> run_raw_command(std::string command, const ExecPolicy& policy, ExecOrigin origin) {
  auto ex = co_await asio::this_coro::executor;
  wire::ExecStart req;
  req.argv = {std::move(command)};
  req.shell = true;
  auto started = ExecCommand::start(ex, req, policy, origin);
  if (!started) {
    const std::string msg = fmt::format("duplex: cannot run command: {}\n", started.message());
    co_return Bytes(as_bytes(msg).begin(), as_bytes(msg).end());
  }
  auto cmd = std::move(*started);
  co_await cmd->close_stdin();

  // Collects the two streams apart, so that the reply is stdout then stderr (as the seed's
  // remote_server.py sends it) without the seed's deadlock when stderr fills its pipe first.
  class Collector final : public FrameSink {
   public:
    awaitable<bool> send(wire::MsgType type, Payload payload) override {
      // The seed protocol has no stdin to grant: only the output is kept.
      if (type != wire::MsgType::stdout_data && type != wire::MsgType::stderr_data) co_return true;
      Bytes& to = type == wire::MsgType::stderr_data ? err : out;
      if (out.size() + err.size() < kRawReplyCap)
        to.insert(to.end(), payload.data().begin(), payload.data().end());
      co_return true;
    }
    awaitable<void> finish() override { co_return; }
    Bytes out, err;
  } collector;
  const auto exit = co_await cmd->run(collector);
  cmd.reset();  // reaps now, before the reply is sent
  Bytes reply = std::move(collector.out);
  reply.insert(reply.end(), collector.err.begin(), collector.err.end());
  if (reply.empty()) {
    const int code = exit.how == wire::Exit::How::signaled ? 128 + exit.code : exit.code;
    const std::string msg = fmt::format("[no output; exit status {}]\n", code);
    reply.assign(as_bytes(msg).begin(), as_bytes(msg).end());
  }
  co_return reply;
}

}  // namespace duplex::services
