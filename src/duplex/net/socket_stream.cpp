// SocketStream: TCP and Unix stream sockets behind the Stream interface. The socket-level work
// (options, SO_PEERCRED, the hang-up watch, keepalive) is in socket_ops, shared with TLS.
#include "duplex/net/socket_stream.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

namespace duplex::net {

SocketStream::SocketStream(ip::tcp::socket s) : SocketStream(ConnectedSocket(std::move(s))) {}

SocketStream::SocketStream(ip::tcp::socket s, const ip::tcp::endpoint& remote) : s_(std::move(s)) {
  auto& sock = std::get<ip::tcp::socket>(s_);
  tune_socket(sock);
  peer_ = tcp_peer(remote);
}

SocketStream::SocketStream(unix_proto::socket s) : SocketStream(ConnectedSocket(std::move(s))) {}

SocketStream::SocketStream(ConnectedSocket s) : s_(std::move(s)) {
  std::visit(
      [this](auto& sock) {
        tune_socket(sock);
        peer_ = socket_peer(sock);
      },
      s_);
}

ConnectedSocket SocketStream::release() && {
  return std::move(s_);
}

asio::any_io_executor SocketStream::get_executor() {
  return std::visit([](auto& s) -> asio::any_io_executor { return s.get_executor(); }, s_);
}

awaitable<std::tuple<std::error_code>> SocketStream::wait_readable() {
  // Nothing is buffered above a plain socket, so the socket's readiness is the answer. Not a
  // coroutine: Asio's awaitable is returned as it is (one frame less per idle connection).
  return std::visit([](auto& s) { return s.async_wait(asio::socket_base::wait_read, use_tuple); },
                    s_);
}

namespace {

// Completes a read with an IoResult instead of Asio's (error, bytes), keeping the handler's
// executor, allocator and cancellation slot (so that `read_some(b) || timer` still cancels it).
template <typename Handler>
struct CompleteAsIoResult {
  Handler handler;

  using executor_type = asio::associated_executor_t<Handler>;
  executor_type get_executor() const noexcept { return asio::get_associated_executor(handler); }
  using allocator_type = asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler); }
  using cancellation_slot_type = asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return asio::get_associated_cancellation_slot(handler);
  }

  void operator()(std::error_code ec, std::size_t n) { std::move(handler)(IoResult{ec, n}); }
};

}  // namespace

awaitable<IoResult> SocketStream::read_some(asio::mutable_buffer into) {
  // Not a coroutine: Asio's own awaitable for the read, completed as an IoResult. An idle
  // connection waits here, and a frame of our own would cost each one its bytes.
  return asio::async_initiate<const asio::use_awaitable_t<>, void(IoResult)>(
      [this](auto handler, asio::mutable_buffer b) {
        std::visit(
            [&](auto& s) {
              s.async_read_some(b, CompleteAsIoResult<decltype(handler)>{std::move(handler)});
            },
            s_);
      },
      asio::use_awaitable, into);
}

IoResult SocketStream::try_read_some(asio::mutable_buffer into) noexcept {
  // recv(2) with MSG_DONTWAIT: non-blocking for this call only, whatever mode Asio keeps the
  // socket in. Errors in Asio's category, as read_some() reports them.
  const ssize_t n = ::recv(native_handle(), into.data(), into.size(), MSG_DONTWAIT);
  if (n > 0) return {{}, static_cast<std::size_t>(n)};
  if (n == 0) return {into.size() == 0 ? std::error_code{} : make_error_code(asio::error::eof), 0};
  const int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
    return {make_error_code(asio::error::would_block), 0};
  return {std::error_code(e, asio::error::get_system_category()), 0};
}

IoResult SocketStream::peek(asio::mutable_buffer into) noexcept {
  const ssize_t n = ::recv(native_handle(), into.data(), into.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return {{}, static_cast<std::size_t>(n)};
  if (n == 0) return {make_error_code(asio::error::eof), 0};
  const int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
    return {make_error_code(asio::error::would_block), 0};
  return {std::error_code(e, asio::error::get_system_category()), 0};
}

awaitable<IoResult> SocketStream::write_all(std::span<const asio::const_buffer> bufs) {
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return asio::async_write(s, bufs, use_tuple); }, s_);
  co_return IoResult{ec, n};
}

namespace {

std::error_code system_error(int e) {
  return {e, asio::error::get_system_category()};
}

}  // namespace

awaitable<IoResult> SocketStream::write_spliced(std::span<const asio::const_buffer> head,
                                                int pipe_fd, std::size_t n) {
  const int fd = native_handle();
  // splice(2) to a socket waits for room unless the socket is non-blocking; Asio makes it so at
  // its first asynchronous operation, this says it for certain.
  std::error_code ec;
  std::visit([&](auto& s) { s.native_non_blocking(true, ec); }, s_);
  if (ec) co_return IoResult{ec, 0};
  auto wait_writable = [this] {
    return std::visit(
        [](auto& s) { return s.async_wait(asio::socket_base::wait_write, use_tuple); }, s_);
  };
  std::size_t done = 0;
  // The head with MSG_MORE (held back, as a cork would) so that it leaves with the start of the
  // payload instead of in a segment of its own.
  std::vector<iovec> iov;
  iov.reserve(head.size());
  for (const auto& b : head)
    if (b.size() > 0) iov.push_back({const_cast<void*>(b.data()), b.size()});
  std::size_t first = 0;
  while (first < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + first;
    msg.msg_iovlen = iov.size() - first;
    const ssize_t k = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | (n > 0 ? MSG_MORE : 0));
    if (k < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN && e != EWOULDBLOCK) co_return IoResult{system_error(e), done};
      if (auto [wec] = co_await wait_writable(); wec) co_return IoResult{wec, done};
      continue;
    }
    done += static_cast<std::size_t>(k);
    for (auto left = static_cast<std::size_t>(k); left > 0;) {
      auto& v = iov[first];
      const std::size_t t = std::min(left, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + t;
      v.iov_len -= t;
      left -= t;
      if (v.iov_len == 0) ++first;
    }
  }
  while (n > 0) {
    const ssize_t k = ::splice(pipe_fd, nullptr, fd, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (k > 0) {
      done += static_cast<std::size_t>(k);
      n -= static_cast<std::size_t>(k);
      continue;
    }
    // The caller promised the bytes: a pipe that ends first is a broken promise, not an EOF.
    if (k == 0) co_return IoResult{make_error_code(std::errc::io_error), done};
    const int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) co_return IoResult{system_error(e), done};
    // Waiting is for room in the socket: a pipe that ran dry broke the promise (another reader
    // took the bytes), and waiting for the socket would then spin.
    pollfd p{pipe_fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0)
      co_return IoResult{make_error_code(std::errc::io_error), done};
    if (auto [wec] = co_await wait_writable(); wec) co_return IoResult{wec, done};
  }
  co_return IoResult{{}, done};
}

awaitable<IoResult> SocketStream::read_spliced(int pipe_fd, std::size_t n) {
  const int fd = native_handle();
  std::size_t done = 0;
  while (n > 0) {
    const ssize_t k = ::splice(fd, nullptr, pipe_fd, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (k > 0) {
      done += static_cast<std::size_t>(k);
      n -= static_cast<std::size_t>(k);
      continue;
    }
    if (k == 0) co_return IoResult{make_error_code(asio::error::eof), done};
    const int e = errno;
    if (e == EINTR) continue;
    if (e == EPIPE) co_return IoResult{make_error_code(std::errc::broken_pipe), done};
    if (e != EAGAIN && e != EWOULDBLOCK) co_return IoResult{system_error(e), done};
    // Either the socket has nothing yet or the pipe is full. A full pipe blocks us, as a write to
    // our stdout would (the reader's pace is the backpressure the server relies on); an empty
    // socket is waited for on the event loop.
    pollfd p{pipe_fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 0) {
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      continue;
    }
    if ((p.revents & POLLOUT) == 0) continue;  // POLLERR: the next splice says EPIPE
    auto [wec] = co_await std::visit(
        [](auto& s) { return s.async_wait(asio::socket_base::wait_read, use_tuple); }, s_);
    if (wec) co_return IoResult{wec, done};
  }
  co_return IoResult{{}, done};
}

awaitable<std::error_code> SocketStream::wait_hangup() {
  return wait_socket_hangup(get_executor(), native_handle());
}

awaitable<void> SocketStream::shutdown_send() {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.shutdown(asio::socket_base::shutdown_send, ignored);
      },
      s_);
  co_return;
}

void SocketStream::cancel() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.cancel(ignored);
      },
      s_);
}

void SocketStream::close() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.close(ignored);
      },
      s_);
}

void SocketStream::abort() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.set_option(asio::socket_base::linger(true, 0), ignored);
        s.close(ignored);
      },
      s_);
}

bool SocketStream::is_open() const noexcept {
  return std::visit([](const auto& s) { return s.is_open(); }, s_);
}

void SocketStream::enable_keepalive(std::chrono::seconds idle,
                                    std::chrono::seconds interval) noexcept {
  // A Unix peer cannot vanish without the kernel telling us.
  if (std::holds_alternative<ip::tcp::socket>(s_))
    enable_tcp_keepalive(native_handle(), idle, interval);
}

int SocketStream::native_handle() noexcept {
  return std::visit([](auto& s) { return static_cast<int>(s.native_handle()); }, s_);
}

}  // namespace duplex::net
