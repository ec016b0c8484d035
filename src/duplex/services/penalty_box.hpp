// Penalty box: source addresses that keep failing authentication are refused for a while
// (sshd's PerSourcePenalties). Shared by every worker thread; the front asks it at accept.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "duplex/services/exec_settings.hpp"

namespace duplex::services {

class PenaltyBox {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PenaltyBox(PenaltySettings s = {}) : settings_(s) {}
  void configure(PenaltySettings s);

  /// A failed authentication from `client_key` (net::Peer::client_key: the address without its
  /// port). Returns true when this failure put the address in the box.
  bool record_failure(std::string_view client_key, Clock::time_point now = Clock::now());
  /// A success clears the address's failures (not a penalty already running).
  void record_success(std::string_view client_key);
  /// How long `client_key` is still refused; zero when it is not.
  std::chrono::milliseconds refused_for(std::string_view client_key,
                                        Clock::time_point now = Clock::now());
  /// Addresses tracked (bounded: the oldest entries go first when it grows past kMaxTracked).
  std::size_t tracked() const;

  static constexpr std::size_t kMaxTracked = 65536;

 private:
  struct Entry {
    std::size_t failures = 0;
    Clock::time_point window_start{};
    Clock::time_point refused_until{};
    std::chrono::milliseconds last_penalty{0};
  };
  PenaltySettings settings_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace duplex::services
