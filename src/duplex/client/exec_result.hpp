// How an exec session ended, and what a user is shown for it: exit status, one line, --json.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <variant>

#include "duplex/core/result.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

/// A local signal (or SIGPIPE on our stdout) ended the session before the command's EXIT.
struct LocalSignal {
  int signo = 0;
};

/// How a session ended: the server's EXIT; our own failure (connection, protocol or
/// authentication; `detail` is the one line to show); or a local signal.
using ExecEnd = std::variant<Failure, wire::Exit, LocalSignal>;

struct ExecResult {
  ExecEnd end;           // a default-constructed result is a failure without a reason
  std::string identity;  // AUTH_OK's identity, when authenticated
  std::chrono::microseconds elapsed{};  // wall time measured here, connection included

  const wire::Exit* exit() const noexcept { return std::get_if<wire::Exit>(&end); }
  const Failure* failure() const noexcept { return std::get_if<Failure>(&end); }
  /// The local signal that ended the session, or 0.
  int local_signal() const noexcept {
    const auto* s = std::get_if<LocalSignal>(&end);
    return s ? s->signo : 0;
  }
};

/// ssh's convention (README): the remote status; 128+N killed by signal N; 127 not found,
/// 126 cannot execute or no such working directory; 255 (kExitConnection) for our own failure;
/// 128+N for a local signal N that ended us.
int exit_status(const ExecResult& r) noexcept;

/// The status a command-line client reports for the server's EXIT.
int exit_status(const wire::Exit& e) noexcept;

/// The one line (without "duplex: ") the user should see on stderr, or empty: the failure, the
/// limit that ended the command, or why it could not start. `start` names the command and its
/// working directory.
std::string end_message(const ExecResult& r, const wire::ExecStart& start);

/// The --json object: {"stdout","stderr","exit_code","signal","duration_ms","limit","error",
/// "start_error","start_failure"}. "start_failure" says what could not start: "program" or
/// "cwd" (null otherwise), with the line in "start_error". A stream that is not valid UTF-8 is
/// shown with U+FFFD replacements and given exactly in "<name>_base64" as well.
std::string result_json(const ExecResult& r, std::string_view out, std::string_view err,
                        const wire::ExecStart& start);

}  // namespace duplex::client
