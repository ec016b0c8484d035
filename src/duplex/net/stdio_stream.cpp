// take_stdio_stream: fds 0 and 1 as a socket stream or a pipe pair.
#include "duplex/net/stdio_stream.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>
#include <asio/posix/stream_descriptor.hpp>

#include "duplex/core/errors.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/socket_stream.hpp"

namespace duplex::net {
namespace {

// Reads fd 0, writes fd 1 (each its own descriptor); a half-close is closing the write side.
class PipeStream final : public Stream {
 public:
  PipeStream(const asio::any_io_executor& ex, int in, int out)
      : in_(ex, in),
        out_(ex, out),
        in_flags_(::fcntl(in, F_GETFL)),
        out_flags_(::fcntl(out, F_GETFL)) {
    peer_.address = "stdio";
    peer_.client_key = "stdio";
  }
  ~PipeStream() override { close(); }

  asio::any_io_executor get_executor() override { return in_.get_executor(); }
  awaitable<std::tuple<std::error_code>> wait_readable() override {
    return in_.async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
  }
  awaitable<IoResult> read_some(asio::mutable_buffer into) override {
    auto [ec, n] = co_await in_.async_read_some(into, use_tuple);
    co_return IoResult{ec, n};
  }
  awaitable<std::error_code> wait_hangup() override {
    // The reader of our output went away: the write end reports an error (EPOLLERR).
    auto [ec] = co_await out_.async_wait(asio::posix::descriptor_base::wait_error, use_tuple);
    co_return ec ? ec : make_error_code(asio::error::connection_reset);
  }
  awaitable<void> shutdown_send() override {
    restore(out_, out_flags_);
    std::error_code ignored;
    out_.close(ignored);
    co_return;
  }
  void cancel() noexcept override {
    std::error_code ignored;
    in_.cancel(ignored);
    out_.cancel(ignored);
  }
  void close() noexcept override {
    restore(in_, in_flags_);
    restore(out_, out_flags_);
    std::error_code ignored;
    in_.close(ignored);
    out_.close(ignored);
  }
  void abort() noexcept override { close(); }
  bool is_open() const noexcept override { return in_.is_open(); }

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override {
    if (!out_.is_open()) co_return IoResult{make_error_code(asio::error::broken_pipe), 0};
    auto [ec, n] = co_await asio::async_write(out_, bufs, use_tuple);
    co_return IoResult{ec, n};
  }

 private:
  // Asio makes the descriptor non-blocking, and the flag belongs to the open file, which a
  // terminal shares with the shell that started us: give the shell its blocking terminal back.
  static void restore(asio::posix::stream_descriptor& d, int flags) noexcept {
    if (d.is_open() && flags >= 0) ::fcntl(d.native_handle(), F_SETFL, flags);
  }

  asio::posix::stream_descriptor in_, out_;
  int in_flags_, out_flags_;
};

// fd 0 and 1 now point at /dev/null: only the stream holds the connection.
void detach_stdio() {
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::close(null);
}

}  // namespace

Result<std::unique_ptr<Stream>> take_stdio_stream(const asio::any_io_executor& ex) {
  struct stat in {};
  if (::fstat(0, &in) != 0)
    return fail(errno_code(errno), fmt::format("--inetd: stdin: {}", std::strerror(errno)));
  if (S_ISSOCK(in.st_mode)) {
    int listening = 0;
    socklen_t l = sizeof listening;
    if (::getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0 && listening != 0)
      return fail(errno_code(EINVAL),
                  "--inetd: stdin is a listening socket (inetd's 'wait' or Accept=no): serve it "
                  "without --inetd, as socket activation");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(0, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      return fail(errno_code(errno), fmt::format("--inetd: stdin: {}", std::strerror(errno)));
    const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return fail(errno_code(errno), fmt::format("--inetd: {}", std::strerror(errno)));
    std::error_code ec;
    std::unique_ptr<Stream> s;
    if (ss.ss_family == AF_UNIX) {
      unix_proto::socket sock(ex);
      sock.assign(unix_proto(), fd, ec);
      if (!ec) s = std::make_unique<SocketStream>(std::move(sock));
    } else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
      ip::tcp::socket sock(ex);
      sock.assign(ss.ss_family == AF_INET ? ip::tcp::v4() : ip::tcp::v6(), fd, ec);
      if (!ec) s = std::make_unique<SocketStream>(std::move(sock));
    } else {
      ec = errno_code(EAFNOSUPPORT);
    }
    if (ec) {
      ::close(fd);
      return fail(ec,
                  fmt::format("--inetd: stdin is a socket duplex cannot serve: {}", ec.message()));
    }
    detach_stdio();
    return s;
  }
  struct stat out {};
  if (::fstat(1, &out) != 0)
    return fail(errno_code(errno), fmt::format("--inetd: stdout: {}", std::strerror(errno)));
  // epoll(7) takes pipes, sockets and terminals, not regular files.
  const auto pollable = [](const struct stat& st) {
    return S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode);
  };
  if (!pollable(in) || !pollable(out))
    return fail(errno_code(EINVAL),
                fmt::format("--inetd: {} is a regular file; give a connected socket or pipes "
                            "(printf 'hi\\n' | duplex serve --inetd | cat)",
                            pollable(in) ? "stdout" : "stdin"));
  const int in_fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
  const int out_fd = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (in_fd < 0 || out_fd < 0) {
    const int e = errno;
    if (in_fd >= 0) ::close(in_fd);
    if (out_fd >= 0) ::close(out_fd);
    return fail(errno_code(e), fmt::format("--inetd: {}", std::strerror(e)));
  }
  detach_stdio();
  return std::unique_ptr<Stream>(std::make_unique<PipeStream>(ex, in_fd, out_fd));
}

}  // namespace duplex::net
