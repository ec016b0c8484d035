// Connection implementation.
#include "duplex/client/connection.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"
#include "duplex/net/dialer.hpp"

namespace duplex::client {
namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

// Replies larger than this are refused by the client whatever the server announces.
constexpr std::uint32_t kClientMaxFrame = 64u << 20;

}  // namespace

awaitable<Connection> Connection::open(const net::Endpoint& ep, ClientOptions opt) {
  std::unique_ptr<net::Stream> s = co_await [&]() -> awaitable<std::unique_ptr<net::Stream>> {
    try {
      co_return co_await net::dial(ep);
    } catch (const std::system_error& e) {
      throw ClientError(ClientError::Kind::connect, e.what());
    }
  }();
  Connection c(std::move(s), ep, std::move(opt));
  if (c.opt_.protocol != Protocol::raw) co_await c.handshake();
  co_return c;
}

awaitable<std::size_t> Connection::read_some_with_timeout(std::span<std::byte> into) {
  auto buf = asio::buffer(into.data(), into.size());
  std::error_code ec;
  std::size_t n = 0;
  if (opt_.timeout.count() > 0) {
    asio::steady_timer timer(stream_->get_executor(), opt_.timeout);
    auto r = co_await (stream_->read_some(buf) || timer.async_wait(use_tuple));
    if (r.index() == 1)
      throw ClientError(ClientError::Kind::timeout, fmt::format("no reply from {} within {} ms",
                                                                ep_.url(), opt_.timeout.count()));
    std::tie(ec, n) = std::tuple(std::get<0>(r).ec, std::get<0>(r).n);
  } else {
    const auto r = co_await stream_->read_some(buf);
    std::tie(ec, n) = std::tuple(r.ec, r.n);
  }
  if (ec == asio::error::eof)
    throw ClientError(ClientError::Kind::closed,
                      fmt::format("{} closed the connection", ep_.url()));
  if (ec)
    throw ClientError(ClientError::Kind::closed,
                      fmt::format("connection to {} lost: {}", ep_.url(), ec.message()));
  co_return n;
}

awaitable<void> Connection::read_exact(std::span<std::byte> into) {
  while (!into.empty()) {
    const auto n = co_await read_some_with_timeout(into);
    into = into.subspan(n);
  }
}

awaitable<void> Connection::write(const Bytes& frame) {
  auto [ec, n] = co_await stream_->write(asio::buffer(frame));
  if (ec)
    throw ClientError(ClientError::Kind::closed,
                      fmt::format("connection to {} lost: {}", ep_.url(), ec.message()));
}

awaitable<void> Connection::handshake() {
  Bytes hello(wire::kPreface.begin(), wire::kPreface.end());
  wire::encode(wire::Hello{wire::kProtocolVersion, wire::kProtocolVersion, opt_.agent}, hello);
  co_await write(hello);

  // A duplex server answers with a WELCOME (or ERROR) frame. The seed's server.py answers any
  // bytes with bytes.upper() of them, so its reply starts with our own preface: then the
  // connection is usable with the raw protocol once the whole echo has been read.
  std::array<std::byte, wire::kHeaderSize> head{};
  co_await read_exact(head);
  if (std::equal(wire::kPreface.begin(), wire::kPreface.end(), head.begin())) {
    if (opt_.protocol == Protocol::framed)
      throw ClientError(
          ClientError::Kind::protocol,
          fmt::format("{} is not a duplex server (it echoed the handshake)", ep_.url()));
    Bytes rest(hello.size() - head.size());
    co_await read_exact(rest);
    framed_ = false;
    co_return;
  }
  framed_ = true;
  auto space = in_.prepare(head.size());
  std::memcpy(space.data(), head.data(), head.size());
  in_.commit(head.size());
  Frame f = co_await read_frame();
  if (f.type != wire::MsgType::welcome)
    throw ClientError(ClientError::Kind::protocol, fmt::format("{} answered the handshake with {}",
                                                               ep_.url(), wire::type_name(f.type)));
  auto w = wire::decode_welcome(f.payload);
  if (!w)
    throw ClientError(ClientError::Kind::protocol,
                      fmt::format("{} sent a malformed WELCOME", ep_.url()));
  welcome_ = *w;
}

awaitable<Frame> Connection::read_frame() {
  for (;;) {
    auto d = wire::decode_frame(in_.readable(), kClientMaxFrame);
    if (d.status == wire::DecodeStatus::error)
      throw ClientError(ClientError::Kind::protocol,
                        fmt::format("bad frame from {}: {}", ep_.url(), d.error.message()));
    if (d.status == wire::DecodeStatus::frame) {
      Frame f{d.type, Bytes(d.payload.begin(), d.payload.end())};
      in_.consume(d.consumed);
      if (f.type == wire::MsgType::error) {
        auto e = wire::decode_error(f.payload);
        std::string text =
            e ? (e->text.empty() ? make_error_code(static_cast<errc>(e->code)).message() : e->text)
              : "malformed ERROR frame";
        throw ClientError(ClientError::Kind::remote, fmt::format("{}: {}", ep_.url(), text),
                          e ? e->code : 0);
      }
      co_return f;
    }
    // Read at least the rest of the frame in progress, in chunks of 64 KiB or more.
    const auto have = in_.readable();
    std::size_t want = 64 * 1024;
    if (have.size() >= wire::kHeaderSize) {
      ByteReader r(have);
      want = std::max<std::size_t>(want, wire::kHeaderSize + r.u32() - have.size());
    }
    in_.commit(co_await read_some_with_timeout(in_.prepare(want)));
  }
}

awaitable<std::string> Connection::upper(std::string_view msg) {
  if (!framed_) {
    // The seed's protocol has no framing: the reply to N bytes is N bytes.
    co_await write(Bytes(as_bytes(msg).begin(), as_bytes(msg).end()));
    std::string reply(msg.size(), '\0');
    co_await read_exact(std::as_writable_bytes(std::span(reply)));
    co_return reply;
  }
  if (msg.size() > welcome_.max_frame)
    throw ClientError(
        ClientError::Kind::protocol,
        fmt::format("message of {} bytes is larger than the server's frame limit ({} bytes)",
                    msg.size(), welcome_.max_frame));
  Bytes f;
  wire::encode_frame(wire::MsgType::upper_request, as_bytes(msg), f);
  co_await write(f);
  Frame r = co_await read_frame();
  if (r.type != wire::MsgType::upper_reply)
    throw ClientError(ClientError::Kind::protocol,
                      fmt::format("{} answered with {} instead of upper_reply", ep_.url(),
                                  wire::type_name(r.type)));
  co_return std::string(as_chars(r.payload));
}

}  // namespace duplex::client
