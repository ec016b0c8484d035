// Exec client: runs one remote command over a framed connection and maps how it ended.
// AUTH, EXEC_START, then stdin, signals and window size out, stdout/stderr in, until EXIT. Also
// the pure pieces `exec` and `shell` share: exit status, the one-line reason, --json, --encoding.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

/// What to run, where, and how the local side behaves meanwhile.
struct ExecRequest {
  net::Endpoint endpoint;
  std::string token;      // sent in AUTH; empty asks for the transport's identity (SO_PEERCRED)
  wire::ExecStart start;  // sent as is (checked against the server's max_frame first)
  int stdin_fd = 0;       // forwarded as STDIN_DATA then STDIN_EOF; -1: STDIN_EOF at once (ssh -n)
  std::chrono::milliseconds connect_timeout{10'000};  // dial + handshake + AUTH; zero: no limit
  std::vector<int> forward_signals;  // each delivery is sent as SIGNAL{signo}; the session goes on
  std::vector<int> stop_signals;     // each ends the session here: we disconnect, the server
                                     // kills the command (the shell's SIGTERM/SIGHUP)
  bool double_interrupt_stops = false;  // a SIGINT within 2 s of a forwarded one ends the session
  std::string agent = "duplex";         // HELLO's agent string
};

/// Where the command's output goes and how the local terminal is consulted. All hooks run on
/// the io_context's thread, one at a time; a hook may block (a blocking write to a slow stdout
/// stops us reading the socket, which is the backpressure the server relies on).
struct ExecHooks {
  /// Bytes from STDOUT_DATA. Returns false when they can no longer be written (EPIPE): the
  /// session then ends as a local SIGPIPE would end a local command (exit 141).
  std::function<bool(ByteView)> on_stdout;
  std::function<void(ByteView)> on_stderr;
  /// Called once EXEC_START is sent, before any output arrives (the shell enters raw mode here).
  std::function<void()> on_started;
  /// Set to send WINDOW_SIZE on SIGWINCH: returns the terminal's new size (nullopt: not sent).
  std::function<std::optional<wire::WindowSize>()> window_size;
};

/// A `window_size` hook that reads the size of the terminal on `fd` (for `shell` and `exec -t`).
std::function<std::optional<wire::WindowSize>()> window_size_of(int fd);

/// How a session ended: exactly one of `exit`, `error`, `local_signal` is set.
struct ExecResult {
  std::optional<wire::Exit> exit;  // the server's EXIT
  std::string error;               // one line: connection, protocol, or authentication failure
  int local_signal = 0;            // a local signal (or SIGPIPE on stdout) ended the session first
  std::string identity;            // AUTH_OK's identity, when authenticated
  std::chrono::microseconds elapsed{};  // wall time measured here, connection included
};

/// Runs one command to its end. Never throws for a session failure (it is in `error`); throws
/// only what it cannot turn into a result (bad_alloc, a signal number signal_set refuses).
/// `req` and `hooks` must outlive the coroutine.
awaitable<ExecResult> run_exec(const ExecRequest& req, const ExecHooks& hooks);

/// ssh's convention (PRODUCT.md): the remote status; 128+N killed by signal N; 127 not found,
/// 126 cannot execute; 255 for our own failure; 128+N for a local signal N that ended us.
int exit_status(const ExecResult& r) noexcept;

/// The one line (without "duplex: ") the user should see on stderr, or empty: the failure, the
/// limit that ended the command, or why it could not start. `start` names the command.
std::string end_message(const ExecResult& r, const wire::ExecStart& start);

/// The --json object: {"stdout","stderr","exit_code","signal","duration_ms","limit","error",
/// "start_error"}. A stream that is not valid UTF-8 is shown with U+FFFD replacements and given
/// exactly in "<name>_base64" as well.
std::string result_json(const ExecResult& r, std::string_view out, std::string_view err);

/// The token to send: the file `token_file` when given, else $DUPLEX_TOKEN, else the default
/// token file when it exists, else empty (the server then uses the transport's identity).
/// On failure `why` gets a one-line reason.
Result<std::string> resolve_token(const std::string& token_file, std::string& why);

/// Writes all of `b` to `fd`, waiting with poll(2) if fd is non-blocking. False on an error
/// (EPIPE: the reader went away).
bool write_all(int fd, ByteView b) noexcept;

/// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// Converts a byte stream from one character set to UTF-8 (iconv(3)) chunk by chunk: a
/// multibyte sequence split across chunks is carried to the next one; an invalid sequence
/// becomes U+FFFD. Not thread-safe.
class Transcoder {
 public:
  /// Throws std::invalid_argument when iconv does not know `from` ("gbk", "latin1", ...).
  explicit Transcoder(const std::string& from);
  ~Transcoder();
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

  /// Converts what it can of `carry + in`; keeps an incomplete trailing sequence for later.
  std::string feed(ByteView in);
  /// End of stream: an incomplete sequence left over becomes U+FFFD.
  std::string finish();

 private:
  void* cd_;  // iconv_t
  std::string carry_;
};

}  // namespace duplex::client
