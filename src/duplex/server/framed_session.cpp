// The framed session: the reader (preface, HELLO, decode, route to a service), the outbox's
// writer, and the services' own work, run together; the reader's end (EOF, reset, breach,
// shutdown) ends what the services run.
#include "duplex/server/framed_session.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/byte_buffer.hpp"
#include "duplex/server/admission.hpp"
#include "duplex/server/outbox.hpp"
#include "duplex/services/service_table.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

// Bytes of one connection waiting to be decoded. Holds memory only while a frame is incomplete:
// the storage comes from the thread's pool and goes back whenever everything was consumed. It
// never reserves what a header announces: while a frame is incomplete it holds about what has
// arrived (trim), and each read asks for at most as much again (bytes_wanted), so it grows
// geometrically with the bytes actually received, up to the frame limit.
class FrameBuffer {
 public:
  explicit FrameBuffer(std::size_t chunk) : chunk_(chunk) {}
  ~FrameBuffer() { release(); }
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  ByteView readable() const noexcept { return buf_.readable(); }
  bool empty() const noexcept { return buf_.empty(); }
  void consume(std::size_t n) noexcept { buf_.consume(n); }
  /// Takes `storage` (empty buffer only) with its first `n` bytes already received.
  void adopt(Bytes storage, std::size_t n) noexcept {
    buf_.adopt_storage(std::move(storage));
    buf_.commit(n);
  }
  /// Appends a copy of `bytes` (read into the wait buffer).
  void append(std::span<const std::byte> bytes) {
    auto room = prepare(bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  std::span<std::byte> prepare(std::size_t want) {
    if (buf_.capacity() == 0) buf_.adopt_storage(take_buffer(chunk_));
    return buf_.prepare(want);
  }
  void commit(std::size_t n) noexcept { buf_.commit(n); }
  /// True when the storage is much larger than the unread bytes (a pool chunk holding a header
  /// and a byte): worth trimming before waiting for the rest.
  bool oversized() const noexcept { return buf_.capacity() > 2 * buf_.readable().size() + kSlack; }
  /// Keeps only the unread bytes (the pool chunk goes back).
  void trim() {
    Bytes old = buf_.shrink_to_fit();
    if (old.size() == chunk_) give_buffer(std::move(old));
  }
  void release() noexcept {
    if (!buf_.empty()) return;
    Bytes b = buf_.release_storage();
    if (b.size() == chunk_) give_buffer(std::move(b));  // a grown one is just freed
  }

 private:
  static constexpr std::size_t kSlack = 8192;
  std::size_t chunk_;
  ByteBuffer buf_;
};

class FramedSession final : public services::SessionContext {
 public:
  FramedSession(net::Stream& stream, ServerState& state, SessionEntry& entry, FrameBuffer& in,
                std::span<std::byte> wait)
      : stream_(stream),
        state_(state),
        entry_(entry),
        in_(in),
        wait_(wait),
        out_(stream.get_executor(), entry.settings->limits.out_queue_frames,
             entry.settings->limits.out_queue_bytes),
        services_({.exec = {entry.settings->exec, state.commands, state.commands_started,
                            state.penalties, state.auth_failures, entry.settings->limits.max_frame,
                            state.command_duration.get(), &state.commands_failed},
                   .stats = state.stats},
                  *this) {
    // A client that cannot be written to is gone: end what its services run.
    out_.on_broken([this] { services_.end(wire::Exit::Limit::none); });
  }
  // The command text is the exec service's, gone with it; the entry may be listed a while longer
  // (a TLS close_notify).
  ~FramedSession() override { entry_.command = {}; }

  awaitable<void> run() { co_await (produce() && out_.run(stream_, entry_.bytes_out)); }

  // services::SessionContext
  asio::any_io_executor get_executor() override { return stream_.get_executor(); }
  services::FrameSink& sink() noexcept override { return out_; }
  const net::Peer& peer() const noexcept override { return stream_.peer(); }
  awaitable<void> client_gone() override {
    // Raced against work that often completes at once (a free command slot). One turn of the
    // loop first lets that side's completion arrive; when it has won, the hang-up watch and
    // its system calls are skipped.
    co_await asio::post(stream_.get_executor(), asio::use_awaitable);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return;
    co_await stream_.wait_hangup();
  }
  void set_busy(bool busy) noexcept override {
    entry_.busy = busy;
    if (!busy) entry_.last_read = Clock::now();  // idle time counts from the command's end
  }
  void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) override {
    stream_.enable_keepalive(idle, interval);
  }
  bool channel_protected() const noexcept override {
    return stream_.encrypted() || entry_.listener.loopback;
  }
  Result<std::array<std::byte, 32>> channel_binding(std::string_view label) override {
    return stream_.channel_binding(label);
  }
  void set_authenticated(std::string identity) override {
    entry_.identity = std::move(identity);
    entry_.authenticated = true;
    // Past AUTH: no deadline any more, no longer counted as pending, the full frame limit.
    entry_.deadline = Clock::time_point::max();
    settle(entry_);
  }
  std::uint64_t connection_id() const noexcept override { return entry_.id; }
  bool identified() const noexcept override { return entry_.authenticated || trusted_; }
  void set_service(const char* service) noexcept override { entry_.service = service; }
  void set_command(std::string_view command) noexcept override { entry_.command = command; }

 private:
  enum class Phase { preface, hello, ready };

  // Everything that sends: the reader's replies and the services' own work (a command's output
  // and EXIT). Once both are done nothing more can come, so the writer flushes and half-closes
  // (a no-op when the reader already finished or aborted it).
  awaitable<void> produce() {
    co_await (read_loop() && services_.run());
    co_await out_.finish();
  }

  // Whatever ends the reader (EOF, reset, protocol error, shutdown) ends what the services run:
  // a command's process group gets SIGTERM, then SIGKILL after the grace period.
  awaitable<void> read_loop() {
    co_await read_frames();
    services_.end(state_.stopping.load() ? wire::Exit::Limit::shutdown : wire::Exit::Limit::none);
  }

  // The tutorial's loop, framed: decode what we have, hand each frame to its service, read more.
  awaitable<void> read_frames() {
    for (;;) {
      for (;;) {
        if (phase_ == Phase::preface) {
          const auto st = wire::check_preface(in_.readable());
          if (st == wire::PrefaceStatus::need_more) break;
          if (st == wire::PrefaceStatus::bad) co_return co_await breach(fail(errc::bad_preface));
          in_.consume(wire::kPreface.size());
          phase_ = Phase::hello;
          continue;
        }
        const std::uint32_t limit = frame_limit();
        const auto d = wire::decode_frame(in_.readable(), limit);
        if (d.status == wire::DecodeStatus::need_more) break;
        if (d.status == wire::DecodeStatus::error)
          co_return co_await breach(frame_error(static_cast<errc>(d.error.value()), limit));
        const auto handled = co_await dispatch(d.type, d.payload);
        // The reply is with the writer now (which writes it at once when it is idle).
        if (d.type == wire::MsgType::upper_request && state_.upper_round_trip)
          state_.upper_round_trip->observe(Clock::now() - entry_.last_read);
        in_.consume(d.consumed);
        if (!handled) co_return co_await breach(handled.failure());
        if (*handled == services::Next::end) co_return;
      }
      // Nothing to decode, or the start of a frame in a buffer far larger than it while the
      // socket has nothing more (the last read did not fill its space, so the next one would
      // wait anyway): hold only what arrived (nothing when nothing did) while the peer takes
      // its time. A peer sending faster than we read keeps its buffer and is not slowed down.
      if (in_.empty()) {
        // Between frames: the read waits with the small wait buffer (chunk.hpp), so an idle
        // session holds no pooled buffer and a small request costs one system call. A frame
        // larger than it is read on below, into the pooled buffer.
        in_.release();
        auto [ec, n] = co_await stream_.read_some(asio::buffer(wait_.data(), wait_.size()));
        if (ec == asio::error::eof) co_return;  // a clean end between frames
        if (ec) co_return co_await ended(ec);
        in_.append(wait_.first(n));
        drained_ = n < wait_.size();
        entry_.bytes_in += n;
        entry_.last_read = Clock::now();
        continue;
      }
      if (drained_ && in_.oversized()) {
        in_.trim();
        if (auto [wec] = co_await stream_.wait_readable(); wec) co_return co_await ended(wec);
      }
      auto space = in_.prepare(bytes_wanted());
      auto [ec, n] = co_await stream_.read_some(asio::buffer(space.data(), space.size()));
      if (ec == asio::error::eof) {
        // A clean end: produce() finishes the writer once the services have sent their last
        // frames (a command ended by this EOF still gets its EXIT out to a half-closed client).
        if (!in_.empty())
          co_await breach(fail(errc::bad_frame, "connection closed in the middle of a frame"));
        co_return;
      }
      if (ec) co_return co_await ended(ec);
      drained_ = n < space.size();
      in_.commit(n);
      entry_.bytes_in += n;
      entry_.last_read = Clock::now();
    }
  }

  // The session's own message (HELLO, first and only first), or the service that owns the type.
  awaitable<services::Handled> dispatch(wire::MsgType type, ByteView payload) {
    if (phase_ == Phase::hello) return hello(type, payload);
    if ((type == wire::MsgType::auth || type == wire::MsgType::auth_start) && !entry_.authenticated)
      begin_auth();
    if (auto* service = services_.route(type)) return service->handle(type, payload);
    return refuse_unrouted(type);
  }

  awaitable<services::Handled> hello(wire::MsgType type, ByteView payload) {
    if (type != wire::MsgType::hello)
      co_return fail(errc::unexpected_message, "the first frame must be HELLO");
    auto hello = wire::decode_hello(payload);
    if (!hello) co_return fail(errc::bad_message, "malformed HELLO");
    if (hello->min_version > wire::kProtocolVersion || hello->max_version < wire::kProtocolVersion)
      co_return fail(
          errc::version_unsupported,
          fmt::format("this server speaks protocol version {} only", wire::kProtocolVersion));
    phase_ = Phase::ready;
    const wire::Welcome welcome{wire::kProtocolVersion, frame_limit(), state_.agent};
    auto p = services::Payload::of(welcome);
    const bool sent = co_await out_.send(wire::MsgType::welcome, std::move(p));
    // The HELLO phase is over: an upper-only client never authenticates, and is held to the
    // idle timeout from now on, not to the auth deadline.
    entry_.deadline = Clock::time_point::max();
    settle(entry_);
    co_return services::after_send(sent);
  }

  // AUTH or AUTH_START: authentication must be done within the deadline, counted from now (a
  // trickle of bytes does not extend it), and the session is pending again until it is.
  void begin_auth() {
    if (auth_begun_) return;
    auth_begun_ = true;
    if (entry_.settings->limits.auth_deadline.count() > 0)
      entry_.deadline = Clock::now() + entry_.settings->limits.auth_deadline;
    unsettle(entry_);
  }

  // The largest frame accepted now: small until the client has authenticated (or its Unix
  // socket's uid vouches for it), so that an anonymous peer cannot make us hold much.
  std::uint32_t frame_limit() const noexcept {
    if (entry_.authenticated || trusted_) return entry_.settings->limits.max_frame;
    return std::min(entry_.settings->limits.max_frame,
                    entry_.settings->limits.max_frame_unauthenticated);
  }

  // A decode error as the client reads it: an oversized frame names the size and the limit
  // that applies, and why that limit.
  Failure frame_error(errc code, std::uint32_t limit) const {
    if (code != errc::frame_too_large) return Failure{make_error_code(code), {}};
    const auto announced = wire::announced_length(in_.readable()).value_or(0);
    const bool before_auth = limit < entry_.settings->limits.max_frame;
    return Failure{make_error_code(code),
                   fmt::format("frame of {} bytes is over the limit of {}{}", announced, limit,
                               before_auth ? " before authentication" : "")};
  }

  static awaitable<services::Handled> refuse_unrouted(wire::MsgType type) {
    if (!wire::is_known_type(static_cast<std::uint8_t>(type)))
      co_return fail(errc::unknown_message,
                     fmt::format("unknown message type 0x{:02x}", static_cast<unsigned>(type)));
    co_return fail(errc::unexpected_message,
                   fmt::format("{} is not something a client sends", wire::type_name(type)));
  }

  // A read failed: the idle sweep cancelled it (tell the client why), or the peer is gone.
  awaitable<void> ended(std::error_code ec) {
    if (ec == asio::error::operation_aborted && entry_.idle_expired) {
      // Not a breach: the client is told, and run_session logs the idle timeout once.
      co_await tell_and_close(errc::idle_timeout, {});
      co_return;
    }
    out_.abort();
  }

  // Answer-then-drop (Redis): the client learns why, the server moves on.
  awaitable<void> breach(const Failure& f) {
    state_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    // Services report breaches as duplex::errc; anything else is our own fault.
    const bool ours = f.code.category() == duplex_category();
    const auto code = ours ? static_cast<errc>(f.code.value()) : errc::internal;
    spdlog::debug("[c{}] session ({}): protocol error: {}", entry_.id, entry_.peer(), f.message());
    std::string text = ours ? f.detail : f.message();
    co_await tell_and_close(code, std::move(text));
  }

  awaitable<void> tell_and_close(errc code, std::string text) {
    auto p = services::Payload::of(wire::make_error(code, std::move(text)));
    co_await out_.send(wire::MsgType::error, std::move(p));
    co_await out_.finish();
  }

  // How much room the next read needs: the rest of a partly received frame, but never more
  // than has arrived already (a header alone reserves nothing), and at least a small chunk.
  std::size_t bytes_wanted() const noexcept {
    constexpr std::size_t kChunk = 4096;
    const auto have = in_.readable();
    if (phase_ != Phase::preface) {
      if (auto len = wire::announced_length(have)) {
        const std::size_t total = wire::kHeaderSize + *len;
        if (total > have.size())
          return std::max(kChunk, std::min(total - have.size(), have.size()));
      }
    }
    return kChunk;
  }

  net::Stream& stream_;
  ServerState& state_;
  SessionEntry& entry_;
  FrameBuffer& in_;
  std::span<std::byte> wait_;
  Outbox out_;
  services::ServiceTable services_;
  Phase phase_ = Phase::preface;
  bool trusted_ = trusted_transport(stream_.peer(), entry_.settings->exec.auth);
  bool auth_begun_ = false;
  bool drained_ = true;  // the last read took less than it had room for
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
                             Chunk first, std::span<std::byte> wait) {
  // Preface and HELLO within the auth deadline from accept (or earlier, when TLS set it).
  if (entry.settings->limits.auth_deadline.count() > 0)
    entry.deadline = std::min(entry.deadline, entry.started + entry.settings->limits.auth_deadline);
  FrameBuffer in(entry.settings->limits.read_chunk);
  if (first.pooled.empty())
    in.append(first.bytes);
  else
    in.adopt(first.pooled.detach(), first.bytes.size());  // the first read's buffer, no copy
  FramedSession framed(stream, state, entry, in, wait);
  co_await framed.run();
}

}  // namespace duplex::server
