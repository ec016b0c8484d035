// Pipes and fd flags: thin checked wrappers over pipe2(2) and fcntl(2).
#include "duplex/proc/pipe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace duplex::proc {
namespace {

std::error_code last_error() noexcept {
  return {errno, std::system_category()};
}

}  // namespace

Result<Pipe> make_pipe(int extra_flags) noexcept {
  int fds[2];
  // O_CLOEXEC from the start: a fork in another thread between pipe() and fcntl() would
  // otherwise leak the ends into an unrelated child (pipe2(2)).
  if (::pipe2(fds, O_CLOEXEC | extra_flags) != 0) return last_error();
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::error_code set_nonblocking(int fd, bool on) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return last_error();
  int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return last_error();
  return {};
}

std::error_code set_cloexec(int fd, bool on) noexcept {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return last_error();
  int wanted = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (wanted != flags && ::fcntl(fd, F_SETFD, wanted) != 0) return last_error();
  return {};
}

std::size_t grow_pipe(int fd, std::size_t bytes) noexcept {
  const int now = ::fcntl(fd, F_GETPIPE_SZ);
  if (now < 0) return 0;
  if (static_cast<std::size_t>(now) >= bytes) return static_cast<std::size_t>(now);
  const int got =
      ::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(std::min<std::size_t>(bytes, 1u << 30)));
  return static_cast<std::size_t>(got < 0 ? now : got);
}

}  // namespace duplex::proc
