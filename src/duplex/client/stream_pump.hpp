// pump_stream: nc's contract over a connection that carries bytes as they are (--stream, raw).
#pragma once

#include <string>

#include "duplex/client/stdin_reader.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::client {

/// Copies `in` to `s` and `s` to `out_fd`, both unchanged and as they come (no line or message
/// limit). At the end of `in` our side is half-closed (the server reads EOF) and the copy to
/// `out_fd` goes on until the server closes its side, which ends the pump: Status{} then. A server
/// that closes early also ends it (what was left of `in` is not sent). Fails when the connection
/// is reset or lost, or `out_fd` cannot be written. `url` names the server in messages.
awaitable<Status> pump_stream(net::Stream& s, StdinReader& in, int out_fd, const std::string& url);

}  // namespace duplex::client
