// Exchange: write the request, read until the whole reply is in, compare.
#include "duplex/loadgen/exchange.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::loadgen {

Message make_message(std::size_t size, std::uint32_t seed, Verify v, bool framed) {
  Message m;
  const std::string payload = make_payload(size, seed);
  m.expected = expected_reply(payload, v);
  m.payload_size = size;
  m.framed = framed;
  m.verify = v;
  if (framed) {
    const bool echo = v == Verify::echo;
    m.reply_type = echo ? wire::MsgType::pong : wire::MsgType::upper_reply;
    wire::encode_frame(echo ? wire::MsgType::ping : wire::MsgType::upper_request, as_bytes(payload),
                       m.request);
  } else {
    const auto b = as_bytes(payload);
    m.request.assign(b.begin(), b.end());
  }
  return m;
}

Outcome Exchanger::io_failed(std::error_code ec) {
  if (ec == asio::error::operation_aborted) return Outcome::aborted;
  detail_ = ec == asio::error::eof ? std::string("the server closed the connection")
                                   : fmt::format("connection lost: {}", ec.message());
  return Outcome::lost;
}

awaitable<Outcome> Exchanger::run(net::Stream& s, const Message& m) {
  auto [ec, n] = co_await s.write(asio::buffer(m.request));
  if (ec) co_return io_failed(ec);
  have_ = 0;
  // Not a conditional expression around co_await: GCC 12 miscompiles that (the coroutine never
  // resumed its caller).
  if (m.framed) co_return co_await read_framed(s, m);
  co_return co_await read_raw(s, m);
}

// Reads until at least `want` bytes are held, never asking for more than `want` in all: with one
// request outstanding nothing beyond its reply should come.
awaitable<Outcome> Exchanger::fill(net::Stream& s, std::size_t want) {
  if (buf_.size() < want) buf_.resize(want);
  while (have_ < want) {
    auto [ec, n] = co_await s.read_some(asio::buffer(buf_.data() + have_, want - have_));
    if (ec) co_return io_failed(ec);
    have_ += n;
  }
  co_return Outcome::ok;
}

awaitable<Outcome> Exchanger::read_raw(net::Stream& s, const Message& m) {
  // The tutorial's protocol has no framing: the reply to N bytes is N bytes, in any pieces.
  if (auto o = co_await fill(s, m.payload_size); o != Outcome::ok) co_return o;
  const std::string_view got(reinterpret_cast<const char*>(buf_.data()), m.payload_size);
  if (!reply_matches(m.verify, m.expected, got)) {
    detail_ = "the reply is not the expected bytes";
    co_return Outcome::verify;
  }
  co_return Outcome::ok;
}

awaitable<Outcome> Exchanger::read_framed(net::Stream& s, const Message& m) {
  if (auto o = co_await fill(s, wire::kHeaderSize); o != Outcome::ok) co_return o;
  const auto len = *wire::announced_length(ByteView(buf_.data(), have_));
  const auto type = static_cast<wire::MsgType>(buf_[4]);
  if (type == wire::MsgType::error) {
    // Read the ERROR whole (it is small) to say what the server said.
    if (len <= 64 * 1024) {
      if (auto o = co_await fill(s, wire::kHeaderSize + len); o != Outcome::ok) co_return o;
      if (auto e = wire::decode_error(ByteView(buf_.data() + wire::kHeaderSize, len))) {
        detail_ = fmt::format(
            "the server answered ERROR {}",
            e->text.empty() ? make_error_code(static_cast<errc>(e->code)).message() : e->text);
        co_return Outcome::protocol;
      }
    }
    detail_ = "the server answered with a malformed ERROR";
    co_return Outcome::protocol;
  }
  if (type != m.reply_type || len != m.payload_size) {
    detail_ = fmt::format("the server answered {} of {} bytes, not {} of {}", wire::type_name(type),
                          len, wire::type_name(m.reply_type), m.payload_size);
    co_return Outcome::protocol;
  }
  if (auto o = co_await fill(s, wire::kHeaderSize + len); o != Outcome::ok) co_return o;
  const std::string_view got(reinterpret_cast<const char*>(buf_.data() + wire::kHeaderSize), len);
  if (!reply_matches(m.verify, m.expected, got)) {
    detail_ = "the reply is not the expected bytes";
    co_return Outcome::verify;
  }
  co_return Outcome::ok;
}

}  // namespace duplex::loadgen
