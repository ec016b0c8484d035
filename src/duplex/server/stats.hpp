// Stats: a snapshot of every worker's sessions and the server's counters, and the JSON document
// `duplex stats` reads. Rows are gathered by posting to each worker (a session's entry is touched
// only on its own thread), so the serving paths pay no lock and no atomic for them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "duplex/net/asio.hpp"
#include "duplex/services/stats.hpp"

namespace duplex::server {

struct ServerState;
class IoPool;

/// One open connection, as stats show it.
struct ConnectionRow {
  std::uint64_t id = 0;
  std::string peer;       // the client's address (the stream's Peer: PROXY-carried when proxied)
  std::string via;        // the balancer it came through (PROXY protocol); empty: direct
  std::string listener;   // the bound URL that accepted it
  std::string transport;  // tcp | unix
  std::string protocol;   // SessionEntry::mode: raw, framed, tls+framed, raw-exec, new, tls, ...
  std::string service;    // upper, exec, stats, raw-exec, or "-" before the protocol is known
  std::string state;      // pending (handshake/auth), running (a command), closing, open
  std::string identity;   // how it authenticated; empty: it did not
  std::string command;    // the running command; empty: none
  double age_s = 0, idle_s = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
};

/// The server's counters since start (ServerState), bytes including open connections'.
struct StatsCounters {
  std::uint64_t open = 0, accepted = 0, refused_by_cap = 0, penalised = 0, auth_failures = 0,
                protocol_errors = 0, unauthenticated = 0, early_dropped = 0, commands_started = 0,
                commands_failed = 0, commands_running = 0, commands_queued = 0, bytes_in = 0,
                bytes_out = 0;
};

struct StatsSnapshot {
  std::vector<ConnectionRow> connections;  // by id: oldest first
  StatsCounters counters;
  double uptime_s = 0;
  std::size_t workers = 0;
};

/// Gathers every worker's rows (one post to each, in turn) and reads the counters. Completes on
/// the caller's executor; any thread but a worker's own blocking call.
awaitable<StatsSnapshot> take_snapshot(ServerState& state, IoPool& pool,
                                       std::chrono::steady_clock::time_point started);

/// The document (docs/PROTOCOL.md, Stats) as compact JSON of at most `max_bytes`: the newest
/// rows are left out when all do not fit, and "connections_omitted" says how many.
std::string stats_json(const StatsSnapshot& s, const ServerState& state, std::size_t max_bytes);

/// What the framed sessions' stats service asks (services::StatsSource).
class ServerStats final : public services::StatsSource {
 public:
  ServerStats(ServerState& state, IoPool& pool)
      : state_(state), pool_(pool), started_(std::chrono::steady_clock::now()) {}
  awaitable<std::string> document(std::size_t max_bytes) override;

 private:
  ServerState& state_;
  IoPool& pool_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace duplex::server
