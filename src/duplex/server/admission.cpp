// Admission implementation: per-address counts, trusted transports, the reserved slots, and the
// refusal a client can read.
#include "duplex/server/admission.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "duplex/server/framed_session.hpp"

namespace duplex::server {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;

bool AddressCounts::try_take(const std::string& key, std::size_t cap) {
  std::lock_guard lock(mu_);
  auto& n = open_[key];
  if (n >= cap) {
    if (n == 0) open_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void AddressCounts::give_back(const std::string& key) noexcept {
  std::lock_guard lock(mu_);
  const auto it = open_.find(key);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

std::size_t AddressCounts::open(const std::string& key) const {
  std::lock_guard lock(mu_);
  const auto it = open_.find(key);
  return it == open_.end() ? 0 : it->second;
}

bool trusted_transport(const net::Peer& peer, const services::AuthPolicy& auth) noexcept {
  if (!peer.uid) return false;
  const uid_t uid = *peer.uid;
  return uid == 0 || uid == ::geteuid() ||
         std::find(auth.allowed_uids.begin(), auth.allowed_uids.end(), uid) !=
             auth.allowed_uids.end();
}

std::size_t reserved_slots(const Limits& limits) noexcept {
  return std::min(limits.reserved_connections, limits.max_connections / 2);
}

awaitable<void> turn_away(std::unique_ptr<net::Stream> stream, errc code, std::string text) {
  co_await turn_away(*stream, code, std::move(text));
}

awaitable<void> turn_away(net::Stream& stream, errc code, std::string text) {
  // Give a framed client a moment to show its first byte, so that it can be told why.
  asio::steady_timer limit(stream.get_executor(), std::chrono::milliseconds(500));
  std::array<std::byte, 64> first{};
  auto r = co_await (stream.read_some(asio::buffer(first)) || limit.async_wait(use_tuple));
  if (r.index() == 0) {
    auto [ec, n] = std::get<0>(r);
    if (!ec && n > 0 && first[0] == std::byte{0}) {
      auto f = error_frame(code, std::move(text));
      limit.expires_after(std::chrono::milliseconds(500));
      co_await (stream.write(asio::buffer(f)) || limit.async_wait(use_tuple));
    }
  }
  stream.close();
}

}  // namespace duplex::server
