// The PROXY protocol on the server: trust, reading the header by peeking (so the client's own
// first bytes stay on the socket for the session's sniff), the carried peer, and its admission.
#include "duplex/server/proxy.hpp"

#include <array>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "duplex/core/errors.hpp"
#include "duplex/net/socket_ops.hpp"
#include "duplex/net/socket_stream.hpp"
#include "duplex/server/admission.hpp"
#include "duplex/server/session.hpp"
#include "duplex/server/state.hpp"
#include "duplex/wire/proxy_header.hpp"

namespace duplex::server {
namespace {

using Clock = std::chrono::steady_clock;
using net::use_tuple;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

bool unix_peer(const net::Peer& peer) {
  return peer.uid.has_value() || peer.address.starts_with("unix:");
}

// How long the header may take from now: what is left of --auth-timeout since accept, or, with
// no such deadline, never forever. Kept here rather than as the entry's deadline, so that the
// refusal is logged with its reason instead of the sweep closing the connection without a word.
milliseconds header_budget(const SessionEntry& entry) {
  const Limits& limits = entry.settings->limits;
  if (limits.auth_deadline.count() == 0)
    return limits.idle_timeout.count() != 0 ? limits.idle_timeout
                                            : milliseconds(std::chrono::minutes(5));
  return std::chrono::duration_cast<milliseconds>(entry.started + limits.auth_deadline -
                                                  Clock::now());
}

// The client a header carries, in the form a direct peer of that kind has (net::tcp_peer), with
// no credentials: a Unix-socket balancer's uid says nothing about its clients.
net::Peer carried_peer(const wire::ProxyHeader& h, const net::Peer& balancer) {
  net::Peer p;
  if (h.family == wire::ProxyFamily::unix_socket) {
    p.address = p.client_key =
        h.source.path.empty() ? "unix:?" : fmt::format("unix:{}", h.source.path);
  } else if (h.family == wire::ProxyFamily::inet) {
    asio::ip::address_v4::bytes_type b{};
    std::memcpy(b.data(), h.source.ip.data(), b.size());
    p = net::tcp_peer({asio::ip::address_v4(b), h.source.port});
  } else {
    asio::ip::address_v6::bytes_type b{};
    std::memcpy(b.data(), h.source.ip.data(), b.size());
    p = net::tcp_peer({asio::ip::address_v6(b), h.source.port});
  }
  p.proxied_by = balancer.address;
  return p;
}

// Takes exactly `n` bytes that a peek has shown are there off the socket, into `into`.
awaitable<bool> take(net::SocketStream& s, std::byte* into, std::size_t n) {
  while (n > 0) {
    auto r = s.try_read_some(asio::buffer(into, n));
    if (r.ec == asio::error::would_block) r = co_await s.read_some(asio::buffer(into, n));
    if (r.ec) co_return false;
    into += r.n;
    n -= r.n;
  }
  co_return true;
}

}  // namespace

Status ProxySettings::add_trusted(std::string_view text) {
  if (text == "unix") {
    trust_unix = true;
    given.emplace_back(text);
    return {};
  }
  auto p = parse_address_pattern(text, "--trusted-proxy");
  if (!p)
    return fail(std::errc::invalid_argument,
                p.message() +
                    " (give an IP address, ADDRESS/BITS, a glob such as 10.0.0.*, or "
                    "unix)");
  trusted.push_back(std::move(*p));
  given.emplace_back(text);
  return {};
}

bool ProxySettings::trusts(const net::Peer& peer) const {
  if (!enabled) return false;
  if (unix_peer(peer)) return trust_unix;
  return addresses_allow(trusted, peer.client_key);
}

void ProxyLog::refused(const std::string& line) {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  if (now - last_line_ < std::chrono::seconds(1)) {
    ++unlogged_;
    return;
  }
  if (unlogged_ == 0)
    spdlog::warn("{}", line);
  else
    spdlog::warn("{} (and {} more refused over the PROXY protocol since the last line)", line,
                 unlogged_);
  unlogged_ = 0;
  last_line_ = now;
}

ProxiedClient::~ProxiedClient() {
  if (counts_ != nullptr) counts_->give_back(key_);
}

awaitable<std::unique_ptr<ProxiedClient>> accept_proxy_header(net::Stream& stream,
                                                              ServerState& state,
                                                              SessionEntry& entry) {
  const std::string balancer(entry.peer());
  auto refuse = [&](std::string_view why) {
    state.proxy_log.refused(fmt::format("refused {} (a --trusted-proxy): {}", balancer, why));
  };
  auto* socket = dynamic_cast<net::SocketStream*>(&stream);
  if (socket == nullptr) co_return nullptr;  // not a socket (tests' memory streams): no header
  const milliseconds budget = header_budget(entry);
  if (budget.count() <= 0) co_return nullptr;
  asio::steady_timer limit(stream.get_executor(), budget);
  // The header's bytes so far. The client's own bytes after it are only ever peeked at: the
  // session reads them as it reads any connection's first bytes (the sniff, a ClientHello).
  std::array<std::byte, wire::kProxyMaxSize> buf;
  std::size_t have = 0;
  wire::ProxyHeader h;
  for (;;) {
    auto ready = co_await (socket->wait_readable() || limit.async_wait(use_tuple));
    if (ready.index() == 1) {
      refuse(fmt::format("no whole PROXY header within {:.1f} s ({} bytes of it came)",
                         static_cast<double>(budget.count()) / 1000, have));
      co_return nullptr;
    }
    if (std::get<0>(std::get<0>(ready))) co_return nullptr;  // closed or stopped
    auto peeked = socket->peek(asio::buffer(buf.data() + have, buf.size() - have));
    if (peeked.ec == asio::error::would_block) continue;
    if (peeked.ec) {
      spdlog::debug("[c{}] session ({}): closed before its PROXY header ended ({} bytes)", entry.id,
                    balancer, have + peeked.n);
      co_return nullptr;
    }
    h = wire::decode_proxy_header(ByteView(buf.data(), have + peeked.n));
    if (h.status == wire::ProxyStatus::need_more) {
      // Every byte so far belongs to the header: take them, and wait for the rest.
      if (!co_await take(*socket, buf.data() + have, peeked.n)) co_return nullptr;
      have += peeked.n;
      continue;
    }
    if (h.status == wire::ProxyStatus::not_proxy) {
      refuse("its connection does not start with a PROXY header (send-proxy or send-proxy-v2)");
      co_return nullptr;
    }
    if (h.status == wire::ProxyStatus::error) {
      refuse(fmt::format("bad PROXY header: {}", h.error));
      co_return nullptr;
    }
    if (!co_await take(*socket, buf.data() + have, h.size - have)) co_return nullptr;
    break;
  }
  entry.bytes_in += h.size;
  if (h.command == wire::ProxyCommand::local || h.family == wire::ProxyFamily::unspec) {
    spdlog::debug("[c{}] session ({}): PROXY v{} {}: the balancer's own connection", entry.id,
                  balancer, h.version,
                  h.command == wire::ProxyCommand::local ? "LOCAL" : "UNKNOWN");
  } else {
    stream.replace_peer(carried_peer(h, stream.peer()));
    spdlog::debug("[c{}] session: client {} via {} (PROXY v{})", entry.id, stream.peer().address,
                  balancer, h.version);
  }

  // The carried client meets the checks a direct one meets at accept (stream_front.cpp admit).
  const net::Peer& peer = stream.peer();
  const std::string via = peer.proxied_by.empty() ? "" : " via " + peer.proxied_by;
  if (const auto left = state.penalties.refused_for(peer.client_key); left.count() > 0) {
    state.penalised.fetch_add(1, std::memory_order_relaxed);
    const auto secs = std::chrono::ceil<std::chrono::seconds>(left).count();
    state.proxy_log.refused(fmt::format("refused {}{}: too many failed authentications ({} s left)",
                                        peer.address, via, secs));
    co_await turn_away(stream, errc::penalised,
                       fmt::format("too many failed authentications from {}; try again in {} s",
                                   peer.client_key, secs));
    co_return nullptr;
  }
  const std::size_t cap = entry.settings->limits.max_connections_per_address;
  if (cap == 0) co_return std::make_unique<ProxiedClient>();
  if (!state.per_address.try_take(peer.client_key, cap)) {
    state.rejected.fetch_add(1, std::memory_order_relaxed);
    state.proxy_log.refused(fmt::format("refused {}{}: --max-connections-per-address {} reached",
                                        peer.address, via, cap));
    co_await turn_away(
        stream, errc::too_many_connections,
        fmt::format("too many connections from {}; try again later", peer.client_key));
    co_return nullptr;
  }
  co_return std::make_unique<ProxiedClient>(state.per_address, peer.client_key);
}

void refuse_untrusted_header(ServerState& state, const SessionEntry& entry) {
  state.proxy_log.refused(fmt::format(
      "refused {}: it sent a PROXY header but is not a --trusted-proxy (add the balancer's "
      "address to --trusted-proxy if it is yours)",
      entry.peer()));
}

}  // namespace duplex::server
