// Penalty box: failures counted per source address in a window; past the limit the address is
// refused for a penalty that doubles while it keeps failing. Bounded: the entries that changed
// least recently go first.
#include "duplex/services/penalty_box.hpp"

#include <algorithm>
#include <vector>

namespace duplex::services {
namespace {

using std::chrono::milliseconds;

}  // namespace

void PenaltyBox::configure(PenaltySettings s) {
  std::lock_guard lock(mu_);
  settings_ = s;
}

bool PenaltyBox::record_failure(std::string_view client_key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (settings_.max_failures == 0) return false;
  auto it = entries_.find(std::string(client_key));
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxTracked) {
      // Forget the address whose window began longest ago (a scan: this runs only when an
      // attacker spreads failures over kMaxTracked addresses, and each failure costs it a
      // connection). Addresses in the box keep their place only while their penalty runs.
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [&](auto& a, auto& b) {
        const auto ka = std::max(a.second.window_start, a.second.refused_until);
        const auto kb = std::max(b.second.window_start, b.second.refused_until);
        return ka < kb;
      });
      entries_.erase(oldest);
    }
    it = entries_.emplace(std::string(client_key), Entry{}).first;
    it->second.window_start = now;
  }
  Entry& e = it->second;
  if (now - e.window_start > settings_.window) {
    e.failures = 0;
    e.window_start = now;
  }
  ++e.failures;
  if (e.failures < settings_.max_failures) return false;
  // A new penalty: the first is `penalty`, each one while the address keeps failing (within
  // twice its last penalty after it ended) doubles, up to max_penalty.
  const bool repeat = e.last_penalty.count() > 0 && now < e.refused_until + 2 * e.last_penalty;
  milliseconds p = repeat ? std::min(e.last_penalty * 2, settings_.max_penalty)
                          : std::min(settings_.penalty, settings_.max_penalty);
  e.last_penalty = p;
  e.refused_until = now + p;
  e.failures = 0;
  e.window_start = now;
  return true;
}

void PenaltyBox::record_success(std::string_view client_key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(client_key));
  if (it == entries_.end()) return;
  it->second.failures = 0;
  if (it->second.last_penalty.count() == 0) entries_.erase(it);
}

milliseconds PenaltyBox::refused_for(std::string_view client_key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(client_key));
  if (it == entries_.end() || now >= it->second.refused_until) return milliseconds(0);
  return std::chrono::ceil<milliseconds>(it->second.refused_until - now);
}

std::size_t PenaltyBox::tracked() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace duplex::services
