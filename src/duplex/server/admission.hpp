// Admission: what a stream front decides at accept besides the plain connection cap — open
// connections per client address, the slots reserved for the server's owner, and turning a
// refused client away with a reason it can read. No logging here (refusals.* does that).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "duplex/core/errors.hpp"
#include "duplex/core/limits.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::server {

/// Open connections per client key (net::Peer::client_key: the address without its port, or
/// "uid:N" on a Unix socket). Taken at accept on the control thread, given back on the session's
/// worker when it ends, hence the lock. Only keys with open connections are kept.
class AddressCounts {
 public:
  /// Takes a place for `key` unless `cap` connections from it are open already.
  bool try_take(const std::string& key, std::size_t cap);
  /// Gives one of `key`'s places back.
  void give_back(const std::string& key) noexcept;
  /// Open connections from `key` (for tests and stats).
  std::size_t open(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::size_t> open_;
};

/// A Unix-socket peer whose uid may run commands without a token (exec's allowed uids), root,
/// or the server's own uid: its transport says who it is. Such a peer may take the reserved
/// slots and counts as authenticated for the frame limit.
bool trusted_transport(const net::Peer& peer, const services::AuthPolicy& auth) noexcept;

/// How many of limits.max_connections only trusted peers may take: reserved_connections, but
/// never more than half of them (so `--max-connections 1` still admits anyone).
std::size_t reserved_slots(const Limits& limits) noexcept;

/// Refuses a connection: a framed client (first byte NUL, awaited briefly) gets ERROR `code`
/// with `text`; anyone else is closed at once.
awaitable<void> turn_away(std::unique_ptr<net::Stream> stream, errc code, std::string text);
/// The same, for a stream its caller owns (a session refusing its own connection).
awaitable<void> turn_away(net::Stream& stream, errc code, std::string text);

}  // namespace duplex::server
