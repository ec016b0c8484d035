// Reference for bench/suite.py: the tutorial's upper-echo as idiomatic Asio C++20 coroutines
// (co_spawn per connection, async_read_some into a 4 KiB buffer, async_write, one io_context
// thread), the shape of Asio's own cpp20/coroutines/echo_server.cpp.
// Usage: asio_upper [PORT=0]   (binds 127.0.0.1; prints "listening on tcp://127.0.0.1:PORT")
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<void> session(tcp::socket socket) {
  std::array<char, 4096> data{};
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(data), use_tuple);
    if (ec) co_return;  // EOF or reset: the client is done
    std::transform(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), data.begin(),
                   [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; });
    auto [wec, written] = co_await asio::async_write(socket, asio::buffer(data, n), use_tuple);
    if (wec) co_return;
  }
}

asio::awaitable<void> listener(tcp::acceptor acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) continue;  // EMFILE and friends: the backlog waits for a close
    socket.set_option(tcp::no_delay(true), ec);
    co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
    asio::io_context io(1);
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    std::printf("listening on tcp://127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    co_spawn(io, listener(std::move(acceptor)), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_upper: %s\n", e.what());
    return 1;
  }
}
