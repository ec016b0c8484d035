// TlsStream: Asio's ssl::stream behind the Stream interface, with handshake deadlines, a
// close_notify that does not wait for the peer's, and readiness that sees OpenSSL's buffers.
#include "duplex/net/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "duplex/core/known_hosts.hpp"
#include "duplex/net/tls_identity.hpp"

namespace duplex::net {
namespace {

using namespace asio::experimental::awaitable_operators;
using HandshakeType = asio::ssl::stream_base::handshake_type;

// TLS's largest record payload (RFC 8446 §5.1): small buffers are gathered up to this, so that a
// frame header and its payload travel in one record and one send.
constexpr std::size_t kMaxRecord = 16384;

struct HandshakeOutcome {
  std::error_code ec;
  bool timed_out = false;
};

template <class S>
awaitable<HandshakeOutcome> run_handshake(S& s, HandshakeType type, asio::const_buffer initial,
                                          std::chrono::milliseconds deadline) {
  asio::steady_timer timer(s.get_executor(), deadline);
  // One timer for the whole handshake: bytes that trickle in do not extend it.
  if (initial.size() > 0) {
    auto r = co_await (s.async_handshake(type, initial, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) co_return HandshakeOutcome{make_error_code(std::errc::timed_out), true};
    co_return HandshakeOutcome{std::get<0>(std::get<0>(r)), false};
  }
  auto r = co_await (s.async_handshake(type, use_tuple) || timer.async_wait(use_tuple));
  if (r.index() == 1) co_return HandshakeOutcome{make_error_code(std::errc::timed_out), true};
  co_return HandshakeOutcome{std::get<0>(std::get<0>(r)), false};
}

std::string handshake_reason(std::error_code ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
      ec == asio::error::connection_reset)
    return "the peer closed the connection";
  return ec.message();
}

template <class Socket>
awaitable<Result<std::unique_ptr<TlsStream>>> accept_on(asio::ssl::context& ctx, Socket s,
                                                        Peer peer, asio::const_buffer initial,
                                                        std::chrono::milliseconds deadline) {
  tune_socket(s);  // SocketStream did it already; a socket from elsewhere gets it here
  std::unique_ptr<TlsStream> tls;
  try {
    tls =
        std::make_unique<TlsStream>(asio::ssl::stream<Socket>(std::move(s), ctx), std::move(peer));
  } catch (const std::system_error& e) {  // SSL_new failed: out of memory
    co_return fail(e.code(), fmt::format("cannot start TLS: {}", e.code().message()));
  }
  auto ok = co_await tls->handshake(HandshakeType::server, initial, deadline);
  if (!ok) {
    tls->close();
    co_return std::move(ok).failure();
  }
  co_return std::move(tls);
}

}  // namespace

TlsStream::TlsStream(TcpTls s, Peer peer) : s_(std::in_place_type<TcpTls>, std::move(s)) {
  peer_ = std::move(peer);
}

TlsStream::TlsStream(UnixTls s, Peer peer) : s_(std::in_place_type<UnixTls>, std::move(s)) {
  peer_ = std::move(peer);
}

asio::any_io_executor TlsStream::get_executor() {
  return std::visit([](auto& s) -> asio::any_io_executor { return s.get_executor(); }, s_);
}

SSL* TlsStream::native_handle() noexcept {
  return std::visit([](auto& s) { return s.native_handle(); }, s_);
}

awaitable<Status> TlsStream::handshake(HandshakeType type, asio::const_buffer initial,
                                       std::chrono::milliseconds deadline) {
  const auto outcome =
      co_await std::visit([&](auto& s) { return run_handshake(s, type, initial, deadline); }, s_);
  if (outcome.timed_out)
    co_return fail(outcome.ec, fmt::format("TLS handshake with {} timed out after {} ms",
                                           peer_.address, deadline.count()));
  if (outcome.ec)
    co_return fail(outcome.ec, fmt::format("TLS handshake with {} failed: {}", peer_.address,
                                           handshake_reason(outcome.ec)));
  // The leaf certificate's key is the one TLS 1.3's CertificateVerify proved the peer holds (or,
  // resumed, the one of the session the ticket was issued for).
  if (X509* cert = SSL_get0_peer_certificate(native_handle()); cert != nullptr) {
    auto fp = certificate_fingerprint(cert);
    if (!fp)
      co_return fail(fp.error(), fmt::format("TLS peer {}: {}", peer_.address, fp.message()));
    peer_.key_fingerprint = std::move(*fp);
  } else if (type == HandshakeType::client) {
    co_return fail(std::errc::protocol_error,
                   fmt::format("TLS server {} showed no certificate", peer_.address));
  }
  co_return Status{};
}

awaitable<std::tuple<std::error_code>> TlsStream::wait_readable() {
  if (has_held_ || ended_ || SSL_pending(native_handle()) > 0)
    co_return std::tuple{std::error_code{}};
  // Asio keeps undecrypted bytes where SSL_pending cannot see them, and a readable socket may
  // hold only a session ticket: decrypting one byte is the only exact test.
  auto [ec, n] = co_await std::visit(
      [&](auto& s) { return s.async_read_some(asio::buffer(held_), use_tuple); }, s_);
  if (ec == asio::error::operation_aborted) co_return std::tuple{ec};
  if (ec)
    ended_ = ec;  // readable, in the sense that read_some will not wait: it reports the end
  else
    has_held_ = n == 1;
  co_return std::tuple{std::error_code{}};
}

awaitable<IoResult> TlsStream::read_some(asio::mutable_buffer into) {
  if (into.size() == 0) co_return IoResult{};
  if (has_held_) {
    has_held_ = false;
    std::memcpy(into.data(), held_.data(), 1);
    std::size_t n = 1;
    // Whatever else is decrypted comes along without waiting: SSL_read serves it from the current
    // record and touches no I/O.
    SSL* ssl = native_handle();
    if (into.size() > 1 && SSL_pending(ssl) > 0) {
      std::size_t more = 0;
      if (SSL_read_ex(ssl, static_cast<char*>(into.data()) + 1, into.size() - 1, &more) == 1)
        n += more;
      ERR_clear_error();
    }
    co_return IoResult{{}, n};
  }
  if (ended_) co_return IoResult{ended_, 0};
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return s.async_read_some(into, use_tuple); }, s_);
  co_return IoResult{ec, n};
}

awaitable<IoResult> TlsStream::write_all(std::span<const asio::const_buffer> bufs) {
  auto write_one = [this](asio::const_buffer b) {
    return std::visit([&](auto& s) { return asio::async_write(s, b, use_tuple); }, s_);
  };
  if (bufs.size() == 1) {
    auto [ec, n] = co_await write_one(bufs[0]);
    co_return IoResult{ec, n};
  }
  // Asio's ssl::stream encrypts one buffer per record: gather small ones instead (a frame header
  // alone would cost a record and a send of its own).
  std::size_t written = 0;
  std::vector<std::byte> batch;
  for (const auto& b : bufs) {
    const auto* p = static_cast<const std::byte*>(b.data());
    if (batch.size() + b.size() <= kMaxRecord) {
      batch.insert(batch.end(), p, p + b.size());
      continue;
    }
    // A large buffer tops up the batch to a full record (a frame header then shares the first
    // record of its payload instead of making a record and a send of its own) and goes on alone.
    std::size_t taken = 0;
    if (!batch.empty()) {
      taken = kMaxRecord - batch.size();
      batch.insert(batch.end(), p, p + taken);
      auto [ec, n] = co_await write_one(asio::buffer(batch));
      written += n;
      if (ec) co_return IoResult{ec, written};
      batch.clear();
    }
    const std::size_t rest = b.size() - taken;
    if (rest < kMaxRecord) {
      batch.insert(batch.end(), p + taken, p + b.size());
      continue;
    }
    auto [ec, n] = co_await write_one(asio::buffer(p + taken, rest));
    written += n;
    if (ec) co_return IoResult{ec, written};
  }
  if (!batch.empty()) {
    auto [ec, n] = co_await write_one(asio::buffer(batch));
    written += n;
    if (ec) co_return IoResult{ec, written};
  }
  co_return IoResult{{}, written};
}

awaitable<std::error_code> TlsStream::wait_hangup() {
  const int fd =
      std::visit([](auto& s) { return static_cast<int>(s.lowest_layer().native_handle()); }, s_);
  co_return co_await wait_socket_hangup(get_executor(), fd);
}

awaitable<void> TlsStream::shutdown_send() {
  SSL* ssl = native_handle();
  if (is_open() && SSL_is_init_finished(ssl) == 1 &&
      (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0) {
    // Asio's shutdown sends close_notify and then reads until the peer's arrives, taking records
    // that may be data while our reads go on (OpenSSL then fails the connection). Marking the
    // peer's close_notify as received makes SSL_shutdown only send; Asio runs that SSL_shutdown
    // inside async_shutdown() itself (a callback token starts the operation at once), so the
    // mark is undone before any other handler can run SSL_read.
    struct Pending {
      explicit Pending(asio::any_io_executor ex) : timer(ex, kCloseNotifyTimeout) {}
      asio::steady_timer timer;
      bool done = false;
    };
    auto state = std::make_shared<Pending>(get_executor());
    const int received = SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN;
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
    std::visit(
        [&](auto& s) {
          s.async_shutdown([state](std::error_code) {
            state->done = true;
            state->timer.cancel();
          });
        },
        s_);
    SSL_set_shutdown(ssl, (SSL_get_shutdown(ssl) & ~SSL_RECEIVED_SHUTDOWN) | received);
    // Bounded: a peer that reads nothing leaves the alert unsent; the half-close below then wakes
    // the pending write with EPIPE.
    if (!state->done) co_await state->timer.async_wait(use_tuple);
  }
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.lowest_layer().shutdown(asio::socket_base::shutdown_send, ignored);
      },
      s_);
}

void TlsStream::cancel() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.lowest_layer().cancel(ignored);
      },
      s_);
}

void TlsStream::close() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.lowest_layer().close(ignored);
      },
      s_);
}

void TlsStream::abort() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.lowest_layer().set_option(asio::socket_base::linger(true, 0), ignored);
        s.lowest_layer().close(ignored);
      },
      s_);
}

bool TlsStream::is_open() const noexcept {
  return std::visit([](const auto& s) { return s.lowest_layer().is_open(); }, s_);
}

void TlsStream::enable_keepalive(std::chrono::seconds idle,
                                 std::chrono::seconds interval) noexcept {
  if (auto* t = std::get_if<TcpTls>(&s_))
    enable_tcp_keepalive(t->lowest_layer().native_handle(), idle, interval);
}

bool TlsStream::session_reused() noexcept {
  return SSL_session_reused(native_handle()) == 1;
}

Result<std::array<std::byte, 32>> TlsStream::exporter(std::string_view label) {
  std::array<std::byte, 32> out{};
  if (SSL_export_keying_material(native_handle(), reinterpret_cast<unsigned char*>(out.data()),
                                 out.size(), label.data(), label.size(), nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return fail(std::errc::protocol_error,
                fmt::format("TLS with {}: no keying material (handshake not done)", peer_.address));
  }
  return out;
}

std::string TlsStream::description() {
  SSL* ssl = native_handle();
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  return fmt::format("{} {}", SSL_get_version(ssl),
                     cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "(none)");
}

awaitable<Result<std::unique_ptr<TlsStream>>> tls_accept(asio::ssl::context& ctx, ip::tcp::socket s,
                                                         Peer peer, asio::const_buffer already_read,
                                                         std::chrono::milliseconds deadline) {
  return accept_on(ctx, std::move(s), std::move(peer), already_read, deadline);
}

awaitable<Result<std::unique_ptr<TlsStream>>> tls_accept(asio::ssl::context& ctx,
                                                         unix_proto::socket s, Peer peer,
                                                         asio::const_buffer already_read,
                                                         std::chrono::milliseconds deadline) {
  return accept_on(ctx, std::move(s), std::move(peer), already_read, deadline);
}

awaitable<Result<std::unique_ptr<TlsStream>>> tls_connect(TlsClientContext& ctx, ConnectedSocket s,
                                                          const std::string& server,
                                                          std::chrono::milliseconds deadline) {
  std::unique_ptr<TlsStream> tls;
  try {
    tls = std::visit(
        [&](auto& sock) {
          Peer peer = socket_peer(sock);
          using Socket = std::decay_t<decltype(sock)>;
          return std::make_unique<TlsStream>(
              asio::ssl::stream<Socket>(std::move(sock), ctx.context()), std::move(peer));
        },
        s);
  } catch (const std::system_error& e) {
    co_return fail(e.code(), fmt::format("cannot start TLS: {}", e.code().message()));
  }
  ctx.prepare(tls->native_handle(), server);
  auto ok = co_await tls->handshake(HandshakeType::client, asio::const_buffer(), deadline);
  if (!ok) {
    tls->close();
    co_return std::move(ok).failure();
  }
  ctx.settle(tls->native_handle());
  co_return std::move(tls);
}

awaitable<Result<std::unique_ptr<TlsStream>>> tls_dial(TlsClientContext& ctx, const Endpoint& ep,
                                                       std::chrono::milliseconds deadline,
                                                       DialSteps steps) {
  auto sock = co_await connect_socket(ep, steps);
  if (!sock) co_return std::move(sock).failure();
  const std::string server = ep.is_unix() ? ep.url() : known_host_name(ep.host, ep.port);
  if (steps) steps(fmt::format("TLS handshake with {}", server));
  co_return co_await tls_connect(ctx, std::move(*sock), server, deadline);
}

}  // namespace duplex::net
