// Large messages: no 1024-byte limit in raw mode (the reply streams while the request is still
// being written), and the framed protocol's maximum frame at its edge.
#include <exception>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::uint32_t kDefaultMaxFrame = 1u << 20;

TEST(Large, EightMebibyteRawMessageWrittenWhileReplyIsRead) {
  std::string data = random_bytes(8 * kMiB, 8);
  data[0] = 'q';  // raw mode: the first byte must not be NUL
  for (std::size_t v = 0; v < 256; ++v)
    data[1 + v] = static_cast<char>(v);  // every byte value
  const std::string want = ascii_upper(data);
  ASSERT_NE(want, data);

  TestServer server;
  SocketClient c(server.url());
  // Write and read at once: neither side may wait for the whole message before the other moves.
  std::exception_ptr write_error;
  std::thread writer([&] {
    try {
      c.send_all(data);
    } catch (...) {
      write_error = std::current_exception();
    }
  });
  std::string reply;
  try {
    reply = c.recv_exact(data.size(), std::chrono::seconds(60));
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  writer.join();
  EXPECT_FALSE(write_error);
  EXPECT_TRUE(same_bytes(reply, want));

  // Nothing extra follows, and the connection still works for a small message.
  c.send_all("done");
  EXPECT_EQ(c.recv_exact(4), "DONE");
  EXPECT_TRUE(serves_raw(server.url()));
}

TEST(Large, FramedRequestOfExactlyMaxFrameIsAnswered) {
  std::string payload = random_bytes(kDefaultMaxFrame, 1);
  for (std::size_t v = 0; v < 256; ++v)
    payload[v] = static_cast<char>(v);
  // Big frames before authentication need the limit raised (PreAuth tests the default 16 KiB).
  TestServer server({"--max-frame-unauthenticated", "1048576"});
  SocketClient c(server.url());
  const auto welcome = framed_handshake(c);
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->max_frame, kDefaultMaxFrame);

  c.send_all(frame(msg::upper_request, payload));
  const RawFrame r = read_frame(c, std::chrono::seconds(30));
  EXPECT_EQ(r.type, msg::upper_reply);
  EXPECT_EQ(r.flags, 0);
  EXPECT_TRUE(same_bytes(r.payload, ascii_upper(payload)));

  // The session goes on after a maximum-size frame.
  c.send_all(frame(msg::upper_request, "after"));
  const RawFrame small = read_frame(c);
  EXPECT_EQ(small.type, msg::upper_reply);
  EXPECT_EQ(small.payload, "AFTER");
}

TEST(Large, FramedRequestOneByteOverMaxFrameIsRefusedFromItsHeader) {
  TestServer server({"--max-frame-unauthenticated", "1048576"});
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  // Only the header and a little of the payload: the refusal must not wait for the rest
  // (PROTOCOL.md §3: rejected as soon as the header has arrived).
  c.send_all(frame_header(msg::upper_request, kDefaultMaxFrame + 1) + std::string(1000, 'x'));
  EXPECT_TRUE(error_then_close(c, 11));  // frame_too_large
  EXPECT_TRUE(serves_framed(server.url()));
}

TEST(Large, HugeLengthInHeaderIsRefused) {
  TestServer server;
  SocketClient c(server.url());
  ASSERT_TRUE(framed_handshake(c));
  c.send_all(frame_header(msg::upper_request, 0xffffffffu));
  EXPECT_TRUE(error_then_close(c, 11));
  EXPECT_TRUE(serves_raw(server.url()));
}

}  // namespace
}  // namespace duplex::test
