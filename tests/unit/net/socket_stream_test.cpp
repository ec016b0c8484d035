// SocketStream over real sockets: try_read_some (what has arrived, never a wait), the peer
// a TCP listener learns from accept itself, and the splice(2) calls between a pipe and the socket
// (exactly the bytes asked, in order, nothing more taken; a pipe without a reader).
#include "duplex/net/socket_stream.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "duplex/net/endpoint.hpp"
#include "duplex/net/listener.hpp"
#include "duplex/net/memory_stream.hpp"

namespace duplex::net {
namespace {

std::string as_string(const char* p, std::size_t n) {
  return std::string(p, n);
}

TEST(SocketStream, TryReadSomeTakesWhatArrivedAndNeverWaits) {
  asio::io_context io;
  unix_proto::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  SocketStream s(std::move(a));
  char buf[16];
  auto r = s.try_read_some(asio::buffer(buf));
  EXPECT_EQ(r.ec, asio::error::would_block) << "nothing sent yet: " << r.ec.message();
  EXPECT_EQ(r.n, 0u);

  ASSERT_EQ(::send(b.native_handle(), "abc", 3, 0), 3);
  r = s.try_read_some(asio::buffer(buf));
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(as_string(buf, r.n), "abc");
  EXPECT_EQ(s.try_read_some(asio::buffer(buf)).ec, asio::error::would_block) << "all taken";

  ASSERT_EQ(::send(b.native_handle(), "0123456789", 10, 0), 10);
  r = s.try_read_some(asio::buffer(buf, 4));
  EXPECT_EQ(as_string(buf, r.n), "0123") << "no more than the buffer holds";
  r = s.try_read_some(asio::buffer(buf));
  EXPECT_EQ(as_string(buf, r.n), "456789");

  b.shutdown(asio::socket_base::shutdown_send);
  EXPECT_EQ(s.try_read_some(asio::buffer(buf)).ec, asio::error::eof);
}

TEST(SocketStream, AcceptedTcpPeerIsTheClientsAddress) {
  asio::io_context io;
  Endpoint ep;
  ep.transport = Transport::tcp;
  ep.host = "127.0.0.1";
  ep.port = 0;
  auto listener = Listener::open(io, ep);
  ASSERT_TRUE(listener) << listener.message();
  ip::tcp::socket client(io);
  client.connect({asio::ip::make_address("127.0.0.1"), listener->endpoint().port});
  std::unique_ptr<Stream> accepted;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto got = co_await listener->accept(io.get_executor());
        if (got) accepted = std::move(*got);
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(accepted);
  const auto port = client.local_endpoint().port();
  EXPECT_EQ(accepted->peer().address, "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(accepted->peer().client_key, "127.0.0.1");
  EXPECT_FALSE(accepted->peer().uid.has_value());
}

// Everything `fd` holds now (non-blocking reads until it would block or ends).
std::string drain(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// One end of a new Unix socket pair whose other end is `peer`.
unix_proto::socket paired_with(unix_proto::socket& peer) {
  unix_proto::socket a(peer.get_executor());
  asio::local::connect_pair(a, peer);
  return a;
}

// A SocketStream `s` over one end of a Unix socket pair (`b` the other) and a pipe `p`.
class SocketStreamSplice : public ::testing::Test {
 protected:
  SocketStreamSplice() {
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~SocketStreamSplice() override {
    for (int fd : p)
      if (fd >= 0) ::close(fd);
  }

  asio::io_context io;
  unix_proto::socket b{io};
  SocketStream s{paired_with(b)};
  int p[2] = {-1, -1};
};

TEST(SocketStream, OnlyPlainSocketsSplice) {
  asio::io_context io;
  unix_proto::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  SocketStream s(std::move(a));
  EXPECT_TRUE(s.splices());
  auto mem = make_memory_pair(io.get_executor());
  EXPECT_FALSE(mem.a->splices()) << "a memory stream has no descriptor to splice to";
}

TEST_F(SocketStreamSplice, WriteSplicedSendsTheHeadThenExactlyNBytesOfThePipe) {
  // A pipe holding the whole payload (the promise write_spliced needs), and a socket buffer much
  // smaller, so that the write waits for room while the other end drains on a thread.
  ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  const int pipe_size = ::fcntl(p[1], F_GETPIPE_SZ);
  ASSERT_GT(pipe_size, 4096);
  const std::string after = "left in the pipe";
  const std::string payload = pattern(static_cast<std::size_t>(pipe_size) - after.size());
  const int small = 8192;
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const std::string all = payload + after;
  ASSERT_EQ(::write(p[1], all.data(), all.size()), static_cast<ssize_t>(all.size()));
  std::string got;
  std::thread reader([&, fd = b.native_handle()] {
    char buf[65536];
    while (got.size() < 5 + payload.size()) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  const std::string h1 = "he", h2 = "ad:";
  const std::array<asio::const_buffer, 2> head{asio::buffer(h1), asio::buffer(h2)};
  IoResult r;
  asio::co_spawn(
      io, [&]() -> awaitable<void> { r = co_await s.write_spliced(head, p[0], payload.size()); },
      asio::detached);
  io.run();
  reader.join();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.n, 5 + payload.size());
  EXPECT_EQ(got.size(), 5 + payload.size());
  EXPECT_TRUE(got == "head:" + payload) << "bytes differ";
  char rest[64];
  const ssize_t n = ::read(p[0], rest, sizeof rest);
  EXPECT_EQ(std::string(rest, static_cast<std::size_t>(std::max<ssize_t>(n, 0))), after)
      << "exactly the payload is taken from the pipe";
}

TEST_F(SocketStreamSplice, ReadSplicedMovesExactlyNBytesIntoThePipe) {
  const std::string payload = pattern(2'000'000), next = "NEXTFRAME";
  // The sender on a thread: the pipe (64 KiB) fills, and read_spliced must wait for our reader
  // below while the socket has more, and for the socket while it has none.
  std::thread sender([&, fd = b.native_handle()] {
    const std::string all = payload + next;
    for (std::size_t off = 0; off < all.size();) {
      const ssize_t n = ::send(fd, all.data() + off, all.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  });
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    while (got.size() < payload.size()) {
      const ssize_t n = ::read(p[0], buf, sizeof buf);
      if (n <= 0) return;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  IoResult r;
  asio::co_spawn(
      io, [&]() -> awaitable<void> { r = co_await s.read_spliced(p[1], payload.size()); },
      asio::detached);
  io.run();
  reader.join();
  sender.join();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.n, payload.size());
  EXPECT_TRUE(got == payload) << "bytes differ";
  char buf[64];
  auto t = s.try_read_some(asio::buffer(buf));
  EXPECT_EQ(std::string(buf, t.n), next) << "what follows the payload stays on the socket";
}

TEST_F(SocketStreamSplice, ReadSplicedIntoAPipeWithoutAReaderIsBrokenPipe) {
  std::signal(SIGPIPE, SIG_IGN);  // as every duplex process has it
  ::close(std::exchange(p[0], -1));
  ASSERT_EQ(::send(b.native_handle(), "payload", 7, 0), 7);
  IoResult r;
  asio::co_spawn(
      io, [&]() -> awaitable<void> { r = co_await s.read_spliced(p[1], 7); }, asio::detached);
  io.run();
  EXPECT_EQ(r.ec, std::errc::broken_pipe) << r.ec.message();
  (void)drain(b.native_handle());
}

}  // namespace
}  // namespace duplex::net
