// The framed session: a reader that decodes and dispatches, the outbox's writer, and the exec loop,
// run together; the reader's end (EOF, reset, breach, shutdown) ends a running command.
#include "duplex/server/framed_session.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/byte_buffer.hpp"
#include "duplex/server/outbox.hpp"
#include "duplex/services/upper.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

// Bytes of one connection waiting to be decoded. Holds memory only while a frame is incomplete:
// the storage comes from the thread's pool and goes back whenever everything was consumed.
class FrameBuffer {
 public:
  explicit FrameBuffer(std::size_t chunk) : chunk_(chunk) {}
  ~FrameBuffer() { release(); }
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  ByteView readable() const noexcept { return buf_.readable(); }
  bool empty() const noexcept { return buf_.empty(); }
  void consume(std::size_t n) noexcept { buf_.consume(n); }
  std::span<std::byte> prepare(std::size_t want) {
    if (buf_.capacity() == 0) buf_.adopt_storage(take_buffer(chunk_));
    return buf_.prepare(want);
  }
  void commit(std::size_t n) noexcept { buf_.commit(n); }
  void release() noexcept {
    if (!buf_.empty()) return;
    Bytes b = buf_.release_storage();
    if (b.size() == chunk_) give_buffer(std::move(b));  // a grown one is just freed
  }

 private:
  std::size_t chunk_;
  ByteBuffer buf_;
};

class FramedSession {
 public:
  FramedSession(net::Stream& stream, ServerState& state, SessionEntry& entry, FrameBuffer& in)
      : stream_(stream),
        state_(state),
        entry_(entry),
        in_(in),
        out_(stream.get_executor(), state.limits.out_queue_frames),
        exec_ch_(stream.get_executor(), 1) {
    // A client that cannot be written to is gone: end its command rather than let it run on.
    out_.on_broken([this] {
      if (cmd_) cmd_->terminate(wire::Exit::Limit::none);
    });
  }

  awaitable<void> run() { co_await (read_loop() && out_.run(stream_) && exec_loop()); }

 private:
  enum class Phase { preface, hello, ready };

  // Whatever ends the reader (EOF, reset, protocol error, shutdown) ends a running command too:
  // its process group gets SIGTERM, then SIGKILL after the grace period.
  awaitable<void> read_loop() {
    co_await read_frames();
    if (cmd_)
      cmd_->terminate(state_.stopping.load() ? wire::Exit::Limit::shutdown
                                             : wire::Exit::Limit::none);
    exec_ch_.close();
  }

  // Runs the commands the reader starts, one at a time, each to its EXIT frame.
  awaitable<void> exec_loop() {
    for (;;) {
      auto [ec, cmd] = co_await exec_ch_.async_receive(use_tuple);
      if (ec) co_return;
      entry_.busy = true;
      const auto exit = co_await cmd->run(out_);
      entry_.busy = false;
      entry_.last_read = Clock::now();
      spdlog::info("exec: peer={} identity={} argv=[{}] exit={}{} duration={:.3f}s out={} err={}{}",
                   entry_.peer, identity_, audit_argv_,
                   exit.how == wire::Exit::How::signaled ? "signal " : "", exit.code,
                   static_cast<double>(exit.duration_us) / 1e6, cmd->bytes_out(), cmd->bytes_err(),
                   exit.limit == wire::Exit::Limit::none
                       ? ""
                       : fmt::format(" limit={}", static_cast<int>(exit.limit)));
      // Free the command's slot before EXIT goes out: the client may start the next one at once.
      if (cmd_ == cmd) cmd_.reset();
      cmd.reset();  // closes its pipes and pidfd now
      state_.commands.release(client_key_);
      Bytes f;
      wire::encode(exit, f);
      co_await out_.send(std::move(f));  // false: the client is gone; the reader ends the loop
    }
  }

  // The tutorial's loop, framed: decode what we have, handle each frame, read more.
  awaitable<void> read_frames() {
    for (;;) {
      for (;;) {
        if (phase_ == Phase::preface) {
          const auto st = wire::check_preface(in_.readable());
          if (st == wire::PrefaceStatus::need_more) break;
          if (st == wire::PrefaceStatus::bad) {
            co_await fail(errc::bad_preface);
            co_return;
          }
          in_.consume(wire::kPreface.size());
          phase_ = Phase::hello;
          continue;
        }
        const auto d = wire::decode_frame(in_.readable(), state_.limits.max_frame);
        if (d.status == wire::DecodeStatus::need_more) break;
        if (d.status == wire::DecodeStatus::error) {
          co_await fail(static_cast<errc>(d.error.value()));
          co_return;
        }
        const bool keep_going = co_await handle(d.type, d.payload);
        in_.consume(d.consumed);
        if (!keep_going) co_return;
      }
      if (in_.empty()) {
        in_.release();
        if (auto wec = co_await stream_.wait_readable()) co_return co_await ended(wec);
      }
      auto space = in_.prepare(bytes_wanted());
      auto [ec, n] = co_await stream_.read_some(asio::buffer(space.data(), space.size()));
      if (ec == asio::error::eof) {
        if (in_.empty())
          co_await out_.finish();
        else
          co_await fail(errc::bad_frame, "connection closed in the middle of a frame");
        co_return;
      }
      if (ec) co_return co_await ended(ec);
      in_.commit(n);
      entry_.bytes_in += n;
      entry_.last_read = Clock::now();
    }
  }

  // A read failed: the idle sweep cancelled it (tell the client why), or the peer is gone.
  awaitable<void> ended(std::error_code ec) {
    if (ec == asio::error::operation_aborted && entry_.idle_expired) {
      co_await fail(errc::idle_timeout);
      co_return;
    }
    out_.abort();
  }

  // How much to read next: the rest of a partly received frame (up to the limit), or a chunk.
  std::size_t bytes_wanted() const noexcept {
    const auto have = in_.readable();
    if (phase_ != Phase::preface && have.size() >= wire::kHeaderSize) {
      ByteReader r(have);
      const std::size_t total = wire::kHeaderSize + r.u32();
      if (total > have.size()) return std::max<std::size_t>(total - have.size(), 4096);
    }
    return 4096;
  }

  awaitable<bool> handle(wire::MsgType type, ByteView payload) {
    using wire::MsgType;
    if (phase_ == Phase::hello) {
      if (type != MsgType::hello)
        co_return co_await fail(errc::unexpected_message, "the first frame must be HELLO");
      auto hello = wire::decode_hello(payload);
      if (!hello) co_return co_await fail(errc::bad_message, "malformed HELLO");
      if (hello->min_version > wire::kProtocolVersion ||
          hello->max_version < wire::kProtocolVersion)
        co_return co_await fail(
            errc::version_unsupported,
            fmt::format("this server speaks protocol version {} only", wire::kProtocolVersion));
      Bytes f;
      wire::encode(wire::Welcome{wire::kProtocolVersion, state_.limits.max_frame, state_.agent}, f);
      phase_ = Phase::ready;
      co_return co_await out_.send(std::move(f));
    }
    switch (type) {
      case MsgType::upper_request: {
        Bytes f;
        f.reserve(wire::kHeaderSize + payload.size());
        wire::encode_header(MsgType::upper_reply, static_cast<std::uint32_t>(payload.size()), f);
        f.insert(f.end(), payload.begin(), payload.end());
        services::to_upper_in_place(std::span(f).subspan(wire::kHeaderSize));
        co_return co_await out_.send(std::move(f));
      }
      case MsgType::ping: {
        Bytes f;
        wire::encode_frame(MsgType::pong, payload, f);
        co_return co_await out_.send(std::move(f));
      }
      case MsgType::auth: co_return co_await handle_auth(payload);
      case MsgType::exec_start: co_return co_await handle_exec_start(payload);
      case MsgType::stdin_data:
        if (cmd_) {
          auto cmd = cmd_;  // the command may finish while we wait on its stdin
          // While the command does not read, we do not read either (backpressure); but a peer
          // that resets meanwhile must still end the session and with it the command.
          auto r = co_await (cmd->write_stdin(Bytes(payload.begin(), payload.end())) ||
                             stream_.wait_hangup());
          if (r.index() == 1) co_return false;
        }
        co_return true;  // input for a command that already ended is dropped
      case MsgType::stdin_eof:
        if (!payload.empty())
          co_return co_await fail(errc::bad_message, "STDIN_EOF carries no payload");
        if (cmd_) cmd_->close_stdin();
        co_return true;
      case MsgType::signal: {
        auto m = wire::decode_signal(payload);
        if (!m) co_return co_await fail(errc::bad_message, "malformed SIGNAL");
        if (cmd_) cmd_->signal(m->signo);
        co_return true;
      }
      case MsgType::window_size: {
        auto m = wire::decode_window_size(payload);
        if (!m) co_return co_await fail(errc::bad_message, "malformed WINDOW_SIZE");
        if (cmd_) cmd_->resize(m->rows, m->cols);
        co_return true;
      }
      case MsgType::stats_request:
        co_return co_await fail(errc::service_disabled, "stats are not served yet");
      default: break;
    }
    if (!wire::is_known_type(static_cast<std::uint8_t>(type)))
      co_return co_await fail(errc::unknown_message, fmt::format("unknown message type 0x{:02x}",
                                                                 static_cast<unsigned>(type)));
    co_return co_await fail(
        errc::unexpected_message,
        fmt::format("{} is not something a client sends", wire::type_name(type)));
  }

  awaitable<bool> handle_auth(ByteView payload) {
    if (!state_.exec.enabled)
      co_return co_await fail(
          errc::service_disabled,
          "the exec service is not enabled on this server (start it with --exec)");
    auto m = wire::decode_auth(payload);
    if (!m) co_return co_await fail(errc::bad_message, "malformed AUTH");
    auto who = authenticate(state_.exec.auth, m->token, stream_);
    if (!who) {
      spdlog::warn("exec: authentication failed for {}", entry_.peer);
      // The client learns only that it failed, never why (no oracle for guessing).
      co_return co_await fail(errc::auth_failed, "authentication failed");
    }
    identity_ = *who;
    Bytes f;
    wire::encode(wire::AuthOk{identity_}, f);
    co_return co_await out_.send(std::move(f));
  }

  awaitable<bool> handle_exec_start(ByteView payload) {
    if (!state_.exec.enabled)
      co_return co_await fail(
          errc::service_disabled,
          "the exec service is not enabled on this server (start it with --exec)");
    if (identity_.empty())
      co_return co_await fail(errc::auth_required, "send AUTH before EXEC_START");
    auto req = wire::decode_exec_start(payload);
    if (!req) co_return co_await fail(errc::bad_message, "malformed EXEC_START");
    if (cmd_) co_return co_await fail(errc::limit_exceeded, "one command at a time per connection");
    std::string why;
    if (client_key_.empty()) client_key_ = client_key();
    if (!state_.commands.acquire(client_key_, state_.exec, why))
      co_return co_await fail(errc::limit_exceeded, why);
    audit_argv_ = audit_argv(*req);
    wire::Exit not_started;
    auto cmd = services::ExecCommand::start(stream_.get_executor(), *req, state_.exec.policy,
                                            not_started, why);
    if (!cmd) {
      state_.commands.release(client_key_);
      spdlog::info("exec: peer={} identity={} argv=[{}] not started: {}", entry_.peer, identity_,
                   audit_argv_, why);
      Bytes f;
      wire::encode(not_started, f);
      co_return co_await out_.send(std::move(f));
    }
    state_.commands_started.fetch_add(1, std::memory_order_relaxed);
    cmd_ = cmd;
    auto [ec] = co_await exec_ch_.async_send(std::error_code{}, std::move(cmd), use_tuple);
    co_return !ec;
  }

  // Per-client limits count by who the peer is: its uid on a Unix socket, else its address.
  std::string client_key() {
    if (auto uid = peer_uid(stream_)) return "uid:" + std::to_string(*uid);
    return entry_.peer.substr(0, entry_.peer.rfind(':'));
  }

  static std::string audit_argv(const wire::ExecStart& r) {
    if (r.login) return "<login shell>";
    std::string out;
    for (const auto& a : r.argv) {
      if (!out.empty()) out += ", ";
      out += fmt::format("{:?}", a.size() > 200 ? a.substr(0, 200) + "..." : a);
    }
    return r.shell ? "sh -c " + out : out;
  }

  // Answer-then-drop (Redis): the client learns why, the server moves on.
  awaitable<bool> fail(errc code, std::string text = {}) {
    state_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("session {} ({}): protocol error: {}", entry_.id, entry_.peer,
                  text.empty() ? make_error_code(code).message() : text);
    co_await out_.send(error_frame(code, std::move(text)));
    co_await out_.finish();
    co_return false;
  }

  net::Stream& stream_;
  ServerState& state_;
  SessionEntry& entry_;
  FrameBuffer& in_;
  Outbox out_;
  Phase phase_ = Phase::preface;
  std::string identity_;  // set by a successful AUTH
  std::string client_key_;
  std::string audit_argv_;
  std::shared_ptr<services::ExecCommand> cmd_;  // the running command, if any
  asio::experimental::channel<void(std::error_code, std::shared_ptr<services::ExecCommand>)>
      exec_ch_;
};

}  // namespace

Bytes error_frame(errc code, std::string text) {
  Bytes f;
  wire::encode(wire::make_error(code, std::move(text)), f);
  return f;
}

// Its own coroutine (see session.cpp), so that the framed session's state lives in a frame that raw
// sessions never allocate (a coroutine frame holds the locals of every branch).
awaitable<void> serve_framed(net::Stream& stream, ServerState& state, SessionEntry& entry,
                             PooledBuffer first, std::size_t n) {
  FrameBuffer in(state.limits.read_chunk);
  auto space = in.prepare(n);
  std::memcpy(space.data(), first.data(), n);
  in.commit(n);
  first.release();
  FramedSession framed(stream, state, entry, in);
  co_await framed.run();
}

}  // namespace duplex::server
