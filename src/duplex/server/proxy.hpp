// Behind a load balancer (--proxy-protocol): which peers may send a PROXY header
// (--trusted-proxy), reading that header before anything else on their connection, and putting
// the client it carries in the peer's place, so that every limit and log line sees the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/authorized_keys.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::server {

struct ServerState;
struct SessionEntry;
class AddressCounts;

/// --proxy-protocol and its --trusted-proxy list. Decided per connection, from the peer accept(2)
/// saw: a trusted peer must open with a PROXY header (or is refused); anyone else is served as a
/// direct client, and refused if it opens with a PROXY header (never believed).
struct ProxySettings {
  bool enabled = false;
  std::vector<AddressPattern> trusted;  // as authorized_keys' from= takes them: IP, CIDR, glob
  bool trust_unix = false;              // "unix": every peer on a Unix-socket listener
  std::vector<std::string> given;       // the values as given, for the reload's log

  /// Adds one --trusted-proxy value: "unix", an IP address, ADDRESS/BITS, or a glob; `!` before
  /// a pattern excludes what it matches. A failure is one line naming the value.
  Status add_trusted(std::string_view text);
  /// Whether `peer` (the real one, from accept) is a balancer whose connections carry a header.
  bool trusts(const net::Peer& peer) const;
};

/// Log lines for connections refused over the PROXY protocol, rate-limited as the early drop's
/// are: one line at once, then at most one a second, with a count of those not shown. Any thread.
class ProxyLog {
 public:
  void refused(const std::string& line);

 private:
  using Clock = std::chrono::steady_clock;
  std::mutex mu_;
  Clock::time_point last_line_{};
  std::uint64_t unlogged_ = 0;
};

/// A balancer's connection once its header is accepted: holds the carried client's place under
/// --max-connections-per-address (when that is on) until the session ends.
class ProxiedClient {
 public:
  ProxiedClient() = default;
  ProxiedClient(AddressCounts& counts, std::string key) noexcept
      : counts_(&counts), key_(std::move(key)) {}
  ~ProxiedClient();
  ProxiedClient(const ProxiedClient&) = delete;
  ProxiedClient& operator=(const ProxiedClient&) = delete;

 private:
  AddressCounts* counts_ = nullptr;
  std::string key_;
};

/// A connection from a trusted balancer (the session's thread, before anything else reads it):
/// reads its PROXY header — within what is left of --auth-timeout since accept, at most
/// wire::kProxyMaxSize bytes, taking none of the client's own bytes off the socket — and
/// replaces the stream's peer with the client it carries (a LOCAL header, such as a health
/// check's, or one without an address keeps the real peer). Then checks that client as accept
/// checks a direct one: the penalty box and --max-connections-per-address. Null when the
/// connection is refused (logged; a framed client is told why): the caller closes it.
awaitable<std::unique_ptr<ProxiedClient>> accept_proxy_header(net::Stream& stream,
                                                              ServerState& state,
                                                              SessionEntry& entry);

/// An untrusted peer opened with a PROXY header on a --proxy-protocol server: logs its refusal.
void refuse_untrusted_header(ServerState& state, const SessionEntry& entry);

}  // namespace duplex::server
