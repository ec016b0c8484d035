// Stream: the one interface sessions and clients use for a connected byte stream, whatever carries
// it (TCP, Unix socket, in-memory pair for tests; TLS later). The only place transports differ.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::net {

/// Who is at the other end, read once when the connection is made (never again through the fd).
struct Peer {
  /// For logs and stats: "127.0.0.1:54321", "[::1]:54321", "unix:pid=123,uid=1000", "memory".
  std::string address;
  /// Who per-client limits count: the address without its port ("127.0.0.1", "::1"), or
  /// "uid:1000" on a Unix socket (every connection of one user is one client).
  std::string client_key;
  /// The peer process's credentials from the kernel (SO_PEERCRED); Unix sockets only.
  std::optional<uid_t> uid;
  std::optional<pid_t> pid;
  /// Over TLS, the fingerprint of the key the peer proved it holds ("SHA256:…", what
  /// known_hosts and authorized_keys list); empty when it showed none (plain sockets, a TLS client
  /// without a certificate).
  std::string key_fingerprint;
  /// Behind a load balancer (the PROXY protocol): the balancer's own address ("127.0.0.1:40000"),
  /// while `address` and `client_key` are the client's as the balancer carried them. Empty for a
  /// direct connection.
  std::string proxied_by;
};

/// Outcome of a read or write: `auto [ec, n] = co_await s.read_some(buf);`.
struct IoResult {
  std::error_code ec;
  std::size_t n = 0;
};

/// A connected, bidirectional byte stream. Every operation runs on get_executor() (one thread);
/// expected endings (EOF, reset, cancellation) are returned as values, never thrown.
/// At most one read-side operation (wait_readable, read_some) and one write-side operation
/// (write, shutdown_send) may be pending at a time; wait_hangup may run beside them.
class Stream {
 public:
  virtual ~Stream() = default;
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  virtual asio::any_io_executor get_executor() = 0;

  /// Completes when read_some() would not block: bytes already held above the socket count
  /// (a TLS layer may have decrypted bytes while the socket is not readable). Takes no buffer, so
  /// an idle connection holds none. `auto [ec] = co_await s.wait_readable();` — a tuple, as
  /// Asio's as_tuple gives it, so that a plain socket hands Asio's own wait back without a
  /// coroutine frame of its own: this is what every idle connection waits in.
  virtual awaitable<std::tuple<std::error_code>> wait_readable() = 0;
  /// Reads at least one byte into `into`; asio::error::eof when the peer finished sending.
  virtual awaitable<IoResult> read_some(asio::mutable_buffer into) = 0;
  /// Reads what has already arrived, without waiting: at least one byte, eof, an error, or
  /// asio::error::would_block when nothing is there yet (read_some() then waits for it). For
  /// taking the rest of a message after a read into a small buffer filled it. The default knows
  /// of nothing already there and always says would_block: correct for any stream, only slower.
  virtual IoResult try_read_some(asio::mutable_buffer into) noexcept {
    (void)into;
    return {make_error_code(asio::error::would_block), 0};
  }
  /// Writes all of `bufs` (gathered into as few system calls as possible).
  awaitable<IoResult> write(std::span<const asio::const_buffer> bufs) { return write_all(bufs); }
  awaitable<IoResult> write(asio::const_buffer b) {
    // A coroutine, so that `b` lives in this frame while the write runs.
    co_return co_await write_all(std::span<const asio::const_buffer>(&b, 1));
  }

  /// Completes when the peer has hung up — finished sending (FIN), reset, or vanished — even
  /// while bytes it sent earlier are still unread. For watching a peer we are not reading from
  /// (a command that does not read its stdin). The error says how it ended.
  virtual awaitable<std::error_code> wait_hangup() = 0;

  /// Graceful end of our sending side: the peer reads EOF after everything written (a TCP or Unix
  /// half-close; TLS sends close_notify). Errors are ignored: the peer may be gone.
  virtual awaitable<void> shutdown_send() = 0;
  /// Pending operations complete with operation_aborted; the stream stays open.
  virtual void cancel() noexcept = 0;
  /// Closes at once; pending operations complete with operation_aborted.
  virtual void close() noexcept = 0;
  /// Closes at once and discards what is still queued to send: the peer sees a reset, not EOF
  /// (socket(7) SO_LINGER 0). For a connection being given up while the peer has stopped
  /// reading: a FIN queued behind unsent bytes would never reach it.
  virtual void abort() noexcept = 0;
  virtual bool is_open() const noexcept = 0;

  /// True when write_spliced() and read_spliced() move bytes between a pipe and the peer inside
  /// the kernel (splice(2)): a plain socket. Other streams (TLS, memory) have only the copying
  /// calls, and their callers keep to those.
  virtual bool splices() const noexcept { return false; }
  /// Writes all of `head`, then exactly `n` bytes taken from the pipe `pipe_fd`, which holds them
  /// already and which nothing else reads meanwhile (a frame header, then its payload straight
  /// from a command's pipe). A write-side operation. Only where splices().
  virtual awaitable<IoResult> write_spliced(std::span<const asio::const_buffer> head, int pipe_fd,
                                            std::size_t n) {
    (void)head;
    (void)pipe_fd;
    (void)n;
    co_return IoResult{make_error_code(std::errc::operation_not_supported), 0};
  }
  /// Moves exactly `n` bytes from the peer into the pipe `pipe_fd` (a payload straight to our
  /// stdout), blocking the thread while the pipe is full, as a write to it would. A read-side
  /// operation. std::errc::broken_pipe when the pipe's reader is gone; asio::error::eof when the
  /// peer finished first. Only where splices().
  virtual awaitable<IoResult> read_spliced(int pipe_fd, std::size_t n) {
    (void)pipe_fd;
    (void)n;
    co_return IoResult{make_error_code(std::errc::operation_not_supported), 0};
  }

  /// Probe a silent peer (TCP keepalive): a vanished host then ends the connection with an error
  /// after about idle + 3 * interval. No-op where the transport cannot vanish (Unix, memory).
  virtual void enable_keepalive(std::chrono::seconds idle, std::chrono::seconds interval) noexcept {
    (void)idle;
    (void)interval;
  }

  /// Read once, when the connection was made.
  const Peer& peer() const noexcept { return peer_; }
  /// Replaces who the peer is, before any session has looked: the client a trusted load balancer
  /// names in its PROXY header. The session's thread.
  void replace_peer(Peer p) noexcept { peer_ = std::move(p); }

  /// True when the bytes travel encrypted (TLS): what protected mode asks of a network listener.
  virtual bool encrypted() const noexcept { return false; }
  /// 32 bytes both ends derive from this connection's secrets under `label` (TLS exporter, RFC
  /// 8446 §7.5): what authentication binds itself to, so that a relay between two connections
  /// cannot forward it. Fails on a stream that has no such secrets (plain sockets, memory).
  virtual Result<std::array<std::byte, 32>> channel_binding(std::string_view label) {
    (void)label;
    return fail(std::errc::operation_not_supported, "no channel binding on a plain stream");
  }

 protected:
  /// The transport's gathered write of everything in `bufs`.
  virtual awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) = 0;

  Peer peer_;
};

}  // namespace duplex::net
