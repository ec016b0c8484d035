// Tests for net::Listener::open: bound addresses, and each refusal as a Result whose detail is
// one line naming the address. Real sockets on 127.0.0.1 and in a temp directory.
#include "duplex/net/listener.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace duplex::net {
namespace {

Endpoint must_parse(const std::string& url) {
  auto ep = parse_endpoint(url);
  EXPECT_TRUE(ep) << ep.message();
  return ep ? *ep : Endpoint{};
}

TEST(ListenerOpen, TcpPortZeroGetsARealPort) {
  asio::io_context ctx;
  auto l = Listener::open(ctx, must_parse("tcp://127.0.0.1:0"));
  ASSERT_TRUE(l) << l.message();
  EXPECT_NE(l->endpoint().port, 0);
  EXPECT_EQ(l->endpoint().host, "127.0.0.1");
}

TEST(ListenerOpen, PortInUseIsOneLineNamingTheAddress) {
  asio::io_context ctx;
  auto first = Listener::open(ctx, must_parse("tcp://127.0.0.1:0"));
  ASSERT_TRUE(first) << first.message();
  const std::string url = first->endpoint().url();
  auto second = Listener::open(ctx, first->endpoint());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().value(), EADDRINUSE);
  EXPECT_EQ(second.message(),
            "cannot listen on " + url + ": address already in use (is another server running?)");
}

TEST(ListenerOpen, UnixSocketIsOwnerOnlyAndRemovedWithTheListener) {
  test::TempDir dir;
  const std::string path = dir.file("s");
  asio::io_context ctx;
  {
    auto l = Listener::open(ctx, must_parse("unix://" + path));
    ASSERT_TRUE(l) << l.message();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
}

TEST(ListenerOpen, AMovedFromListenerLeavesTheSocketFileToTheNewOwner) {
  test::TempDir dir;
  // The moved-from listener must not remove the file (it used to get away with it only because
  // its moved-from path happened to be empty).
  const std::string path = dir.file("s");
  asio::io_context ctx;
  auto l = Listener::open(ctx, must_parse("unix://" + path));
  ASSERT_TRUE(l) << l.message();
  std::optional<Listener> moved;
  {
    Listener from = std::move(*l);
    moved.emplace(std::move(from));
  }  // `from`, moved from, is destroyed here
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  moved.reset();
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
}

TEST(ListenerOpen, LiveUnixServerIsNotDisplaced) {
  test::TempDir dir;
  const std::string path = dir.file("s");
  asio::io_context ctx;
  auto first = Listener::open(ctx, must_parse("unix://" + path));
  ASSERT_TRUE(first) << first.message();
  auto second = Listener::open(ctx, must_parse("unix://" + path));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.message(),
            "cannot listen on unix://" + path + ": another server is listening there");
}

TEST(ListenerOpen, StaleUnixSocketFileIsReplaced) {
  test::TempDir dir;
  const std::string path = dir.file("s");
  asio::io_context ctx;
  {
    // A bound socket that never listens: connecting to it is refused, as to a dead server's file.
    unix_proto::socket stale(ctx, unix_proto());
    stale.bind(unix_proto::endpoint(path));
  }
  ASSERT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  auto l = Listener::open(ctx, must_parse("unix://" + path));
  EXPECT_TRUE(l) << l.message();
}

TEST(ListenerOpen, PathThatIsNotASocketIsLeftAlone) {
  test::TempDir dir;
  const std::string path = dir.file("precious.txt");
  std::ofstream(path) << "keep";
  asio::io_context ctx;
  auto l = Listener::open(ctx, must_parse("unix://" + path));
  ASSERT_FALSE(l);
  EXPECT_EQ(l.message(),
            "cannot listen on unix://" + path + ": the path exists and is not a socket");
  std::ifstream f(path);
  std::string content;
  std::getline(f, content);
  EXPECT_EQ(content, "keep");
}

TEST(ListenerOpen, DatagramEndpointIsRefused) {
  asio::io_context ctx;
  auto l = Listener::open(ctx, must_parse("udp://127.0.0.1:0"));
  ASSERT_FALSE(l);
  EXPECT_EQ(l.message(), "cannot listen on udp://127.0.0.1:0: not a stream transport");
}

}  // namespace
}  // namespace duplex::net
