// UniqueFd: sole owner of one file descriptor, closed exactly once. Move-only; no I/O of its own.
#pragma once

#include <unistd.h>

#include <utility>

namespace duplex::proc {

/// Owns a file descriptor (or none: -1) and closes it on destruction. Move-only.
/// Not thread-safe: one owner at a time, like std::unique_ptr.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  /// By-value parameter: move-assignment closes our old fd (in o's destructor) after the swap.
  UniqueFd& operator=(UniqueFd o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  ~UniqueFd() { close_fd(fd_); }

  /// The fd, still owned by us; -1 when empty.
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives up ownership without closing; the caller must close the returned fd.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the current fd (if any) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept { close_fd(std::exchange(fd_, fd)); }

 private:
  // close(2): never retry on EINTR. On Linux the fd is released even when close reports EINTR,
  // and retrying could close an fd another thread has just been given.
  static void close_fd(int fd) noexcept {
    if (fd >= 0) ::close(fd);
  }

  int fd_;
};

}  // namespace duplex::proc
