// What every thread of one server shares: limits, exec settings, counters, command slots.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "duplex/core/limits.hpp"
#include "duplex/services/command_slots.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::server {

/// The exec service's settings (`duplex serve --exec ...`), defined once in services/.
using ExecSettings = services::ExecSettings;

/// State shared by every thread of one server. Everything mutable here is atomic or locked.
struct ServerState {
  Limits limits;
  std::string agent;                 // sent in Welcome
  std::string multicast_if;          // --multicast-if: where datagram fronts join their groups
  std::vector<std::string> urls;     // every bound address; set by Server::open before any start
  std::atomic<std::size_t> live{0};  // open client connections
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};  // refused over max_connections
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopping{false};
  ExecSettings exec;
  services::CommandSlots commands;  // running and queued commands, per server and per client
  std::atomic<std::uint64_t> commands_started{0};
  /// Called from a worker thread when `stopping` is set and the last session ended.
  std::function<void()> on_drained;
};

}  // namespace duplex::server
