// ByteBuffer: bytes received and not yet decoded — a read position, a write position, and
// storage that grows only when a frame needs it. Pure; used by the server's and client's readers.
#pragma once

#include <cstring>
#include <span>
#include <utility>

#include "duplex/core/bytes.hpp"

namespace duplex {

class ByteBuffer {
 public:
  ByteView readable() const noexcept { return {buf_.data() + begin_, end_ - begin_}; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Space to write into, at least `want` bytes. Moves unread bytes to the front before growing,
  /// and grows only when that is not enough (so a steady stream never reallocates).
  std::span<std::byte> prepare(std::size_t want) {
    if (buf_.size() - end_ < want && begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < want) buf_.resize(end_ + want);
    return {buf_.data() + end_, buf_.size() - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }

  std::size_t capacity() const noexcept { return buf_.size(); }
  /// Moves the unread bytes into storage of exactly their size and returns the old storage (for
  /// a pool): a reader waiting for the rest of a frame then holds only what has arrived.
  Bytes shrink_to_fit() {
    const ByteView r = readable();
    Bytes small(r.begin(), r.end());
    begin_ = 0;
    end_ = small.size();
    return std::exchange(buf_, std::move(small));
  }
  /// Hands the storage over (e.g. back to a pool). Only while empty.
  Bytes release_storage() noexcept {
    begin_ = end_ = 0;
    return std::exchange(buf_, Bytes());
  }
  /// Uses `b` as storage (its size is the capacity). Only while empty.
  void adopt_storage(Bytes b) noexcept {
    buf_ = std::move(b);
    begin_ = end_ = 0;
  }

 private:
  Bytes buf_;
  std::size_t begin_ = 0, end_ = 0;
};

}  // namespace duplex
