// SocketStream over real sockets: try_read_some (what has arrived, never a wait) and the peer
// a TCP listener learns from accept itself.
#include "duplex/net/socket_stream.hpp"

#include <sys/socket.h>

#include <string>

#include <gtest/gtest.h>

#include "duplex/net/endpoint.hpp"
#include "duplex/net/listener.hpp"

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

}  // namespace
}  // namespace duplex::net
