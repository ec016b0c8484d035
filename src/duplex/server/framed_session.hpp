// The framed protocol's session: preface and HELLO, then each frame handed to the service that
// owns its type (services::ServiceTable), every reply through one Outbox. docs/PROTOCOL.md is
// the contract.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "duplex/core/bytes.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/server/chunk.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

/// Serves a framed client whose first bytes are `first`, until it ends. With nothing buffered it
/// waits for more with `wait` (the session's wait buffer, chunk.hpp).
awaitable<void> serve_framed(net::Stream& stream, ServerState& state, SessionEntry& entry,
                             Chunk first, std::span<std::byte> wait);

/// An encoded ERROR frame with the code's standard text when `text` is empty.
Bytes error_frame(errc code, std::string text = {});

}  // namespace duplex::server
