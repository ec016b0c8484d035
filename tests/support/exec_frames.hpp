// The exec messages of docs/PROTOCOL.md built and read by hand, and a blocking raw-frame exec
// client, so that tests drive `duplex serve --exec` without trusting src/wire or our own client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/frames.hpp"
#include "support/socket_client.hpp"

namespace duplex::test {

namespace msg {
inline constexpr std::uint8_t stdin_window = 0x28;  // server -> client: u32 bytes of stdin credit
}  // namespace msg

/// Error codes of docs/PROTOCOL.md §6 that the exec tests meet.
namespace err {
inline constexpr std::uint16_t shutting_down = 32;
inline constexpr std::uint16_t service_disabled = 33;
inline constexpr std::uint16_t auth_failed = 34;
inline constexpr std::uint16_t auth_required = 35;
inline constexpr std::uint16_t limit_exceeded = 36;
}  // namespace err

/// EXEC_START fields; the defaults are a plain argv command without a PTY.
struct ExecRequest {
  std::vector<std::string> argv;
  bool shell = false;  // flags bit 0: argv[0] run with /bin/sh -c
  bool pty = false;    // flags bit 1
  bool login = false;  // flags bit 2: the account's login shell, empty argv
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;
  std::uint32_t timeout_ms = 0;
  std::uint16_t rows = 0, cols = 0;
  std::string term;
};

/// `str`: u32 length then the bytes.
void put_str(std::string& out, std::string_view s);

std::string auth_frame(std::string_view token);
std::string exec_start_frame(const ExecRequest& r);
std::string stdin_frame(std::string_view data);
std::string stdin_eof_frame();
std::string signal_frame(std::int32_t signo);
std::string window_size_frame(std::uint16_t rows, std::uint16_t cols);

/// EXIT fields.
struct ExitPayload {
  enum How : std::uint8_t { exited = 0, signaled = 1, not_started = 2, bad_cwd = 3 };
  enum Limit : std::uint8_t { none = 0, timeout = 1, output = 2, shutdown = 3 };
  std::uint8_t how = 0;
  std::int32_t code = 0;
  std::uint64_t duration_us = 0;
  std::uint8_t limit = 0;
};
/// Strict decode of an EXIT payload (u8 how, i32 code, u64 duration_us, u8 limit).
std::optional<ExitPayload> parse_exit(std::string_view p);
/// Strict decode of a payload that is one `str` (AUTH_OK's identity).
std::optional<std::string> parse_str(std::string_view p);
/// "exited 7", "signaled 15 (limit 1)", "not started 2": for assertion messages.
std::string describe(const ExitPayload& e);

/// Reads frames from a socket through its own buffer (fast enough for hundreds of megabytes).
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  /// The next frame; nullopt when the peer closed (EOF or reset) at a frame boundary. Throws on
  /// timeout and on a connection that ends inside a frame.
  std::optional<RawFrame> next(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Bytes received and not yet returned as frames.
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);  // false on EOF
  int fd_;
  std::string buf_;
  std::size_t pos_ = 0;
};

/// What a command sent back, frame by frame.
struct ExecOutcome {
  std::string welcome_agent;
  std::optional<std::string> identity;  // AUTH_OK
  std::string out, err;                 // STDOUT_DATA / STDERR_DATA payloads, concatenated
  std::optional<ExitPayload> exit;
  std::optional<ErrorPayload> error;
  std::vector<std::uint8_t> types;  // every frame type in arrival order
  std::uint64_t stdin_granted = 0;  // STDIN_WINDOW grants, summed
  bool closed = false;              // the server closed the connection
};

/// Streaming handlers: when set, STDOUT/STDERR payloads go to them instead of ExecOutcome.
struct OutputSinks {
  std::function<void(std::string_view)> out, err;
};

/// A blocking raw-frame exec client over one connection.
class ExecClient {
 public:
  explicit ExecClient(const std::string& url);

  SocketClient& socket() { return sock_; }
  FrameReader& reader() { return reader_; }
  void send(std::string_view bytes) { sock_.send_all(bytes); }

  /// Preface + HELLO, AUTH (unless token is nullopt), EXEC_START: one write, pipelined as
  /// PROTOCOL.md allows.
  void start(const std::optional<std::string>& token, const ExecRequest& req);
  /// STDIN_DATA frames of at most `chunk` bytes each.
  void send_stdin(std::string_view data, std::size_t chunk = 64 * 1024);
  void send_eof() { send(stdin_eof_frame()); }
  void send_signal(int signo) { send(signal_frame(signo)); }

  /// Reads frames until one of `type` arrives (recording the others in `outcome`); throws if the
  /// connection ends or an EXIT/ERROR comes first.
  RawFrame wait_for(std::uint8_t type,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Reads until stdout holds `text` (throws on EXIT, ERROR, EOF or timeout first).
  void wait_for_stdout(std::string_view text,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Reads frames until EXIT or ERROR (ERROR: then until the server closes).
  ExecOutcome& finish(std::chrono::milliseconds timeout = std::chrono::seconds(30),
                      const OutputSinks* sinks = nullptr);
  /// After EXIT: half-closes and checks that the server sends nothing more and closes.
  ::testing::AssertionResult exit_was_last(
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  ExecOutcome& outcome() { return outcome_; }

 private:
  /// Handles one frame; true when it ends the command (EXIT or ERROR).
  bool take(RawFrame f, const OutputSinks* sinks);

  SocketClient sock_;
  FrameReader reader_;
  ExecOutcome outcome_;
};

/// One whole command: connect, start, send `input` (then STDIN_EOF unless `eof` is false), and
/// read to EXIT/ERROR. Large input is written from a second thread while output is read.
ExecOutcome exec_once(const std::string& url, const std::optional<std::string>& token,
                      const ExecRequest& req, std::string_view input = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace duplex::test
