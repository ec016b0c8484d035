// StdinReader implementation: a blocking read loop with credits and a wake-up pipe.
#include "duplex/client/stdin_reader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <system_error>
#include <utility>

namespace duplex::client {

std::optional<Bytes> read_if_ready(int fd, std::size_t chunk) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do
    r = ::poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  // Not a Bytes of `chunk`: that would be zeroed first (64 KiB of memset to learn that /dev/null
  // is empty). As large as the reader thread's reads, so that stdin is taken in the same steps.
  const std::unique_ptr<std::byte[]> buf(new std::byte[chunk]);
  ssize_t n;
  do
    n = r < 0 ? -1 : ::read(fd, buf.get(), chunk);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return std::nullopt;  // fd 0 is non-blocking, and was drained
  // End of file when n is 0; a read error ends stdin too.
  return Bytes(buf.get(), buf.get() + (n > 0 ? n : 0));
}

Result<std::unique_ptr<StdinReader>> StdinReader::start(const asio::any_io_executor& ex, int fd,
                                                        std::size_t chunk, std::ptrdiff_t depth) {
  std::unique_ptr<StdinReader> r(new StdinReader(ex, fd, chunk, depth));
  if (::pipe2(r->wake_, O_CLOEXEC) != 0)
    return fail(std::error_code(errno, std::system_category()),
                "cannot read stdin: no pipe for its reader thread");
  // The thread inherits the mask of the thread that starts it.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    r->thread_ = std::thread([p = r.get()] { p->run(); });
  } catch (const std::system_error& e) {  // std::thread reports failure only this way
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return fail(e.code(), "cannot read stdin: no thread for its reader");
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}

StdinReader::StdinReader(const asio::any_io_executor& ex, int fd, std::size_t chunk,
                         std::ptrdiff_t depth)
    : ch_(ex, static_cast<std::size_t>(depth) + 1), credits_(depth), fd_(fd), chunk_(chunk) {}

StdinReader::~StdinReader() {
  if (thread_.joinable()) {
    stop_ = true;
    credits_.release();  // in case it waits for a credit
    const char c = 0;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);  // in case it waits in poll
    thread_.join();
  }
  close_pipe();
}

awaitable<Result<Bytes>> StdinReader::next() {
  auto [ec, b] = co_await ch_.async_receive(net::use_tuple);
  if (ec) co_return fail(ec, "reading stdin: " + ec.message());
  credits_.release();
  co_return std::move(b);
}

void StdinReader::run() noexcept {
  for (;;) {
    credits_.acquire();
    if (stop_) return;
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r;
    do
      r = ::poll(p, 2, -1);
    while (r < 0 && errno == EINTR);
    if (stop_ || p[1].revents != 0) return;
    Bytes b(chunk_);
    const ssize_t n = r < 0 ? -1 : ::read(fd_, b.data(), b.size());
    if (n > 0) {
      b.resize(static_cast<std::size_t>(n));
      ch_.try_send(std::error_code{}, std::move(b));  // a credit guarantees room
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {  // EAGAIN: fd 0 is non-blocking
      credits_.release();
      continue;
    }
    ch_.try_send(std::error_code{}, Bytes{});  // end of file (a read error ends it too)
    return;
  }
}

void StdinReader::close_pipe() noexcept {
  for (int& f : wake_)
    if (f >= 0) ::close(std::exchange(f, -1));
}

}  // namespace duplex::client
