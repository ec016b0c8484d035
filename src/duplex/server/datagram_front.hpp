// Datagram front: one UDP or Unix datagram socket serving every peer: each datagram gets one
// reply datagram (its bytes upper-cased), discovery probes get who this server is.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/server/front.hpp"

namespace duplex::server {

/// What one datagram front has done since it started. Written by the front's thread; atomics so
/// that a stats reader on another thread sees whole values.
struct DatagramCounters {
  std::atomic<std::uint64_t> received{0};         // datagrams taken from the socket
  std::atomic<std::uint64_t> replied{0};          // reply datagrams sent (upper and discovery)
  std::atomic<std::uint64_t> truncated{0};        // longer than we receive: not answered
  std::atomic<std::uint64_t> dropped{0};          // replies that would block or failed to send
  std::atomic<std::uint64_t> unaddressed{0};      // from an unbound Unix socket: no reply address
  std::atomic<std::uint64_t> probes_answered{0};  // valid discovery probes
  std::atomic<std::uint64_t> bad_probes{0};       // discovery prefix, not a valid probe: ignored
  std::atomic<std::uint64_t> receive_errors{0};   // errors the socket reported (ICMP and others)
};

/// Binds `ep` (udp or unixgram) with net::DatagramSocket's rules, joining the group of a
/// multicast address on --multicast-if's interface (ctx.state.multicast_if). Once started it
/// serves on a thread of its own, a batch of datagrams per wake-up, and never waits for a peer;
/// close() wakes and joins that thread.
Result<std::unique_ptr<Front>> open_datagram_front(const net::Endpoint& ep,
                                                   const FrontContext& ctx);
/// The same over a datagram socket bound by a service manager (net::DatagramSocket::adopt).
Result<std::unique_ptr<Front>> adopt_datagram_front(int fd, const FrontContext& ctx);

/// The JSON object of a discovery reply (docs/PROTOCOL.md): name (host name), version, agent,
/// listeners (every URL the server is bound to), services, pid.
std::string discovery_json(const ServerState& state);

}  // namespace duplex::server
