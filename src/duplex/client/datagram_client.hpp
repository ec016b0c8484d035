// Datagram client: the upper service over udp:// and unixgram:// (one datagram out, one back, with
// a timeout and retries), every responder of a multicast or broadcast send, and discovery.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::client {

struct DatagramOptions {
  /// How long each try waits for a reply; zero waits forever (and so never retries).
  std::chrono::milliseconds timeout{1000};
  /// How many times an unanswered datagram is sent again.
  int retries = 2;
  /// Treat the address as a broadcast address (SO_BROADCAST) and collect every reply.
  /// 255.255.255.255 is one without being told.
  bool broadcast = false;
  /// Log the steps at info level (shown with -v), in the words a stream client's steps use:
  /// resolve, where datagrams go and replies come from, a try sent again, the first reply.
  bool log_steps = false;
};

/// One reply and who sent it, as a URL (udp://10.0.0.2:8080, udp://[::1]:8080, unixgram:///p).
struct DatagramReply {
  std::string from;
  std::string payload;
};

/// The largest reply read whole; a longer one is refused as truncated, never printed cut short.
inline constexpr std::size_t kMaxReplyDatagram = 256 * 1024;

/// A socket for one destination. Unicast: connected, so the kernel drops datagrams from any
/// other address and reports ICMP port-unreachable. Multicast (224.0.0.0/4, ff00::/8) or
/// broadcast: unconnected, and every responder's reply counts. Over unixgram the client binds a
/// path of its own for replies ($XDG_RUNTIME_DIR or /tmp, mode 0600), removed when the client
/// goes away, also when SIGINT, SIGTERM or SIGHUP ends the process.
/// Every failure's detail is the one line a user sees, naming the address; its code is
/// std::errc::timed_out when nothing answered.
class DatagramClient {
 public:
  static awaitable<Result<DatagramClient>> open(const net::Endpoint& ep, DatagramOptions opt);

  DatagramClient(DatagramClient&&) noexcept;
  DatagramClient& operator=(DatagramClient&&) noexcept;
  ~DatagramClient();

  /// True when every responder's reply counts (multicast group or broadcast address).
  bool to_group() const noexcept;
  const net::Endpoint& endpoint() const noexcept;
  /// The reply path bound for a unixgram destination (empty otherwise).
  std::string reply_path() const;

  /// Sends `msg` as one datagram and waits for its reply, sending it again after each timeout
  /// up to `retries` times. Unicast: exactly one reply. Group: every distinct responder's reply
  /// within the timeout of the first try that got any, in arrival order.
  awaitable<Result<std::vector<DatagramReply>>> request(std::string_view msg);

  struct State;

 private:
  explicit DatagramClient(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

/// The discovery group and its IPv6 link-local twin (docs/PROTOCOL.md, "Discovery").
inline constexpr std::string_view kDiscoveryGroupV4 = "239.255.42.99";
inline constexpr std::string_view kDiscoveryGroupV6 = "ff02::42:99";

struct DiscoverOptions {
  std::uint16_t port = 8080;
  /// How long replies are collected.
  std::chrono::milliseconds timeout{1000};
  bool via_broadcast = true;  // 255.255.255.255:port
  bool via_multicast = true;  // 239.255.42.99:port, and ff02::42:99 on each IPv6 interface
};

/// One server that answered a probe.
struct DiscoveredServer {
  std::string address;  // the responder, udp://10.0.0.2:8080
  std::string name;     // its host name
  std::string version;
  std::string agent;
  std::vector<std::string> services;
  std::vector<std::string> listeners;
  std::int64_t pid = 0;
  std::string json;  // the reply's JSON object as the server sent it
};

/// Probes (twice: lost datagrams are common on a LAN) and collects replies for the timeout.
/// Replies are matched by nonce; one server reached both ways is listed once (same address,
/// name and pid). A reply that is not a discovery reply or whose JSON is not an object is
/// skipped. Fails only when no probe could be sent at all.
awaitable<Result<std::vector<DiscoveredServer>>> discover(DiscoverOptions opt);

}  // namespace duplex::client
