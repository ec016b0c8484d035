// DatagramSocket: a bound UDP (IPv4/IPv6, unicast or multicast group) or Unix datagram socket
// that serves many peers, with batched, never-blocking receive (recvmmsg) and send (sendmmsg).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::net {

/// Largest datagram a DatagramSocket receives whole: 64 KiB, above the largest UDP payload
/// (65,507 bytes over IPv4, 65,527 over IPv6); a longer Unix datagram arrives truncated.
inline constexpr std::size_t kMaxDatagram = 65536;

struct DatagramOptions {
  /// Interface (name, e.g. "eth0") on which to join a multicast group; empty: the zone id of an
  /// IPv6 group address, else the kernel's choice (the default route's interface).
  std::string multicast_if;
};

/// Up to capacity() datagrams with their senders, as one receive() left them; each may then be
/// marked for a reply, written into its own slot (in place, or any bytes up to kMaxDatagram).
/// Slots are reused: no allocation per datagram. Not thread-safe.
class DatagramBatch {
 public:
  explicit DatagramBatch(std::size_t capacity);
  DatagramBatch(const DatagramBatch&) = delete;
  DatagramBatch& operator=(const DatagramBatch&) = delete;
  ~DatagramBatch();

  std::size_t capacity() const noexcept { return capacity_; }
  /// Datagrams held since the last receive().
  std::size_t size() const noexcept { return size_; }
  /// The bytes of datagram i as received (at most kMaxDatagram).
  std::span<std::byte> datagram(std::size_t i) noexcept;
  /// The datagram was longer than kMaxDatagram and lost its tail (MSG_TRUNC).
  bool truncated(std::size_t i) const noexcept;
  /// False for a datagram from an unbound Unix socket: it has no address to reply to.
  bool has_sender(std::size_t i) const noexcept;
  /// The sender for logs: "127.0.0.1:5000", "[::1]:5000", "unixgram:///path", "unnamed".
  std::string sender(std::size_t i) const;

  /// Slot i's whole buffer (kMaxDatagram bytes), starting with the datagram: write a reply here.
  std::span<std::byte> buffer(std::size_t i) noexcept;
  /// Answers datagram i with the first `n` bytes of buffer(i) at the next send_replies().
  void reply(std::size_t i, std::size_t n) noexcept;

 private:
  friend class DatagramSocket;
  struct Slot;
  std::size_t capacity_;
  std::size_t size_ = 0;
  std::unique_ptr<std::byte[]> data_;  // capacity_ x kMaxDatagram, touched only as datagrams land
  std::vector<Slot> slots_;
  std::vector<::mmsghdr> in_, out_;
};

/// What one send_replies() did with the replies it was given.
struct SendCounts {
  std::size_t sent = 0;
  std::size_t dropped = 0;  // would block, or failed (peer gone, no route, ...)
  std::error_code last_error;
};

/// Owns the socket's fd; plain system calls, no event loop: a datagram front gives its socket a
/// thread of its own that blocks in receive() (docs/BENCHMARKS.md: fewer system calls per
/// datagram than waking through epoll).
class DatagramSocket {
 public:
  /// Binds `ep` (udp or unixgram).
  /// UDP: no SO_REUSEADDR on a unicast address (UDP has no TIME_WAIT to wait out, and with it
  /// a second server could bind the same port and steal datagrams), so a second server is
  /// refused with "address already in use"; on a multicast group address SO_REUSEADDR, so that
  /// several servers on one host each get a copy of every datagram, and the group is joined.
  /// IPv6 sockets are v6-only. On a wildcard address (0.0.0.0, ::) replies leave from the
  /// address the datagram was sent to (IP_PKTINFO), so a client that asked 127.0.0.2 hears back
  /// from 127.0.0.2.
  /// Unix: the socket file is owner-only (0600); a stale file is replaced only when nothing is
  /// bound to it; the file is removed when the socket is destroyed.
  /// A failure's detail is one line naming the address.
  static Result<DatagramSocket> open(const Endpoint& ep, const DatagramOptions& options = {});
  /// Takes a bound UDP or Unix datagram socket from someone else (socket activation), made
  /// blocking as receive() needs; on a wildcard address replies leave from the asked address, as
  /// with open(). A Unix socket's file is left in place at the end (the service manager owns it).
  static Result<DatagramSocket> adopt(int fd);

  DatagramSocket(DatagramSocket&& o) noexcept;
  DatagramSocket& operator=(DatagramSocket&&) = delete;
  ~DatagramSocket();

  /// The bound address, with the real port when port 0 was asked.
  const Endpoint& endpoint() const noexcept { return bound_; }
  /// The group joined, for a multicast address ("239.255.42.99 on eth0").
  const std::string& group() const noexcept { return group_; }
  int native_handle() const noexcept { return fd_; }

  /// Takes what is queued, up to batch.capacity() datagrams. With `wait`, blocks until there is
  /// at least one (recvmmsg's MSG_WAITFORONE) or until shutdown(); without, returns 0 when
  /// nothing is queued. After shutdown() it returns at once, with nothing the caller should
  /// answer. An error is the socket's (e.g. ECONNREFUSED, reported once after an ICMP error).
  Result<std::size_t> receive(DatagramBatch& batch, bool wait) noexcept;
  /// Sends the replies marked in `batch` to their senders, never blocking: one that would
  /// block or fails is dropped, and the others still go.
  SendCounts send_replies(DatagramBatch& batch) noexcept;
  /// Wakes a receive() blocked in another thread; the socket takes nothing more. Any thread.
  void shutdown() noexcept;

 private:
  DatagramSocket(int fd, Endpoint bound, bool pktinfo) noexcept
      : fd_(fd), bound_(std::move(bound)), pktinfo_(pktinfo) {}

  int fd_ = -1;
  Endpoint bound_;
  bool pktinfo_ = false;  // IP_PKTINFO / IPV6_RECVPKTINFO is on: answer from the asked address
  std::string group_;
  // Device + inode of the Unix socket file we created: removed at exit only if still ours.
  std::optional<std::pair<unsigned long, unsigned long>> owned_path_id_;
};

}  // namespace duplex::net
