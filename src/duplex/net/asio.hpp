// Asio 1.22 vocabulary in one place: aliases and completion tokens. An Asio upgrade changes this
// file.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/channel.hpp>

namespace duplex {
using asio::awaitable;
}

namespace duplex::net {

namespace ip = asio::ip;
using unix_proto = asio::local::stream_protocol;

/// Completion token that turns errors into values: `auto [ec, n] = co_await op(..., use_tuple)`.
/// Expected endings (EOF, reset, cancellation) are then plain branches, not exceptions.
/// (as_tuple moved from asio::experimental to asio:: in 1.23.)
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace duplex::net
