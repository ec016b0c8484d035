// What a service sends to its client: a message type and a payload, through a FrameSink. The
// payload carries room for the frame header in front, so a producer writes (or reads) straight
// into it and the sink sends it as it is: no copy per frame, nothing encoded twice.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::services {

/// One outgoing message's payload, with wire::kHeaderSize bytes of room before it. Empty is a
/// valid payload (an empty UPPER_REPLY), never a marker.
class Payload {
 public:
  /// `n` payload bytes for the producer to fill through data() (e.g. by a read).
  explicit Payload(std::size_t n = 0) : bytes_(wire::kHeaderSize + n) {}
  /// A copy of `p` (one allocation: the frame's own).
  static Payload copy_of(ByteView p) {
    Payload out(p.size());
    if (!p.empty()) std::memcpy(out.data().data(), p.data(), p.size());
    return out;
  }
  /// A typed message (Welcome, AuthOk, Exit, Error...) as wire encodes it. wire::encode writes
  /// a whole frame; its header occupies the room, and seal() writes the same bytes over it.
  template <class Message>
  static Payload of(const Message& m) {
    Payload out(Adopt{});
    wire::encode(m, out.bytes_);
    return out;
  }

  std::span<std::byte> data() noexcept { return std::span(bytes_).subspan(wire::kHeaderSize); }
  std::size_t size() const noexcept { return bytes_.size() - wire::kHeaderSize; }
  /// Keeps the first `n` payload bytes (after a short read); never grows.
  void shrink(std::size_t n) noexcept {
    if (n < size()) bytes_.resize(wire::kHeaderSize + n);
  }

  /// For sinks: writes the header (docs/PROTOCOL.md: u32 length, u8 type, u8 flags = 0) into the
  /// room and hands over the whole frame.
  Bytes seal(wire::MsgType type) && noexcept {
    const auto n = static_cast<std::uint32_t>(size());
    for (std::size_t i = 0; i < 4; ++i)
      bytes_[i] = static_cast<std::byte>((n >> (8 * (3 - i))) & 0xffu);
    bytes_[4] = static_cast<std::byte>(type);
    bytes_[5] = std::byte{0};
    return std::move(bytes_);
  }

 private:
  struct Adopt {};
  explicit Payload(Adopt) {}
  Bytes bytes_;
};

/// Where a service sends messages for its client. `send` waits while the client's queue is full
/// (that wait is the backpressure); false means the client is gone and the producer should stop
/// producing. `finish` is the explicit end: what was sent before it is delivered, then the
/// sending side closes; later sends return false.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual awaitable<bool> send(wire::MsgType type, Payload payload) = 0;
  virtual awaitable<void> finish() = 0;

  /// True when send_spliced() moves a payload from a pipe to the client without copying it
  /// (splice(2) on a plain socket); where false it reads the payload and sends it, which is
  /// correct but no faster than doing so oneself.
  virtual bool splices() const noexcept { return false; }
  /// Sends a `type` frame whose `n` payload bytes wait in the pipe `pipe_fd`: the pipe must hold
  /// them already, and nothing else may read it until this returns, which is once they are on
  /// their way (so the producer may read the pipe again). False as for send().
  virtual awaitable<bool> send_spliced(wire::MsgType type, int pipe_fd, std::size_t n) {
    Payload p(n);
    for (std::size_t got = 0; got < n;) {
      const ssize_t k = ::read(pipe_fd, p.data().data() + got, n - got);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) co_return false;  // the bytes promised are not there: nothing sane to send
      got += static_cast<std::size_t>(k);
    }
    co_return co_await send(type, std::move(p));
  }
};

}  // namespace duplex::services
