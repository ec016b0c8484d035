// Smoke test of the fixtures: a server starts, answers a raw client, stops on SIGTERM with 0.
#include <gtest/gtest.h>

#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {

TEST(Smoke, ServerAnswersRawClientAndStops) {
  TestServer server;
  SocketClient c(server.url());
  c.send_all("hello");
  EXPECT_EQ(c.recv_exact(5), "HELLO");
  c.close();
  EXPECT_EQ(server.stop(), (ExitStatus{true, 0}));
}

}  // namespace duplex::test
