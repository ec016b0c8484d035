// What every thread of one server shares: limits, exec settings, counters, command slots.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/ssl/context.hpp>
#include "duplex/core/latency_histogram.hpp"
#include "duplex/core/limits.hpp"

#include "duplex/net/asio.hpp"
#include "duplex/server/admission.hpp"
#include "duplex/server/pending.hpp"
#include "duplex/server/proxy.hpp"
#include "duplex/server/settings.hpp"
#include "duplex/services/command_slots.hpp"
#include "duplex/services/exec_settings.hpp"
#include "duplex/services/penalty_box.hpp"
#include "duplex/services/stats.hpp"

namespace duplex::server {

/// The exec service's settings (`duplex serve --exec ...`), defined once in services/.
using ExecSettings = services::ExecSettings;

/// State shared by every thread of one server. Everything mutable here is atomic or locked.
struct ServerState {
  /// Limits and exec settings in force; a reload publishes new ones. A session reads the
  /// snapshot it took when it began (SessionEntry::settings), so there is no `limits` field.
  SettingsCell settings;
  std::string agent;                 // sent in Welcome
  std::string multicast_if;          // --multicast-if: where datagram fronts join their groups
  std::vector<std::string> urls;     // every bound address; set by Server::open before any start
  std::atomic<std::size_t> live{0};  // open client connections
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};  // refused over max_connections
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopping{false};
  /// TLS (--tls or a tls:// listener): the server's context, shared by every worker (OpenSSL
  /// makes connections from one SSL_CTX on many threads); null when no listener has TLS.
  std::shared_ptr<asio::ssl::context> tls;
  std::string tls_fingerprint;     // of the server's key, as clients pin it
  bool tls_only = false;           // --tls-only: every stream listener refuses plaintext
  services::PenaltyBox penalties;  // sources refused after failed authentications
  std::atomic<std::size_t> unauthenticated{0};  // connections not yet past AUTH (or TLS)
  /// The sessions counted in `unauthenticated`, capped at limits.max_unauthenticated (early drop).
  PendingSessions pending{unauthenticated};
  std::atomic<std::uint64_t> auth_failures{0};
  std::atomic<std::uint64_t> penalised{0};  // connections refused by the penalty box
  AddressCounts per_address;                // open connections per client address
  services::CommandSlots commands;  // running and queued commands, per server and per client
  std::atomic<std::uint64_t> commands_started{0};
  ProxyLog proxy_log;  // connections refused over the PROXY protocol
  /// With --metrics (null otherwise): the upper service's round trip, commands' run time.
  std::unique_ptr<LatencyHistogram> upper_round_trip, command_duration;
  /// Commands that could not start, or ended by a signal, a limit or a non-zero status.
  std::atomic<std::uint64_t> commands_failed{0};
  /// Bytes of connections that have closed (an open one's are in its SessionEntry): added once
  /// per connection, never per message.
  std::atomic<std::uint64_t> bytes_in_closed{0}, bytes_out_closed{0};
  /// Answers STATS_REQUEST (server/stats.hpp); null: stats are not served.
  services::StatsSource* stats = nullptr;
  /// Called from a worker thread when `stopping` is set and the last session ended.
  std::function<void()> on_drained;
};

}  // namespace duplex::server
