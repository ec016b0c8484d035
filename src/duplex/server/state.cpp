// CommandSlots: running commands counted per server and per client, under one lock.
#include "duplex/server/state.hpp"

#include <fmt/format.h>

namespace duplex::server {

bool CommandSlots::acquire(const std::string& client, const ExecSettings& s, std::string& why) {
  std::lock_guard lock(mu_);
  if (total_ >= s.max_commands) {
    why = fmt::format("too many commands running on this server (limit {})", s.max_commands);
    return false;
  }
  auto& mine = per_client_[client];
  if (mine >= s.max_commands_per_client) {
    why = fmt::format("too many commands running for this client (limit {})",
                      s.max_commands_per_client);
    return false;
  }
  ++mine;
  ++total_;
  return true;
}

void CommandSlots::release(const std::string& client) {
  std::lock_guard lock(mu_);
  if (auto it = per_client_.find(client); it != per_client_.end() && --it->second == 0)
    per_client_.erase(it);
  --total_;
}

std::size_t CommandSlots::running() const {
  std::lock_guard lock(mu_);
  return total_;
}

}  // namespace duplex::server
