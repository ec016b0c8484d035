// Exit status, the one-line reason and the --json object for an ExecResult.
#include "duplex/client/exec_result.hpp"

#include <cmath>
#include <csignal>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "duplex/client/text.hpp"
#include "duplex/core/exit_status.hpp"

namespace duplex::client {
namespace {

using How = wire::Exit::How;

std::string signal_name(int signo) {
  if (const char* a = ::sigabbrev_np(signo)) return std::string("SIG") + a;
  return fmt::format("signal {}", signo);
}

std::string errno_text(std::int32_t code) {
  return code > 0 ? std::strerror(code) : "unknown error";
}

// Characters a shell reads as syntax (or as a word break): a program name holding one was most
// likely meant as a shell command line (`duplex exec URL 'ls | wc -l'`, ssh's habit).
constexpr std::string_view kShellSyntax = " \t\n|&;<>()$`\\\"'*?[]{}~=#";

// 'text' for a shell, each ' inside written as '\''.
std::string shell_quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// For a program that was not found although its name reads as a shell command line: how to run
// it with the shell. The argv is kept exact (PRODUCT.md: no shell re-splits it), so the command
// fails rather than being run through a shell behind the user's back.
std::string shell_hint(const wire::ExecStart& start) {
  if (start.login || start.shell || start.argv.empty()) return {};
  const std::string& program = start.argv.front();
  if (program.find_first_of(kShellSyntax) == std::string::npos) return {};
  if (start.argv.size() == 1)
    return fmt::format("; to run it with /bin/sh, use -c {}", shell_quoted(program));
  return "; to run a shell command line, give it as one string after -c";
}

// Why the command never ran, or empty when it did.
std::string start_error(const wire::Exit& e, const wire::ExecStart& start) {
  if (e.how == How::bad_cwd) {
    const std::string where = start.cwd.empty() ? std::string("the home directory")
                                                : fmt::format("directory '{}'", start.cwd);
    return fmt::format("cannot change to {} on the server: {}", where, errno_text(e.code));
  }
  if (e.how != How::not_started) return {};
  const std::string what = start.login          ? std::string("the login shell")
                           : start.shell        ? std::string("/bin/sh")
                           : start.argv.empty() ? std::string("the command")
                                                : fmt::format("'{}'", start.argv.front());
  if (exit_status_for_exec_errno(e.code) == kExitNotFound)
    return fmt::format("cannot run {}: command not found{}", what, shell_hint(start));
  return fmt::format("cannot run {}: {}", what, errno_text(e.code));
}

// The human sentence for a server limit that ended the command (empty for none).
std::string limit_sentence(const wire::Exit& e) {
  switch (e.limit) {
    case wire::Exit::Limit::none: return {};
    case wire::Exit::Limit::timeout:
      return fmt::format("command ended: timeout (after {:.1f} s)",
                         static_cast<double>(e.duration_us) / 1e6);
    case wire::Exit::Limit::output: return "command ended: output limit reached";
    case wire::Exit::Limit::shutdown: return "command ended: the server is shutting down";
  }
  return {};
}

}  // namespace

int exit_status(const wire::Exit& e) noexcept {
  switch (e.how) {
    case How::exited: return e.code & 0xff;
    case How::signaled: return exit_status_for_signal(e.code);
    case How::not_started: return exit_status_for_exec_errno(e.code);
    case How::bad_cwd: return kExitCannotExecute;
  }
  return kExitConnection;
}

int exit_status(const ExecResult& r) noexcept {
  if (const auto* e = r.exit()) return exit_status(*e);
  if (const int s = r.local_signal()) return exit_status_for_signal(s);
  return kExitConnection;
}

std::string end_message(const ExecResult& r, const wire::ExecStart& start) {
  if (const auto* f = r.failure())
    return f->code || !f->detail.empty() ? f->message()
                                         : "the session ended without an exit status";
  if (const int s = r.local_signal()) {
    if (s == SIGPIPE) return {};  // a broken pipe is not news to whoever closed it
    if (s == SIGINT) return "interrupted: disconnected (the server ends the command)";
    return fmt::format("disconnected on {}", signal_name(s));
  }
  const wire::Exit& e = *r.exit();
  if (std::string why = start_error(e, start); !why.empty()) return why;
  return limit_sentence(e);
}

std::string result_json(const ExecResult& r, std::string_view out, std::string_view err,
                        const wire::ExecStart& start) {
  using json = nlohmann::ordered_json;
  json j;
  auto put_stream = [&](const char* name, std::string_view s) {
    j[name] = std::string(s);  // invalid UTF-8 is replaced by U+FFFD when dumped
    if (!is_valid_utf8(s)) j[std::string(name) + "_base64"] = base64(s);
  };
  put_stream("stdout", out);
  put_stream("stderr", err);
  const wire::Exit* e = r.exit();
  j["exit_code"] = nullptr;
  j["signal"] = nullptr;
  if (e && e->how == How::signaled)
    j["signal"] = e->code;
  else if (e)
    j["exit_code"] = exit_status(*e);
  const double ms =
      e ? static_cast<double>(e->duration_us) / 1e3 : static_cast<double>(r.elapsed.count()) / 1e3;
  j["duration_ms"] = std::round(ms * 1000.0) / 1000.0;
  j["limit"] = nullptr;
  if (e && e->limit != wire::Exit::Limit::none) j["limit"] = wire::limit_name(e->limit);
  j["error"] = nullptr;
  if (r.failure())
    j["error"] = end_message(r, start);
  else if (const int s = r.local_signal())
    j["error"] = fmt::format("interrupted by {}", signal_name(s));
  j["start_error"] = nullptr;
  j["start_failure"] = nullptr;
  if (e && (e->how == How::not_started || e->how == How::bad_cwd)) {
    j["start_error"] = start_error(*e, start);
    j["start_failure"] = e->how == How::bad_cwd ? "cwd" : "program";
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace duplex::client
