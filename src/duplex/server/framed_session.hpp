// The framed protocol's session: preface and HELLO, then each frame handed to the service that
// owns its type (services::ServiceTable), every reply through one Outbox. docs/PROTOCOL.md is
// the contract.
#pragma once

#include <cstddef>
#include <string>

#include "duplex/core/bytes.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/buffer_pool.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

/// Serves a framed client whose first `n` bytes are in `first`, until it ends.
awaitable<void> serve_framed(net::Stream& stream, ServerState& state, SessionEntry& entry,
                             PooledBuffer first, std::size_t n);

/// An encoded ERROR frame with the code's standard text when `text` is empty.
Bytes error_frame(errc code, std::string text = {});

}  // namespace duplex::server
