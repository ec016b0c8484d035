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
inline constexpr std::uint8_t stdin_window = 0x28;    // server -> client: u32 bytes of stdin credit
inline constexpr std::uint8_t auth_start = 0x0A;      // client -> server: 32-byte nonce
inline constexpr std::uint8_t auth_challenge = 0x0B;  // server -> client: nonce + proof
inline constexpr std::uint8_t auth_proof = 0x0C;      // client -> server: 32-byte proof
}  // namespace msg

/// Error codes of docs/PROTOCOL.md §6 that the exec tests meet.
namespace err {
inline constexpr std::uint16_t shutting_down = 32;
inline constexpr std::uint16_t service_disabled = 33;
inline constexpr std::uint16_t auth_failed = 34;
inline constexpr std::uint16_t auth_required = 35;
inline constexpr std::uint16_t limit_exceeded = 36;
inline constexpr std::uint16_t insecure_channel = 38;
inline constexpr std::uint16_t penalised = 39;
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

/// AUTH with a token in it: only an old client does that, and the server refuses it. An empty
/// token asks for the transport's identity.
std::string auth_frame(std::string_view token);

/// The token's challenge-response of docs/PROTOCOL.md, computed here with OpenSSL directly
/// (not with src/wire), over a plain stream (binding: 32 zero bytes).
namespace auth {
using Block = std::string;                // 32 bytes
std::string key(std::string_view token);  // SHA-256(token)
std::string server_proof(std::string_view key, std::string_view binding, std::string_view nc,
                         std::string_view ns);
std::string client_proof(std::string_view key, std::string_view binding, std::string_view nc,
                         std::string_view ns);
std::string zero_binding();
std::string nonce();  // 32 random bytes
std::string start_frame(std::string_view nc);
std::string proof_frame(std::string_view proof);
/// Lower-case hex of `bytes`, and back.
std::string hex_of(std::string_view bytes);
std::string unhex(std::string_view hex);
/// Whether `recorded` (what a fake server or relay saw) holds any trace of `token`: raw,
/// hex-decoded (the file holds hex), its SHA-256 (the key K) raw and in hex; any 8-byte window.
::testing::AssertionResult holds_no_trace_of(const std::string& recorded, const std::string& token);
}  // namespace auth
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
  std::optional<std::string> identity;          // AUTH_OK
  std::optional<std::uint32_t> auth_max_frame;  // AUTH_OK's frame limit
  bool server_proof_ok = false;                 // AUTH_CHALLENGE proved the server knows the token
  std::string out, err;                         // STDOUT_DATA / STDERR_DATA payloads, concatenated
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
  /// Over a connection the test made itself (from a chosen source address, after a PROXY header).
  explicit ExecClient(SocketClient sock);

  SocketClient& socket() { return sock_; }
  FrameReader& reader() { return reader_; }
  void send(std::string_view bytes) { sock_.send_all(bytes); }

  /// Preface + HELLO, authentication, EXEC_START. token nullopt: no authentication at all; empty:
  /// AUTH{""} (the transport's identity), pipelined with EXEC_START in one write as PROTOCOL.md
  /// allows; a token: AUTH_START, then (after AUTH_CHALLENGE, whose server proof is checked)
  /// AUTH_PROOF with EXEC_START. When the server refuses instead of challenging, its ERROR is in
  /// outcome() and nothing more is sent.
  void start(const std::optional<std::string>& token, const ExecRequest& req);
  /// Over a plain stream: the server proves the token and so do we; true at AUTH_OK. The frames
  /// read are recorded; false (with the ERROR in outcome()) when the server refused. Sends the
  /// preface and HELLO first unless `with_hello` is false (they were sent already).
  bool authenticate(std::string_view token, bool with_hello = true);
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
