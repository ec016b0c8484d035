// The stats client: one STATS_REQUEST over an authenticated connection, and the reply (JSON) as
// the aligned table `duplex stats` prints.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "duplex/client/exec_session.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::client {

/// Connects and authenticates as exec does (`req`'s endpoint, token, TLS and trust; nothing
/// else of it is used), sends STATS_REQUEST and returns STATS_REPLY's JSON text, all within
/// `timeout`. A refusal is the server's ERROR (auth_required for an unauthenticated client).
awaitable<Result<std::string>> fetch_stats(const ExecRequest& req,
                                           std::chrono::milliseconds timeout);

/// How the table orders its connections.
enum class StatsSort { age, idle, bytes, peer, id };
/// "age" (oldest first, the default), "idle" (longest idle first), "bytes" (most in+out first),
/// "peer", "id"; nullopt for anything else.
std::optional<StatsSort> parse_stats_sort(std::string_view name) noexcept;

/// The document as text: one aligned row per connection, then the counters. A document that is
/// not the server's JSON is a Failure (bad_message) naming what is wrong.
Result<std::string> stats_table(std::string_view json, StatsSort sort);

}  // namespace duplex::client
