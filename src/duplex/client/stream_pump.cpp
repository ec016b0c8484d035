// pump_stream implementation: an uploader and a downloader; the downloader's end is the pump's.
#include "duplex/client/stream_pump.hpp"

#include <cerrno>
#include <cstring>
#include <system_error>
#include <variant>

#include <fmt/format.h>

#include "duplex/client/terminal.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;
using net::use_tuple;

constexpr std::size_t kChunk = 64 * 1024;

// Never returns on its own: after the half-close (or a write the server refused) there is nothing
// left to send, and the downloader decides how the pump ends.
awaitable<Status> upload(net::Stream& s, StdinReader& in) {
  for (;;) {
    auto chunk = co_await in.next();
    if (!chunk) co_return std::move(chunk).failure();
    if (chunk->empty()) {
      co_await s.shutdown_send();
      break;
    }
    // A refused write means the server has gone or closed: the read side says which.
    if (auto [ec, n] = co_await s.write(asio::buffer(*chunk)); ec) break;
  }
  // Parked until cancelled by the downloader's end (a timer as a wait for "never").
  asio::steady_timer park(s.get_executor(), asio::steady_timer::time_point::max());
  auto [ec] = co_await park.async_wait(use_tuple);
  co_return fail(ec ? ec : make_error_code(asio::error::operation_aborted), "cancelled");
}

awaitable<Status> download(net::Stream& s, int out_fd, const std::string& url) {
  Bytes buf(kChunk);
  for (;;) {
    auto [ec, n] = co_await s.read_some(asio::buffer(buf));
    if (ec == asio::error::eof) co_return Status{};
    if (ec) co_return fail(ec, fmt::format("connection to {} lost: {}", url, ec.message()));
    if (!write_all(out_fd, ByteView(buf.data(), n)))
      co_return fail(std::error_code(errno, std::system_category()),
                     fmt::format("cannot write to stdout: {}", std::strerror(errno)));
  }
}

}  // namespace

awaitable<Status> pump_stream(net::Stream& s, StdinReader& in, int out_fd, const std::string& url) {
  auto r = co_await (upload(s, in) || download(s, out_fd, url));
  co_return std::visit([](Status& st) { return std::move(st); }, r);
}

}  // namespace duplex::client
