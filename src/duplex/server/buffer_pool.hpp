// Per-thread pool of read buffers: a connection holds one only while it has bytes to process,
// so 10,000 idle connections cost no buffer memory.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "duplex/core/bytes.hpp"

namespace duplex::server {

inline std::vector<Bytes>& detail_buffer_pool() {
  thread_local std::vector<Bytes> p;
  return p;
}

/// Takes a buffer of exactly `size` bytes from this thread's pool (or allocates one).
inline Bytes take_buffer(std::size_t size);
/// Gives a buffer back to this thread's pool (kept only if the pool has room).
inline void give_buffer(Bytes&& b) noexcept;

class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(std::size_t size) : buf_(take(size)) {}
  PooledBuffer(PooledBuffer&& o) noexcept : buf_(std::move(o.buf_)) { o.buf_.clear(); }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    if (this != &o) {
      give_back();
      buf_ = std::move(o.buf_);
      o.buf_.clear();
    }
    return *this;
  }
  ~PooledBuffer() { give_back(); }

  std::byte* data() noexcept { return buf_.data(); }
  std::size_t size() const noexcept { return buf_.size(); }
  bool empty() const noexcept { return buf_.empty(); }
  /// Returns the memory to this thread's pool now.
  void release() noexcept { give_back(); }
  /// Hands the memory over to a new owner (who may give it back with give_buffer()).
  Bytes detach() noexcept { return std::exchange(buf_, Bytes()); }

 private:
  static Bytes take(std::size_t size) { return take_buffer(size); }
  void give_back() noexcept {
    if (buf_.empty()) return;
    give_buffer(std::move(buf_));
    buf_ = Bytes();
  }
  Bytes buf_;
};

inline Bytes take_buffer(std::size_t size) {
  auto& p = detail_buffer_pool();
  if (!p.empty() && p.back().size() == size) {
    Bytes b = std::move(p.back());
    p.pop_back();
    return b;
  }
  return Bytes(size);
}

inline void give_buffer(Bytes&& b) noexcept {
  constexpr std::size_t kMaxPooled = 64;
  auto& p = detail_buffer_pool();
  if (!b.empty() && p.size() < kMaxPooled) p.push_back(std::move(b));
}

}  // namespace duplex::server
