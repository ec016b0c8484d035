// Typed messages <-> frame payloads (docs/PROTOCOL.md). Pure: no I/O, no exceptions, no logging.
// Data messages (upper_request/reply, stdin/stdout/stderr) have no struct: their payload is the
// bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "duplex/core/bytes.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/core/result.hpp"
#include "duplex/wire/frame.hpp"

namespace duplex::wire {

/// Client's opening message: the protocol versions it speaks and a free-form agent string.
struct Hello {
  std::uint16_t min_version = kProtocolVersion;
  std::uint16_t max_version = kProtocolVersion;
  std::string agent;
  bool operator==(const Hello&) const = default;
};

/// Server's answer to Hello: the chosen version and the largest frame payload it accepts.
struct Welcome {
  std::uint16_t version = kProtocolVersion;
  std::uint32_t max_frame = 0;
  std::string agent;
  bool operator==(const Welcome&) const = default;
};

/// A refusal or protocol breach. The sender closes after it. `code` is a duplex::errc value.
struct Error {
  std::uint16_t code = 0;
  std::string text;
  bool operator==(const Error&) const = default;
};

/// Authentication by the transport's identity alone (SO_PEERCRED on a Unix socket, the client
/// key over TLS): the token must be empty. A server refuses a non-empty one (the token is never
/// sent: old clients that send it in clear are refused, and it is never compared).
struct Auth {
  std::string token;
  bool operator==(const Auth&) const = default;
};

/// 32 bytes: a nonce, a proof (HMAC-SHA256) — the fields of the token's challenge-response.
using AuthBlock = std::array<std::byte, 32>;

/// Opens authentication: the client's nonce Nc. The server answers AUTH_OK (the transport
/// identity suffices), AUTH_CHALLENGE (prove the token), or ERROR auth_failed.
struct AuthStart {
  AuthBlock client_nonce{};
  bool operator==(const AuthStart&) const = default;
};

/// The server's nonce Ns and its proof that it knows the token:
/// HMAC-SHA256(K, "duplex-auth server v1" || B || Nc || Ns), K = SHA-256(token), B the channel
/// binding (docs/PROTOCOL.md).
struct AuthChallenge {
  AuthBlock server_nonce{};
  AuthBlock server_proof{};
  bool operator==(const AuthChallenge&) const = default;
};

/// The client's proof: HMAC-SHA256(K, "duplex-auth client v1" || B || Nc || Ns).
struct AuthProof {
  AuthBlock client_proof{};
  bool operator==(const AuthProof&) const = default;
};

struct AuthOk {
  std::string identity;  // how the server knows the client, for display ("uid 1000", "token")
  /// The largest frame payload the server accepts now that the client is authenticated
  /// (before, WELCOME's smaller limit applied).
  std::uint32_t max_frame = 0;
  bool operator==(const AuthOk&) const = default;
};

/// Start a command. argv is exact (no shell re-splits it) unless `shell` is set, in which case
/// argv holds one string run with /bin/sh -c. With `login`, argv is empty and the server runs
/// the account's login shell (`duplex shell`).
struct ExecStart {
  std::vector<std::string> argv;
  bool shell = false;
  bool login = false;
  std::vector<std::pair<std::string, std::string>>
      env;                       // added to the server's minimal environment
  std::string cwd;               // empty: the server's default
  std::uint32_t timeout_ms = 0;  // 0: the server's limit
  bool pty = false;
  std::uint16_t rows = 0, cols = 0;  // initial window size when pty
  std::string term;                  // TERM when pty
  bool operator==(const ExecStart&) const = default;
};

/// Deliver a signal to the command's process group. Linux signal numbers.
struct Signal {
  std::int32_t signo = 0;
  bool operator==(const Signal&) const = default;
};

struct WindowSize {
  std::uint16_t rows = 0, cols = 0;
  bool operator==(const WindowSize&) const = default;
};

/// Stdin credit: the client may send this many more bytes of STDIN_DATA payload. The server
/// grants its stdin queue's size when the command starts, then what the command has read.
struct StdinWindow {
  std::uint32_t bytes = 0;
  bool operator==(const StdinWindow&) const = default;
};

/// STATS_REQUEST: empty. Its reply, STATS_REPLY, is JSON text (docs/PROTOCOL.md, Stats), parsed
/// by the client with a JSON library, not here.
struct StatsRequest {
  bool operator==(const StatsRequest&) const = default;
};

/// The last frame of a command: sent after both output streams reached EOF and the child was
/// reaped.
struct Exit {
  /// not_started: the program could not be executed (code = execve's errno);
  /// bad_cwd: the working directory could not be entered (code = chdir's errno).
  enum class How : std::uint8_t { exited = 0, signaled = 1, not_started = 2, bad_cwd = 3 };
  enum class Limit : std::uint8_t { none = 0, timeout = 1, output = 2, shutdown = 3 };
  How how = How::exited;
  std::int32_t code = 0;  // exit status, signal number, or errno when not_started/bad_cwd
  std::uint64_t duration_us = 0;
  Limit limit = Limit::none;  // which server limit ended the command, if any
  bool operator==(const Exit&) const = default;
};

// encode(m, out) appends a whole frame (header + payload) to out.
void encode(const Hello& m, Bytes& out);
void encode(const Welcome& m, Bytes& out);
void encode(const Error& m, Bytes& out);
void encode(const Auth& m, Bytes& out);
void encode(const AuthStart& m, Bytes& out);
void encode(const AuthChallenge& m, Bytes& out);
void encode(const AuthProof& m, Bytes& out);
void encode(const AuthOk& m, Bytes& out);
void encode(const ExecStart& m, Bytes& out);
void encode(const Signal& m, Bytes& out);
void encode(const WindowSize& m, Bytes& out);
void encode(const StdinWindow& m, Bytes& out);
void encode(const Exit& m, Bytes& out);
void encode(const StatsRequest& m, Bytes& out);

// decode_X(payload) parses a frame payload of the matching type. Trailing bytes, truncated fields,
// out-of-range enums and absurd counts are errc::bad_message.
Result<Hello> decode_hello(ByteView payload) noexcept;
Result<Welcome> decode_welcome(ByteView payload) noexcept;
Result<Error> decode_error(ByteView payload) noexcept;
Result<Auth> decode_auth(ByteView payload) noexcept;
Result<AuthStart> decode_auth_start(ByteView payload) noexcept;
Result<AuthChallenge> decode_auth_challenge(ByteView payload) noexcept;
Result<AuthProof> decode_auth_proof(ByteView payload) noexcept;
Result<AuthOk> decode_auth_ok(ByteView payload) noexcept;
Result<ExecStart> decode_exec_start(ByteView payload) noexcept;
Result<Signal> decode_signal(ByteView payload) noexcept;
Result<WindowSize> decode_window_size(ByteView payload) noexcept;
Result<StdinWindow> decode_stdin_window(ByteView payload) noexcept;
Result<Exit> decode_exit(ByteView payload) noexcept;
Result<StatsRequest> decode_stats_request(ByteView payload) noexcept;

/// The limit's name for logs and JSON: "none", "timeout", "output", "shutdown".
const char* limit_name(Exit::Limit l) noexcept;

/// An Error message for one of our codes, with the code's standard text when `text` is empty.
Error make_error(errc code, std::string text = {});

}  // namespace duplex::wire
