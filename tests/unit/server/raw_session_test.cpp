// The raw loop over net::make_memory_pair: replies, reads past the wait buffer, what a waiting
// session holds. No sockets.
#include "duplex/server/raw_session.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "duplex/net/memory_stream.hpp"

namespace duplex::server {
namespace {

using namespace std::chrono_literals;
using net::IoResult;

// A stream that counts the writes made through it (each is one reply of the raw loop).
class CountingStream final : public net::Stream {
 public:
  explicit CountingStream(net::Stream& inner) : inner_(inner) {}
  int writes = 0;

  asio::any_io_executor get_executor() override { return inner_.get_executor(); }
  awaitable<std::tuple<std::error_code>> wait_readable() override { return inner_.wait_readable(); }
  awaitable<IoResult> read_some(asio::mutable_buffer into) override {
    return inner_.read_some(into);
  }
  IoResult try_read_some(asio::mutable_buffer into) noexcept override {
    return inner_.try_read_some(into);
  }
  awaitable<std::error_code> wait_hangup() override { return inner_.wait_hangup(); }
  awaitable<void> shutdown_send() override { return inner_.shutdown_send(); }
  void cancel() noexcept override { inner_.cancel(); }
  void close() noexcept override { inner_.close(); }
  void abort() noexcept override { inner_.abort(); }
  bool is_open() const noexcept override { return inner_.is_open(); }

 protected:
  awaitable<IoResult> write_all(std::span<const asio::const_buffer> bufs) override {
    ++writes;
    co_return co_await inner_.write(bufs);
  }

 private:
  net::Stream& inner_;
};

class RawSession : public ::testing::Test {
 protected:
  // Starts serve_raw on the server end, `first` being the first chunk already read.
  void start(const std::string& first, std::size_t chunk = 64 * 1024) {
    pair_ = net::make_memory_pair(io_.get_executor());
    server_ = std::make_unique<CountingStream>(*pair_.b);
    Chunk c{PooledBuffer(chunk), {}};
    std::memcpy(c.pooled.data(), first.data(), first.size());
    c.bytes = std::span(c.pooled.data(), first.size());
    asio::co_spawn(io_, serve_raw(*server_, entry_, std::move(c), wait_, chunk),
                   [this](std::exception_ptr) {
                     ended_ = true;
                     server_->close();  // as run_session does
                   });
  }
  void send(const std::string& bytes) {
    run([&]() -> awaitable<void> { co_await pair_.a->write(asio::buffer(bytes)); });
  }
  // Reads exactly n bytes of reply.
  std::string receive(std::size_t n) {
    std::string got;
    run([&]() -> awaitable<void> {
      char buf[4096];
      while (got.size() < n) {
        const std::size_t want = std::min(sizeof buf, n - got.size());
        auto [ec, k] = co_await pair_.a->read_some(asio::buffer(buf, want));
        if (ec) co_return;
        got.append(buf, k);
      }
    });
    return got;
  }
  template <typename F>
  void run(F f) {
    io_.restart();  // a loop that ran out of work (the session ended) stays stopped until then
    bool done = false;
    asio::co_spawn(io_, f(), [&](std::exception_ptr e) {
      done = true;
      if (e) std::rethrow_exception(e);
    });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(100ms);
    ASSERT_TRUE(done) << "timed out";
    io_.poll();  // let the session go back to its wait
  }

  asio::io_context io_;
  net::MemoryPair pair_;
  std::unique_ptr<CountingStream> server_;
  SessionEntry entry_;
  WaitBuffer wait_{};
  bool ended_ = false;
};

TEST_F(RawSession, AChunkLargerThanTheWaitBufferIsAnsweredInOneReply) {
  start("hi");
  EXPECT_EQ(receive(2), "HI");
  const std::string big(1000, 'q');
  ASSERT_GT(big.size(), kWaitBufferSize);
  send(big);
  EXPECT_EQ(receive(big.size()), std::string(1000, 'Q'));
  EXPECT_EQ(server_->writes, 2) << "the first chunk, then the 1000 bytes in one write";
  EXPECT_EQ(entry_.bytes_in, 1000u);
  EXPECT_EQ(entry_.bytes_out, 1002u);
}

TEST_F(RawSession, MoreThanAChunkIsAnsweredWholeInChunks) {
  start("x", 256);
  EXPECT_EQ(receive(1), "X");
  std::string big;
  for (int i = 0; i < 2000; ++i)
    big.push_back(static_cast<char>(i % 2 ? 'a' + i % 26 : '0' + i % 10));
  send(big);
  std::string want = big;
  for (auto& ch : want)
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
  EXPECT_EQ(receive(big.size()), want);
  EXPECT_GE(server_->writes, 1 + 2000 / 256) << "no chunk is larger than the chunk size";
}

TEST_F(RawSession, AWaitingSessionHoldsNoPooledBuffer) {
  start("hello");
  EXPECT_EQ(receive(5), "HELLO");
  const auto pooled = detail_buffer_pool().size();
  send(std::string(3000, 'z'));  // overflows the wait buffer: a pooled buffer for this one
  EXPECT_EQ(receive(3000), std::string(3000, 'Z'));
  EXPECT_EQ(detail_buffer_pool().size(), pooled)
      << "the buffer taken for the big chunk is back in the pool while the session waits";
  EXPECT_FALSE(ended_);
}

TEST_F(RawSession, HalfCloseEndsTheSessionAfterTheReplies) {
  start("abc");
  send("def");
  run([&]() -> awaitable<void> { co_await pair_.a->shutdown_send(); });
  EXPECT_EQ(receive(6), "ABCDEF");
  EXPECT_TRUE(ended_);
  std::string rest = receive(1);
  EXPECT_EQ(rest, "") << "EOF after the replies";
}

}  // namespace
}  // namespace duplex::server
