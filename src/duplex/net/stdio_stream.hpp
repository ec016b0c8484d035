// The connection of `duplex serve --inetd`: stdin/stdout, either one connected socket (inetd,
// systemd's Accept=yes, systemd-socket-activate --inetd) or a pair of pipes.
#pragma once

#include <memory>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

/// Takes fds 0 and 1 as one Stream on `ex`: a SocketStream when fd 0 is a connected TCP or Unix
/// socket (then fd 1 is the same socket), else a pipe stream reading fd 0 and writing fd 1 (a
/// pipe or a terminal; its peer is "stdio"). The stream gets copies of its own (close-on-exec)
/// and fds 0 and 1 become /dev/null, so closing the stream is the end the peer sees. A failure
/// (one line) names the fd: a regular file or a listening socket cannot be a connection.
Result<std::unique_ptr<Stream>> take_stdio_stream(const asio::any_io_executor& ex);

}  // namespace duplex::net
