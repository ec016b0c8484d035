// Typed messages <-> frame payloads, laid out as docs/PROTOCOL.md section 5 says. No I/O, no
// throws.
#include "duplex/wire/messages.hpp"

#include <algorithm>
#include <string_view>

namespace duplex::wire {
namespace {

// Wire limits of ExecStart (docs/PROTOCOL.md). Far above what execve(2) accepts in practice;
// they exist so that a count field can never make the decoder reserve absurd amounts.
constexpr std::uint16_t kMaxArgc = 4096;
constexpr std::uint16_t kMaxEnvc = 4096;
constexpr std::uint8_t kExecShell = 0x01;
constexpr std::uint8_t kExecPty = 0x02;
constexpr std::uint8_t kExecLogin = 0x04;
constexpr std::int32_t kMaxSignal = 64;  // SIGRTMAX on Linux, signal(7)
constexpr std::size_t kStrHeader = 4;    // u32 length in front of every string

// Writes the header with a zero length, lets `body` append the payload, then patches the length.
// One pass, no temporary buffer.
template <class Body>
void append_frame(MsgType type, Bytes& out, Body&& body) {
  const std::size_t start = out.size();
  encode_header(type, 0, out);
  ByteWriter w(out);
  body(w);
  const auto len = static_cast<std::uint32_t>(out.size() - start - kHeaderSize);
  for (std::size_t i = 0; i < 4; ++i)
    out[start + i] = static_cast<std::byte>((len >> (8 * (3 - i))) & 0xffu);
}

// Strings that reach execve(2)/chdir(2) as C strings: an embedded NUL would silently cut them.
bool has_nul(std::string_view s) noexcept {
  return s.find('\0') != std::string_view::npos;
}

// environ(7): NAME=value, so a name can be neither empty nor contain '='.
bool valid_env_key(std::string_view k) noexcept {
  return !k.empty() && k.find('=') == std::string_view::npos && !has_nul(k);
}

// A fixed-size field (nonce, proof): exactly its 32 bytes, no length prefix.
bool read_block(ByteReader& r, AuthBlock& into) noexcept {
  const ByteView b = r.raw(into.size());
  if (r.failed()) return false;
  std::copy(b.begin(), b.end(), into.begin());
  return true;
}

template <class T>
Result<T> bad() noexcept {
  return Result<T>(errc::bad_message);
}

}  // namespace

void encode(const Hello& m, Bytes& out) {
  append_frame(MsgType::hello, out, [&](ByteWriter& w) {
    w.u16(m.min_version);
    w.u16(m.max_version);
    w.str(m.agent);
  });
}

void encode(const Welcome& m, Bytes& out) {
  append_frame(MsgType::welcome, out, [&](ByteWriter& w) {
    w.u16(m.version);
    w.u32(m.max_frame);
    w.str(m.agent);
  });
}

void encode(const Error& m, Bytes& out) {
  append_frame(MsgType::error, out, [&](ByteWriter& w) {
    w.u16(m.code);
    w.str(m.text);
  });
}

void encode(const Auth& m, Bytes& out) {
  append_frame(MsgType::auth, out, [&](ByteWriter& w) { w.str(m.token); });
}

void encode(const AuthStart& m, Bytes& out) {
  append_frame(MsgType::auth_start, out, [&](ByteWriter& w) { w.raw(m.client_nonce); });
}

void encode(const AuthChallenge& m, Bytes& out) {
  append_frame(MsgType::auth_challenge, out, [&](ByteWriter& w) {
    w.raw(m.server_nonce);
    w.raw(m.server_proof);
  });
}

void encode(const AuthProof& m, Bytes& out) {
  append_frame(MsgType::auth_proof, out, [&](ByteWriter& w) { w.raw(m.client_proof); });
}

void encode(const AuthOk& m, Bytes& out) {
  append_frame(MsgType::auth_ok, out, [&](ByteWriter& w) {
    w.str(m.identity);
    w.u32(m.max_frame);
  });
}

void encode(const ExecStart& m, Bytes& out) {
  append_frame(MsgType::exec_start, out, [&](ByteWriter& w) {
    std::uint8_t flags = 0;
    if (m.shell) flags |= kExecShell;
    if (m.pty) flags |= kExecPty;
    if (m.login) flags |= kExecLogin;
    w.u8(flags);
    w.u16(static_cast<std::uint16_t>(m.argv.size()));
    for (const auto& a : m.argv)
      w.str(a);
    w.u16(static_cast<std::uint16_t>(m.env.size()));
    for (const auto& [k, v] : m.env) {
      w.str(k);
      w.str(v);
    }
    w.str(m.cwd);
    w.u32(m.timeout_ms);
    w.u16(m.rows);
    w.u16(m.cols);
    w.str(m.term);
  });
}

void encode(const Signal& m, Bytes& out) {
  append_frame(MsgType::signal, out,
               [&](ByteWriter& w) { w.u32(static_cast<std::uint32_t>(m.signo)); });
}

void encode(const WindowSize& m, Bytes& out) {
  append_frame(MsgType::window_size, out, [&](ByteWriter& w) {
    w.u16(m.rows);
    w.u16(m.cols);
  });
}

void encode(const StdinWindow& m, Bytes& out) {
  append_frame(MsgType::stdin_window, out, [&](ByteWriter& w) { w.u32(m.bytes); });
}

void encode(const StatsRequest&, Bytes& out) {
  append_frame(MsgType::stats_request, out, [](ByteWriter&) {});
}

void encode(const Exit& m, Bytes& out) {
  append_frame(MsgType::exit, out, [&](ByteWriter& w) {
    w.u8(static_cast<std::uint8_t>(m.how));
    w.u32(static_cast<std::uint32_t>(m.code));
    w.u64(m.duration_us);
    w.u8(static_cast<std::uint8_t>(m.limit));
  });
}

Result<Hello> decode_hello(ByteView payload) noexcept {
  ByteReader r(payload);
  Hello m;
  m.min_version = r.u16();
  m.max_version = r.u16();
  m.agent = r.str();
  if (!r.done()) return bad<Hello>();
  return m;
}

Result<Welcome> decode_welcome(ByteView payload) noexcept {
  ByteReader r(payload);
  Welcome m;
  m.version = r.u16();
  m.max_frame = r.u32();
  m.agent = r.str();
  if (!r.done()) return bad<Welcome>();
  return m;
}

Result<Error> decode_error(ByteView payload) noexcept {
  ByteReader r(payload);
  Error m;
  // Any code is accepted: codes are only ever added, and an ERROR from a newer peer must still
  // reach the user (its text says what happened). is_known_errc() tells callers which it is.
  m.code = r.u16();
  m.text = r.str();
  if (!r.done()) return bad<Error>();
  return m;
}

Result<Auth> decode_auth(ByteView payload) noexcept {
  ByteReader r(payload);
  Auth m;
  m.token = r.str();  // opaque bytes: NUL included, compared as-is by the server
  if (!r.done()) return bad<Auth>();
  return m;
}

Result<AuthStart> decode_auth_start(ByteView payload) noexcept {
  ByteReader r(payload);
  AuthStart m;
  if (!read_block(r, m.client_nonce) || !r.done()) return bad<AuthStart>();
  return m;
}

Result<AuthChallenge> decode_auth_challenge(ByteView payload) noexcept {
  ByteReader r(payload);
  AuthChallenge m;
  if (!read_block(r, m.server_nonce) || !read_block(r, m.server_proof) || !r.done())
    return bad<AuthChallenge>();
  return m;
}

Result<AuthProof> decode_auth_proof(ByteView payload) noexcept {
  ByteReader r(payload);
  AuthProof m;
  if (!read_block(r, m.client_proof) || !r.done()) return bad<AuthProof>();
  return m;
}

Result<AuthOk> decode_auth_ok(ByteView payload) noexcept {
  ByteReader r(payload);
  AuthOk m;
  m.identity = r.str();
  m.max_frame = r.u32();
  if (!r.done()) return bad<AuthOk>();
  return m;
}

Result<ExecStart> decode_exec_start(ByteView payload) noexcept {
  ByteReader r(payload);
  ExecStart m;
  const std::uint8_t flags = r.u8();
  if ((flags & ~(kExecShell | kExecPty | kExecLogin)) != 0) return bad<ExecStart>();
  m.shell = (flags & kExecShell) != 0;
  m.pty = (flags & kExecPty) != 0;
  m.login = (flags & kExecLogin) != 0;
  // A login shell is the account's own shell: it takes no argv, and is not also a -c script.
  if (m.login && m.shell) return bad<ExecStart>();

  const std::uint16_t argc = r.u16();
  // Each string is at least its 4-byte length: check before reserving so a short payload
  // cannot make us allocate for 4096 entries.
  if ((argc == 0 && !m.login) || (argc != 0 && m.login) || argc > kMaxArgc ||
      r.remaining() < std::size_t{argc} * kStrHeader)
    return bad<ExecStart>();
  // With `shell` the one string is the script for /bin/sh -c (messages.hpp).
  if (m.shell && argc != 1) return bad<ExecStart>();
  m.argv.reserve(argc);
  for (std::uint16_t i = 0; i < argc; ++i) {
    const std::string_view a = r.str();
    if (r.failed() || has_nul(a)) return bad<ExecStart>();
    m.argv.emplace_back(a);
  }

  const std::uint16_t envc = r.u16();
  if (r.failed() || envc > kMaxEnvc || r.remaining() < std::size_t{envc} * 2 * kStrHeader)
    return bad<ExecStart>();
  m.env.reserve(envc);
  for (std::uint16_t i = 0; i < envc; ++i) {
    const std::string_view k = r.str();
    const std::string_view v = r.str();
    if (r.failed() || !valid_env_key(k) || has_nul(v)) return bad<ExecStart>();
    m.env.emplace_back(std::string(k), std::string(v));
  }

  const std::string_view cwd = r.str();
  m.timeout_ms = r.u32();
  m.rows = r.u16();
  m.cols = r.u16();
  const std::string_view term = r.str();
  if (!r.done() || has_nul(cwd) || has_nul(term)) return bad<ExecStart>();
  m.cwd = cwd;
  m.term = term;
  return m;
}

Result<Signal> decode_signal(ByteView payload) noexcept {
  ByteReader r(payload);
  Signal m;
  // Two's complement conversion is defined since C++20; negative values fail the range check.
  m.signo = static_cast<std::int32_t>(r.u32());
  if (!r.done() || m.signo < 1 || m.signo > kMaxSignal) return bad<Signal>();
  return m;
}

Result<WindowSize> decode_window_size(ByteView payload) noexcept {
  ByteReader r(payload);
  WindowSize m;
  m.rows = r.u16();
  m.cols = r.u16();
  if (!r.done()) return bad<WindowSize>();
  return m;
}

Result<StdinWindow> decode_stdin_window(ByteView payload) noexcept {
  ByteReader r(payload);
  StdinWindow m;
  m.bytes = r.u32();
  if (!r.done()) return bad<StdinWindow>();
  return m;
}

Result<StatsRequest> decode_stats_request(ByteView payload) noexcept {
  if (!payload.empty()) return bad<StatsRequest>();
  return StatsRequest{};
}

Result<Exit> decode_exit(ByteView payload) noexcept {
  ByteReader r(payload);
  Exit m;
  const std::uint8_t how = r.u8();
  m.code = static_cast<std::int32_t>(r.u32());
  m.duration_us = r.u64();
  const std::uint8_t limit = r.u8();
  if (!r.done() || how > static_cast<std::uint8_t>(Exit::How::bad_cwd) ||
      limit > static_cast<std::uint8_t>(Exit::Limit::shutdown))
    return bad<Exit>();
  m.how = static_cast<Exit::How>(how);
  m.limit = static_cast<Exit::Limit>(limit);
  return m;
}

const char* limit_name(Exit::Limit l) noexcept {
  switch (l) {
    case Exit::Limit::none: return "none";
    case Exit::Limit::timeout: return "timeout";
    case Exit::Limit::output: return "output";
    case Exit::Limit::shutdown: return "shutdown";
  }
  return "none";
}

Error make_error(errc code, std::string text) {
  Error m;
  m.code = static_cast<std::uint16_t>(code);
  m.text = text.empty() ? make_error_code(code).message() : std::move(text);
  return m;
}

}  // namespace duplex::wire
