// Anonymous pipes for a child's stdio: both ends close-on-exec, owned by UniqueFd. No Asio.
#pragma once

#include <cstddef>
#include <system_error>

#include "duplex/core/result.hpp"
#include "duplex/proc/unique_fd.hpp"

namespace duplex::proc {

/// Both ends of one pipe: bytes written to `write` come out of `read`.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

/// pipe2(O_CLOEXEC | extra_flags) for both ends. extra_flags may add O_NONBLOCK or O_DIRECT;
/// to make only the parent's end non-blocking, call set_nonblocking() on that end instead.
/// Errors: the errno of pipe2 (EMFILE, ENFILE, EINVAL) in std::system_category.
Result<Pipe> make_pipe(int extra_flags = 0) noexcept;

/// Sets or clears O_NONBLOCK on `fd` (a per-open-file flag: the other end of a pipe is unaffected).
std::error_code set_nonblocking(int fd, bool on) noexcept;

/// Sets or clears FD_CLOEXEC on `fd`.
std::error_code set_cloexec(int fd, bool on) noexcept;

/// Asks for a pipe buffer of at least `bytes` (F_SETPIPE_SZ, either end) and returns the size it
/// has afterwards. Best effort: an unprivileged user past /proc/sys/fs/pipe-max-size or
/// pipe-user-pages-soft keeps the size the pipe had, which is returned; 0 when `fd` is no pipe.
std::size_t grow_pipe(int fd, std::size_t bytes) noexcept;

}  // namespace duplex::proc
