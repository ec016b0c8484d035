// Connection: the client side of one connection — dial, handshake, frames in and out, upper calls.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "duplex/core/byte_buffer.hpp"
#include "duplex/core/bytes.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

/// A client-side failure, already phrased as the one line a user sees.
class ClientError : public std::runtime_error {
 public:
  enum class Kind { connect, closed, timeout, protocol, remote };
  ClientError(Kind k, const std::string& what, std::uint16_t remote_code = 0)
      : std::runtime_error(what), kind_(k), remote_code_(remote_code) {}
  Kind kind() const noexcept { return kind_; }
  /// For Kind::remote: the ERROR frame's code (a duplex::errc value).
  std::uint16_t remote_code() const noexcept { return remote_code_; }

 private:
  Kind kind_;
  std::uint16_t remote_code_;
};

enum class Protocol {
  detect,  // try the framed handshake; if the server echoes it upper-cased (the seed's
           // server.py), continue on the same connection with the raw protocol
  framed,  // framed only: a raw server is an error
  raw,     // the seed's protocol: send bytes, read as many back
};

struct ClientOptions {
  Protocol protocol = Protocol::detect;
  std::chrono::milliseconds timeout{10'000};  // for each reply; zero waits forever
  std::string agent = "duplex";
};

struct Frame {
  wire::MsgType type{};
  Bytes payload;
};

class Connection {
 public:
  /// Dials `ep` and (unless raw) performs the handshake. Throws ClientError.
  static awaitable<Connection> open(const net::Endpoint& ep, ClientOptions opt);

  bool framed() const noexcept { return framed_; }
  const wire::Welcome& welcome() const noexcept { return welcome_; }
  net::Stream& stream() noexcept { return *stream_; }

  /// One upper request and its reply (framed or raw). Throws ClientError.
  awaitable<std::string> upper(std::string_view msg);

  /// Writes one encoded frame (framed connections).
  awaitable<void> write(const Bytes& frame);
  /// Reads the next frame. An ERROR frame is thrown as ClientError(remote). Throws on EOF.
  /// `timeout` applies (zero waits forever).
  awaitable<Frame> read_frame();
  /// Half-closes our side.
  awaitable<void> shutdown_send() { return stream_->shutdown_send(); }

 private:
  Connection(std::unique_ptr<net::Stream> s, net::Endpoint ep, ClientOptions opt)
      : stream_(std::move(s)), ep_(std::move(ep)), opt_(std::move(opt)) {}
  awaitable<void> handshake();
  awaitable<std::size_t> read_some_with_timeout(std::span<std::byte> into);
  awaitable<void> read_exact(std::span<std::byte> into);

  std::unique_ptr<net::Stream> stream_;
  net::Endpoint ep_;
  ClientOptions opt_;
  bool framed_ = false;
  wire::Welcome welcome_;
  ByteBuffer in_;  // received, not yet decoded
};

}  // namespace duplex::client
