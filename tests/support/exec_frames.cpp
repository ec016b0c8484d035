// Exec frames by hand and the raw-frame exec client.
#include "support/exec_frames.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

namespace duplex::test {
namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t get_be64(std::string_view s, std::size_t off) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(s[off + i]);
  return v;
}

std::string type_hex(std::uint8_t t) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[t >> 4] + kHex[t & 15];
}

}  // namespace

void put_str(std::string& out, std::string_view s) {
  put_be32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

std::string auth_frame(std::string_view token) {
  std::string p;
  put_str(p, token);
  return frame(msg::auth, p);
}

namespace auth {

std::string key(std::string_view token) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

namespace {
std::string hmac(std::string_view key, std::string_view label, std::string_view binding,
                 std::string_view nc, std::string_view ns) {
  std::string msg = std::string(label) + std::string(binding) + std::string(nc) + std::string(ns);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}
}  // namespace

std::string server_proof(std::string_view key, std::string_view binding, std::string_view nc,
                         std::string_view ns) {
  return hmac(key, "duplex-auth server v1", binding, nc, ns);
}
std::string client_proof(std::string_view key, std::string_view binding, std::string_view nc,
                         std::string_view ns) {
  return hmac(key, "duplex-auth client v1", binding, nc, ns);
}
std::string zero_binding() {
  return std::string(32, '\0');
}
std::string nonce() {
  std::string n(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), 32) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return n;
}
std::string start_frame(std::string_view nc) {
  return frame(msg::auth_start, nc);
}
std::string proof_frame(std::string_view proof) {
  return frame(msg::auth_proof, proof);
}

}  // namespace auth

std::string exec_start_frame(const ExecRequest& r) {
  std::string p;
  p.push_back(static_cast<char>((r.shell ? 1 : 0) | (r.pty ? 2 : 0) | (r.login ? 4 : 0)));
  put_be16(p, static_cast<std::uint16_t>(r.argv.size()));
  for (const auto& a : r.argv)
    put_str(p, a);
  put_be16(p, static_cast<std::uint16_t>(r.env.size()));
  for (const auto& [k, v] : r.env) {
    put_str(p, k);
    put_str(p, v);
  }
  put_str(p, r.cwd);
  put_be32(p, r.timeout_ms);
  put_be16(p, r.rows);
  put_be16(p, r.cols);
  put_str(p, r.term);
  return frame(msg::exec_start, p);
}

std::string stdin_frame(std::string_view data) {
  return frame(msg::stdin_data, data);
}
std::string stdin_eof_frame() {
  return frame(msg::stdin_eof, {});
}

std::string signal_frame(std::int32_t signo) {
  std::string p;
  put_be32(p, static_cast<std::uint32_t>(signo));
  return frame(msg::signal, p);
}

std::string window_size_frame(std::uint16_t rows, std::uint16_t cols) {
  std::string p;
  put_be16(p, rows);
  put_be16(p, cols);
  return frame(msg::window_size, p);
}

std::optional<ExitPayload> parse_exit(std::string_view p) {
  if (p.size() != 1 + 4 + 8 + 1) return std::nullopt;
  ExitPayload e;
  e.how = static_cast<std::uint8_t>(p[0]);
  e.code = static_cast<std::int32_t>(get_be32(p, 1));
  e.duration_us = get_be64(p, 5);
  e.limit = static_cast<std::uint8_t>(p[13]);
  if (e.how > ExitPayload::bad_cwd || e.limit > ExitPayload::shutdown) return std::nullopt;
  return e;
}

std::optional<std::string> parse_str(std::string_view p) {
  if (p.size() < 4 || p.size() != 4 + static_cast<std::size_t>(get_be32(p, 0))) return std::nullopt;
  return std::string(p.substr(4));
}

std::string describe(const ExitPayload& e) {
  static constexpr const char* kHow[] = {"exited", "signaled", "not started", "bad cwd"};
  std::string s = std::string(kHow[e.how]) + " " + std::to_string(e.code);
  if (e.limit != ExitPayload::none) s += " (limit " + std::to_string(e.limit) + ")";
  return s;
}

bool FrameReader::fill(Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw std::runtime_error("frame reader: timeout");
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > (1u << 20)) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const std::size_t old = buf_.size();
    buf_.resize(old + 256 * 1024);
    const ssize_t n = ::recv(fd_, buf_.data() + old, 256 * 1024, 0);
    if (n < 0 && errno == EINTR) {
      buf_.resize(old);
      continue;
    }
    buf_.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return n > 0;  // 0: EOF; < 0: reset, which ends the stream the same way for a test
  }
}

std::optional<RawFrame> FrameReader::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (buffered() < 6) {
    if (!fill(deadline)) {
      if (buffered() == 0) return std::nullopt;
      throw std::runtime_error("frame reader: connection ended inside a frame header");
    }
  }
  const std::uint32_t n = get_be32(std::string_view(buf_.data() + pos_, 6), 0);
  while (buffered() < 6 + static_cast<std::size_t>(n))
    if (!fill(deadline))
      throw std::runtime_error("frame reader: connection ended inside a frame payload");
  const std::string_view head(buf_.data() + pos_, 6);  // after fill(): buf_ may have moved
  RawFrame f;
  f.type = static_cast<std::uint8_t>(head[4]);
  f.flags = static_cast<std::uint8_t>(head[5]);
  f.payload.assign(buf_.data() + pos_ + 6, n);
  pos_ += 6 + n;
  return f;
}

ExecClient::ExecClient(const std::string& url) : sock_(url), reader_(sock_.fd()) {}
ExecClient::ExecClient(SocketClient sock) : sock_(std::move(sock)), reader_(sock_.fd()) {}

void ExecClient::start(const std::optional<std::string>& token, const ExecRequest& req) {
  if (token && !token->empty()) {
    if (authenticate(*token)) send(exec_start_frame(req));
    return;
  }
  std::string bytes = preface_and_hello("exec-test");
  if (token) bytes += auth_frame(*token);
  bytes += exec_start_frame(req);
  send(bytes);
}

bool ExecClient::authenticate(std::string_view token, bool with_hello) {
  const std::string nc = auth::nonce();
  send((with_hello ? preface_and_hello("exec-test") : std::string()) + auth::start_frame(nc));
  for (;;) {
    auto f = reader_.next();
    if (!f) {
      outcome_.closed = true;
      return false;
    }
    const std::uint8_t type = f->type;
    if (type == msg::auth_challenge) {
      outcome_.types.push_back(type);
      if (f->payload.size() != 64) throw std::runtime_error("malformed AUTH_CHALLENGE");
      const std::string ns = f->payload.substr(0, 32);
      const std::string k = auth::key(token);
      outcome_.server_proof_ok =
          f->payload.substr(32) == auth::server_proof(k, auth::zero_binding(), nc, ns);
      // A test client proves whatever the server did: tests of the server's own refusals need
      // the wrong token to reach AUTH_PROOF.
      send(auth::proof_frame(auth::client_proof(k, auth::zero_binding(), nc, ns)));
      continue;
    }
    if (take(std::move(*f), nullptr)) {
      // ERROR: refused. It is the last frame: the server closes after it (PROTOCOL.md §8).
      if (auto more = reader_.next())
        throw std::runtime_error("frame " + type_hex(more->type) + " after ERROR");
      outcome_.closed = true;
      return false;
    }
    if (type == msg::auth_ok) return true;
  }
}

void ExecClient::send_stdin(std::string_view data, std::size_t chunk) {
  std::string batch;
  while (!data.empty()) {
    const auto n = std::min(chunk, data.size());
    batch += stdin_frame(data.substr(0, n));
    data.remove_prefix(n);
    if (batch.size() >= (1u << 20)) send(std::exchange(batch, {}));
  }
  if (!batch.empty()) send(batch);
}

bool ExecClient::take(RawFrame f, const OutputSinks* sinks) {
  outcome_.types.push_back(f.type);
  if (f.flags != 0) throw std::runtime_error("frame " + type_hex(f.type) + " with non-zero flags");
  switch (f.type) {
    case msg::welcome:
      if (auto w = parse_welcome(f.payload))
        outcome_.welcome_agent = w->agent;
      else
        throw std::runtime_error("malformed WELCOME");
      return false;
    case msg::auth_ok: {
      // str identity, u32 max_frame
      const std::string_view p = f.payload;
      if (p.size() < 8 || p.size() != 8 + static_cast<std::size_t>(get_be32(p, 0)))
        throw std::runtime_error("malformed AUTH_OK");
      outcome_.identity = std::string(p.substr(4, p.size() - 8));
      outcome_.auth_max_frame = get_be32(p, p.size() - 4);
      return false;
    }
    case msg::stdout_data:
      if (sinks && sinks->out)
        sinks->out(f.payload);
      else
        outcome_.out += f.payload;
      return false;
    case msg::stderr_data:
      if (sinks && sinks->err)
        sinks->err(f.payload);
      else
        outcome_.err += f.payload;
      return false;
    case msg::stdin_window:
      if (f.payload.size() != 4) throw std::runtime_error("malformed STDIN_WINDOW payload");
      outcome_.stdin_granted += get_be32(f.payload, 0);
      return false;
    case msg::exit:
      outcome_.exit = parse_exit(f.payload);
      if (!outcome_.exit)
        throw std::runtime_error("malformed EXIT payload (" + std::to_string(f.payload.size()) +
                                 " bytes)");
      return true;
    case msg::error:
      outcome_.error = parse_error(f.payload);
      if (!outcome_.error) throw std::runtime_error("malformed ERROR payload");
      return true;
    default:
      throw std::runtime_error("unexpected frame type " + type_hex(f.type) + " from the server");
  }
}

RawFrame ExecClient::wait_for(std::uint8_t type, std::chrono::milliseconds timeout) {
  // start() with a token reads AUTH_OK itself (the challenge-response needs the round trip).
  if (type == msg::auth_ok && outcome_.identity) return RawFrame{msg::auth_ok, 0, {}};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto f = reader_.next(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!f) {
      outcome_.closed = true;
      throw std::runtime_error("connection closed while waiting for frame " + type_hex(type));
    }
    if (f->type == type) {
      RawFrame copy = *f;
      take(std::move(*f), nullptr);
      return copy;
    }
    if (take(std::move(*f), nullptr)) {
      std::string why = outcome_.error ? "ERROR " + std::to_string(outcome_.error->code) + " '" +
                                             outcome_.error->text + "'"
                                       : "EXIT " + describe(*outcome_.exit);
      throw std::runtime_error(why + " while waiting for frame " + type_hex(type));
    }
  }
}

void ExecClient::wait_for_stdout(std::string_view text, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (outcome_.out.find(text) == std::string::npos)
    wait_for(msg::stdout_data,
             std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

ExecOutcome& ExecClient::finish(std::chrono::milliseconds timeout, const OutputSinks* sinks) {
  const auto deadline = Clock::now() + timeout;
  if (outcome_.exit || outcome_.error) return outcome_;
  for (;;) {
    auto f = reader_.next(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!f) {
      outcome_.closed = true;
      return outcome_;
    }
    if (take(std::move(*f), sinks)) break;
  }
  if (outcome_.error) {
    // An ERROR is the last frame: the server closes after it (PROTOCOL.md §8).
    auto f = reader_.next(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (f) throw std::runtime_error("frame " + type_hex(f->type) + " after ERROR");
    outcome_.closed = true;
  }
  return outcome_;
}

::testing::AssertionResult ExecClient::exit_was_last(std::chrono::milliseconds timeout) {
  if (!outcome_.exit) return ::testing::AssertionFailure() << "no EXIT received";
  try {
    sock_.shutdown_write();
    if (auto f = reader_.next(timeout))
      return ::testing::AssertionFailure() << "frame " << type_hex(f->type) << " after EXIT";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "after EXIT: " << e.what();
  }
}

ExecOutcome exec_once(const std::string& url, const std::optional<std::string>& token,
                      const ExecRequest& req, std::string_view input,
                      std::chrono::milliseconds timeout) {
  ExecClient c(url);
  c.start(token, req);
  // Refused during the challenge-response: the server has closed, there is nothing to send.
  if (c.outcome().error || c.outcome().closed) return c.outcome();
  if (input.size() <= 256 * 1024) {
    c.send_stdin(input);
    c.send_eof();
    return c.finish(timeout);
  }
  // Big input: write it while reading the output, or both sides fill up.
  std::thread writer([&c, input] {
    try {
      c.send_stdin(input);
      c.send_eof();
    } catch (...) {
      // The server closed (e.g. the command ended early); the reader sees why.
    }
  });
  try {
    c.finish(timeout);
  } catch (...) {
    c.socket().reset();  // unblocks the writer
    writer.join();
    throw;
  }
  writer.join();
  return c.outcome();
}

namespace auth {

std::string hex_of(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

::testing::AssertionResult holds_no_trace_of(const std::string& recorded,
                                             const std::string& token) {
  const std::string forms[] = {token, unhex(token), auth::key(token), hex_of(auth::key(token))};
  for (const auto& f : forms)
    for (std::size_t i = 0; i + 8 <= f.size(); i += 4)
      if (recorded.find(f.substr(i, 8)) != std::string::npos)
        return ::testing::AssertionFailure()
               << "the recording holds part of the token (form " << hex_of(f.substr(0, 8))
               << "…): " << hex_of(recorded);
  return ::testing::AssertionSuccess();
}

}  // namespace auth

}  // namespace duplex::test
