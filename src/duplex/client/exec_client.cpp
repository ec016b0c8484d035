// Exec client implementation: frame reader, single writer, stdin thread, signal watcher.
// The reader, the writer (fed by a bounded queue), the stdin pump and the signal watcher run
// together until EXIT, a failure or a local signal ends the session.
#include "duplex/client/exec_client.hpp"
#include "duplex/client/terminal.hpp"

#include <fcntl.h>
#include <iconv.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <semaphore>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <variant>

#include <fmt/format.h>
#include <asio/experimental/concurrent_channel.hpp>
#include <nlohmann/json.hpp>

#include "duplex/client/connection.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/core/token_file.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;
using net::use_tuple;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kStdinChunk = 64 * 1024;  // largest STDIN_DATA payload we send
constexpr std::ptrdiff_t kStdinDepth = 4;       // chunks read ahead of the socket
constexpr std::size_t kOutboxDepth = 16;        // frames queued in front of the writer
constexpr auto kDoubleInterrupt = std::chrono::seconds(2);
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

using FrameChannel = asio::experimental::channel<void(std::error_code, Bytes)>;

// Reads a file descriptor on a thread of its own and hands the chunks to the io_context.
// Why a thread: epoll(7) refuses regular files, and `duplex exec ... < file` must work; a plain
// blocking read(2) works on every kind of fd. Why credits: the thread may run at most
// kStdinDepth chunks ahead of the consumer, so a fast stdin and a slow server cannot fill our
// memory. The thread polls a wake-up pipe too, so that it can be stopped while stdin is silent
// (a terminal nobody types on).
class StdinReader {
 public:
  StdinReader(const asio::any_io_executor& ex, int fd, std::size_t chunk)
      : ch_(ex, static_cast<std::size_t>(kStdinDepth) + 1), fd_(fd), chunk_(chunk) {
    if (::pipe2(wake_, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::system_category(), "pipe2");
    // The thread inherits a mask that blocks every signal, so signals are delivered to the
    // io_context's thread, where asio::signal_set picks them up.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
      close_pipe();
      throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  ~StdinReader() {
    stop_ = true;
    credits_.release();  // in case it waits for a credit
    const char c = 0;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);  // in case it waits in poll
    thread_.join();
    close_pipe();
  }

  StdinReader(const StdinReader&) = delete;
  StdinReader& operator=(const StdinReader&) = delete;

  /// The next chunk; empty at end of file or after a read error (both end our stdin).
  /// Throws when cancelled.
  awaitable<Bytes> next() {
    auto [ec, b] = co_await ch_.async_receive(use_tuple);
    if (ec) throw std::system_error(ec);
    credits_.release();
    co_return std::move(b);
  }

 private:
  void run() noexcept {
    for (;;) {
      credits_.acquire();
      if (stop_) return;
      pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int r;
      do
        r = ::poll(p, 2, -1);
      while (r < 0 && errno == EINTR);
      if (stop_ || p[1].revents != 0) return;
      Bytes b(chunk_);
      const ssize_t n = r < 0 ? -1 : ::read(fd_, b.data(), b.size());
      if (n > 0) {
        b.resize(static_cast<std::size_t>(n));
        ch_.try_send(std::error_code{}, std::move(b));  // a credit guarantees room
        continue;
      }
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {  // EAGAIN: fd 0 is non-blocking
        credits_.release();
        continue;
      }
      ch_.try_send(std::error_code{}, Bytes{});  // end of file (a read error ends it too)
      return;
    }
  }

  void close_pipe() noexcept {
    for (int& f : wake_)
      if (f >= 0) ::close(std::exchange(f, -1));
  }

  asio::experimental::concurrent_channel<void(std::error_code, Bytes)> ch_;
  std::counting_semaphore<> credits_{kStdinDepth};
  std::atomic<bool> stop_{false};
  int fd_;
  std::size_t chunk_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

template <class M>
Bytes encoded(const M& m) {
  Bytes f;
  wire::encode(m, f);
  return f;
}

Bytes empty_frame(wire::MsgType t) {
  Bytes f;
  wire::encode_frame(t, {}, f);
  return f;
}

// The line for a ClientError. A refused client prints exactly "authentication failed"
// (PRODUCT.md), whatever text the server sent with the code.
std::string describe_failure(const ClientError& e, const net::Endpoint&, bool started) {
  std::string what = e.what();
  if (e.kind() == ClientError::Kind::remote) {
    if (e.remote_code() == static_cast<std::uint16_t>(errc::auth_failed))
      return "authentication failed";
    return what;
  }
  if (e.kind() == ClientError::Kind::closed && started) return what + " before the command ended";
  return what;
}

// Dial, handshake, AUTH. An ERROR here comes through as ClientError(remote).
awaitable<Connection> connect_and_auth(const ExecRequest& req, std::string& identity) {
  ClientOptions opt;
  opt.protocol = Protocol::framed;
  // No per-read timeout: a command may be silent for hours. The connect phase has its own
  // deadline (run_exec), and after EXEC_START the server's limits apply.
  opt.timeout = std::chrono::milliseconds(0);
  opt.agent = req.agent;
  Connection conn = co_await Connection::open(req.endpoint, opt);
  // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
  const Bytes auth = encoded(wire::Auth{req.token});
  co_await conn.write(auth);
  Frame r = co_await conn.read_frame();
  if (r.type != wire::MsgType::auth_ok)
    throw ClientError(
        ClientError::Kind::protocol,
        fmt::format("{} answered AUTH with {}", req.endpoint.url(), wire::type_name(r.type)));
  auto ok = wire::decode_auth_ok(r.payload);
  if (!ok)
    throw ClientError(ClientError::Kind::protocol,
                      fmt::format("{} sent a malformed AUTH_OK", req.endpoint.url()));
  identity = ok->identity;
  co_return conn;
}

// Asio's `a || b` waits for the first to *succeed* (an exception does not end the race), so
// every racer turns its failures into values.
struct Connected {
  std::optional<Connection> conn;
  std::string error;  // when conn is empty
};

awaitable<Connected> try_connect(const ExecRequest& req, std::string& identity) {
  try {
    Connection c = co_await connect_and_auth(req, identity);
    co_return Connected{std::move(c), {}};
  } catch (const ClientError& e) {
    co_return Connected{std::nullopt, describe_failure(e, req.endpoint, false)};
  }
}

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

// Before the command runs, any signal we watch (but SIGWINCH) simply abandons the attempt.
awaitable<int> abort_signal(asio::signal_set& signals) {
  for (;;) {
    auto [ec, signo] = co_await signals.async_wait(use_tuple);
    if (ec) co_return 0;
    if (signo != SIGWINCH) co_return signo;
  }
}

// One started command: the coroutines that share the connection, and their single writer.
class Session {
 public:
  Session(Connection& conn, const ExecRequest& req, const ExecHooks& hooks,
          asio::signal_set& signals, const asio::any_io_executor& ex)
      : conn_(conn), req_(req), hooks_(hooks), signals_(signals), out_(ex, kOutboxDepth) {
    if (req.stdin_fd >= 0) {
      const std::size_t max_frame = conn.welcome().max_frame;
      reader_.emplace(ex, req.stdin_fd, std::clamp<std::size_t>(max_frame, 1, kStdinChunk));
    }
  }

  /// How the reader ended: EXIT, a failure, or neither (our stdout broke).
  struct ReadEnd {
    std::optional<wire::Exit> exit;
    std::string error;
  };

  /// The reader's end, a stop signal, or (never in practice) the pumps' end.
  awaitable<std::variant<ReadEnd, int, std::monostate>> run() {
    // The reader decides the outcome; the writer and stdin pump never finish on their own
    // (a write error only stops writing: the reader then learns why the connection ended).
    co_return co_await (read_output() || watch_signals() || (write_frames() && pump_stdin()));
  }

 private:
  awaitable<void> send(Bytes f) {
    co_await out_.async_send(std::error_code{}, std::move(f), use_tuple);
  }

  awaitable<ReadEnd> read_output() {
    try {
      auto exit = co_await read_until_exit();
      co_return ReadEnd{exit, {}};
    } catch (const ClientError& e) {
      co_return ReadEnd{std::nullopt, describe_failure(e, req_.endpoint, true)};
    } catch (const std::exception& e) {
      co_return ReadEnd{std::nullopt, e.what()};
    }
  }

  /// EXIT, or nullopt when our stdout broke. Throws ClientError.
  awaitable<std::optional<wire::Exit>> read_until_exit() {
    for (;;) {
      Frame f = co_await conn_.read_frame();
      switch (f.type) {
        case wire::MsgType::stdout_data:
          if (hooks_.on_stdout && !hooks_.on_stdout(f.payload)) co_return std::nullopt;
          break;
        case wire::MsgType::stderr_data:
          if (hooks_.on_stderr) hooks_.on_stderr(f.payload);
          break;
        case wire::MsgType::exit: {
          auto e = wire::decode_exit(f.payload);
          if (!e)
            throw ClientError(ClientError::Kind::protocol,
                              fmt::format("{} sent a malformed EXIT", req_.endpoint.url()));
          co_return *e;
        }
        case wire::MsgType::pong: break;
        default:
          throw ClientError(ClientError::Kind::protocol,
                            fmt::format("{} sent an unexpected {} during the command",
                                        req_.endpoint.url(), wire::type_name(f.type)));
      }
    }
  }

  awaitable<void> write_frames() {
    bool broken = false;
    for (;;) {
      auto [ec, f] = co_await out_.async_receive(use_tuple);
      if (ec) co_return;
      if (broken) continue;  // keep draining so that producers never block on a dead socket
      try {
        co_await conn_.write(f);
      } catch (const ClientError&) {
        broken = true;
      }
    }
  }

  awaitable<void> pump_stdin() {
    Bytes eof = empty_frame(wire::MsgType::stdin_eof);
    if (!reader_) {
      co_await send(std::move(eof));
      co_return;
    }
    for (;;) {
      Bytes chunk = co_await reader_->next();
      if (chunk.empty()) {
        co_await send(std::move(eof));
        co_return;
      }
      Bytes f;
      f.reserve(wire::kHeaderSize + chunk.size());
      wire::encode_frame(wire::MsgType::stdin_data, chunk, f);
      co_await send(std::move(f));
    }
  }

  awaitable<int> watch_signals() {
    std::optional<Clock::time_point> last_interrupt;
    for (;;) {
      auto [ec, signo] = co_await signals_.async_wait(use_tuple);
      if (ec) co_return 0;
      if (signo == SIGWINCH) {
        if (hooks_.window_size)
          if (auto ws = hooks_.window_size()) {
            Bytes f = encoded(*ws);
            co_await send(std::move(f));
          }
        continue;
      }
      if (std::find(req_.stop_signals.begin(), req_.stop_signals.end(), signo) !=
          req_.stop_signals.end())
        co_return signo;
      if (signo == SIGINT && req_.double_interrupt_stops) {
        const auto now = Clock::now();
        if (last_interrupt && now - *last_interrupt < kDoubleInterrupt) co_return SIGINT;
        last_interrupt = now;
      }
      Bytes f = encoded(wire::Signal{signo});
      co_await send(std::move(f));
    }
  }

  Connection& conn_;
  const ExecRequest& req_;
  const ExecHooks& hooks_;
  asio::signal_set& signals_;
  FrameChannel out_;
  std::optional<StdinReader> reader_;
};

int not_started_status(std::int32_t code) noexcept {
  // The server may send the errno of the failed start (PROTOCOL.md) or the status itself.
  if (code == 127 || code == ENOENT) return 127;
  return 126;
}

std::string signal_name(int signo) {
  if (const char* a = ::sigabbrev_np(signo)) return std::string("SIG") + a;
  return fmt::format("signal {}", signo);
}

std::string base64(std::string_view s) {
  // EVP_EncodeBlock takes an int length: encode in pieces that are a multiple of 3 bytes.
  constexpr std::size_t kPiece = 3 * (1u << 20);
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  std::string buf;
  for (std::size_t at = 0; at < s.size(); at += kPiece) {
    const std::size_t n = std::min(kPiece, s.size() - at);
    buf.resize((n + 2) / 3 * 4 + 1);
    const int w = ::EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                                    reinterpret_cast<const unsigned char*>(s.data() + at),
                                    static_cast<int>(n));
    out.append(buf.data(), static_cast<std::size_t>(w));
  }
  return out;
}

}  // namespace

awaitable<ExecResult> run_exec(const ExecRequest& req, const ExecHooks& hooks) {
  ExecResult res;
  const auto t0 = Clock::now();
  auto ex = co_await asio::this_coro::executor;
  // Installed before we connect, so that Ctrl-C while connecting is ours to handle too.
  asio::signal_set signals(ex);
  for (int s : req.forward_signals)
    signals.add(s);
  for (int s : req.stop_signals)
    signals.add(s);
  if (hooks.window_size) signals.add(SIGWINCH);

  bool started = false;
  try {
    const auto limit =
        req.connect_timeout.count() > 0 ? req.connect_timeout : std::chrono::hours(24 * 365);
    auto first =
        co_await (try_connect(req, res.identity) || sleep_for(limit) || abort_signal(signals));
    if (first.index() == 0 && !std::get<0>(first).conn) {
      res.error = std::get<0>(first).error;
    } else if (first.index() == 1) {
      res.error = fmt::format("no answer from {} within {} s", req.endpoint.url(),
                              std::chrono::duration<double>(req.connect_timeout).count());
    } else if (first.index() == 2) {
      res.local_signal = std::get<2>(first);
    } else {
      Connection conn = std::move(*std::get<0>(first).conn);
      Bytes start = encoded(req.start);
      if (start.size() - wire::kHeaderSize > conn.welcome().max_frame) {
        res.error =
            fmt::format("the command is too long: {} bytes, the server's frame limit is {} bytes",
                        start.size() - wire::kHeaderSize, conn.welcome().max_frame);
      } else {
        co_await conn.write(start);
        started = true;
        if (hooks.on_started) hooks.on_started();
        Session session(conn, req, hooks, signals, ex);
        auto end = co_await session.run();
        if (end.index() == 0) {
          auto& read = std::get<0>(end);
          if (read.exit)
            res.exit = *read.exit;
          else if (!read.error.empty())
            res.error = read.error;
          else
            res.local_signal = SIGPIPE;  // our stdout is gone; as a local command would, stop
        } else if (end.index() == 1) {
          res.local_signal = std::get<1>(end);
        } else {
          res.error =
              fmt::format("{}: the session ended without an exit status", req.endpoint.url());
        }
      }
    }
  } catch (const ClientError& e) {
    res.error = describe_failure(e, req.endpoint, started);
  } catch (const std::system_error& e) {
    res.error = e.what();
  }
  res.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  co_return res;
}

int exit_status(const ExecResult& r) noexcept {
  if (!r.error.empty()) return 255;
  if (r.local_signal != 0) return std::min(128 + r.local_signal, 255);
  if (!r.exit) return 255;
  switch (r.exit->how) {
    case wire::Exit::How::exited: return r.exit->code & 0xff;
    case wire::Exit::How::signaled: return std::clamp(128 + r.exit->code, 129, 255);
    case wire::Exit::How::not_started: return not_started_status(r.exit->code);
  }
  return 255;
}

std::string end_message(const ExecResult& r, const wire::ExecStart& start) {
  if (!r.error.empty()) return r.error;
  if (r.local_signal == SIGPIPE) return {};  // a broken pipe is not news to whoever closed it
  if (r.local_signal == SIGINT) return "interrupted: disconnected (the server ends the command)";
  if (r.local_signal != 0) return fmt::format("disconnected on {}", signal_name(r.local_signal));
  if (!r.exit) return {};
  const wire::Exit& e = *r.exit;
  if (e.how == wire::Exit::How::not_started) {
    const std::string what = start.login          ? std::string("the login shell")
                             : start.shell        ? std::string("/bin/sh")
                             : start.argv.empty() ? std::string("the command")
                                                  : fmt::format("'{}'", start.argv.front());
    std::string why;
    if (e.code == 127 || e.code == ENOENT)
      why = "command not found";
    else if (e.code == 126)
      why = "cannot execute";
    else
      why = std::strerror(e.code);
    return fmt::format("cannot run {}: {}", what, why);
  }
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

std::string result_json(const ExecResult& r, std::string_view out, std::string_view err) {
  using json = nlohmann::ordered_json;
  json j;
  auto put_stream = [&](const char* name, std::string_view s) {
    j[name] = std::string(s);  // invalid UTF-8 is replaced by U+FFFD when dumped
    if (!is_valid_utf8(s)) j[std::string(name) + "_base64"] = base64(s);
  };
  put_stream("stdout", out);
  put_stream("stderr", err);
  j["exit_code"] = nullptr;
  j["signal"] = nullptr;
  if (r.error.empty() && r.local_signal == 0 && r.exit) {
    if (r.exit->how == wire::Exit::How::signaled)
      j["signal"] = r.exit->code;
    else
      j["exit_code"] = exit_status(r);
  }
  const double ms = r.exit ? static_cast<double>(r.exit->duration_us) / 1e3
                           : static_cast<double>(r.elapsed.count()) / 1e3;
  j["duration_ms"] = std::round(ms * 1000.0) / 1000.0;
  j["limit"] = nullptr;
  if (r.exit) {
    switch (r.exit->limit) {
      case wire::Exit::Limit::none: break;
      case wire::Exit::Limit::timeout: j["limit"] = "timeout"; break;
      case wire::Exit::Limit::output: j["limit"] = "output"; break;
      case wire::Exit::Limit::shutdown: j["limit"] = "shutdown"; break;
    }
  }
  j["error"] = nullptr;
  if (!r.error.empty())
    j["error"] = r.error;
  else if (r.local_signal != 0)
    j["error"] = fmt::format("interrupted by {}", signal_name(r.local_signal));
  j["start_error"] = nullptr;
  if (r.error.empty() && r.local_signal == 0 && r.exit &&
      r.exit->how == wire::Exit::How::not_started)
    j["start_error"] = end_message(r, {});
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> resolve_token(const std::string& token_file, std::string& why) {
  if (!token_file.empty()) return read_token_file(token_file, why);
  if (const char* t = std::getenv("DUPLEX_TOKEN"); t && *t) return std::string(t);
  const std::string path = default_token_path();
  if (::access(path.c_str(), F_OK) != 0)
    return std::string{};  // no token: the server may use SO_PEERCRED
  return read_token_file(path, why);
}

bool write_all(int fd, ByteView b) noexcept {
  while (!b.empty()) {
    const ssize_t n = ::write(fd, b.data(), b.size());
    if (n > 0) {
      b = b.subspan(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Someone made our stdout non-blocking (a shared terminal, a parent's pipe): wait for room.
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else {
      return false;
    }
  }
  return true;
}

bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c == 0xED)
      len = 3, hi = 0x9F;  // no UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;  // nothing above U+10FFFF
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else
      return false;
    if (static_cast<std::size_t>(end - p) < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += len;
  }
  return true;
}

Transcoder::Transcoder(const std::string& from) : cd_(::iconv_open("UTF-8", from.c_str())) {
  if (cd_ == reinterpret_cast<iconv_t>(static_cast<std::intptr_t>(-1)))
    throw std::invalid_argument(fmt::format("unknown encoding '{}'", from));
}

Transcoder::~Transcoder() {
  ::iconv_close(cd_);
}

std::string Transcoder::feed(ByteView in) {
  std::string src = std::move(carry_);
  carry_.clear();
  src.append(as_chars(in));
  std::string out(src.size() * 2 + 16, '\0');
  char* ip = src.data();
  std::size_t il = src.size();
  std::size_t used = 0;
  while (il > 0) {
    char* op = out.data() + used;
    std::size_t ol = out.size() - used;
    const std::size_t r = ::iconv(cd_, &ip, &il, &op, &ol);
    used = out.size() - ol;
    if (r != static_cast<std::size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
    } else if (errno == EINVAL) {
      // An incomplete sequence at the end: the rest of it comes with the next chunk.
      carry_.assign(ip, il);
      break;
    } else {
      // EILSEQ: not valid in the source encoding. Show it, skip one byte, go on.
      if (out.size() - used < kReplacement.size()) out.resize(out.size() * 2);
      out.replace(used, kReplacement.size(), kReplacement);
      used += kReplacement.size();
      ++ip;
      --il;
    }
  }
  out.resize(used);
  return out;
}

std::string Transcoder::finish() {
  std::string out;
  if (!carry_.empty()) out.append(kReplacement);
  carry_.clear();
  ::iconv(cd_, nullptr, nullptr, nullptr, nullptr);  // back to the initial shift state
  return out;
}

std::function<std::optional<wire::WindowSize>()> window_size_of(int fd) {
  return [fd]() -> std::optional<wire::WindowSize> {
    auto s = terminal_size(fd);
    if (!s) return std::nullopt;
    return wire::WindowSize{s->rows, s->cols};
  };
}

}  // namespace duplex::client
