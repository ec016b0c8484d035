// describe_changes: the reload's account of what it changed, option by option.
#include "duplex/server/settings.hpp"

#include <chrono>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "duplex/core/authorized_keys.hpp"

namespace duplex::server {
namespace {

std::string text(std::chrono::milliseconds d) {
  return fmt::format("{}s", std::chrono::duration<double>(d).count());
}
template <class T>
std::string text(const T& v) {
  return fmt::format("{}", v);
}
std::string text(bool v) {
  return v ? "on" : "off";
}
std::string text(const std::vector<std::string>& v) {
  return fmt::format("[{}]", fmt::join(v, ", "));
}

class Changes {
 public:
  template <class T>
  void field(std::string_view name, const T& a, const T& b) {
    if (a != b) lines_.push_back(fmt::format("{} {} -> {}", name, text(a), text(b)));
  }
  void note(bool changed, std::string_view line) {
    if (changed) lines_.emplace_back(line);
  }
  std::vector<std::string> take() { return std::move(lines_); }

 private:
  std::vector<std::string> lines_;
};

}  // namespace

std::vector<std::string> describe_changes(const Settings& before, const Settings& after) {
  Changes c;
  const Limits& a = before.limits;
  const Limits& b = after.limits;
  c.field("max-connections", a.max_connections, b.max_connections);
  c.field("max-frame", a.max_frame, b.max_frame);
  c.field("idle-timeout", a.idle_timeout, b.idle_timeout);
  c.field("auth-timeout", a.auth_deadline, b.auth_deadline);
  c.field("max-frame-unauthenticated", a.max_frame_unauthenticated, b.max_frame_unauthenticated);
  c.field("max-unauthenticated", a.max_unauthenticated, b.max_unauthenticated);
  c.field("max-connections-per-address", a.max_connections_per_address,
          b.max_connections_per_address);
  c.field("reserved-connections", a.reserved_connections, b.reserved_connections);
  const services::ExecSettings& x = before.exec;
  const services::ExecSettings& y = after.exec;
  c.field("exec", x.enabled, y.enabled);
  c.field("raw-exec", x.raw, y.raw);
  c.field("max-commands", x.max_commands, y.max_commands);
  c.field("max-commands-per-client", x.max_commands_per_client, y.max_commands_per_client);
  c.field("max-queued-per-client", x.max_queued_per_client, y.max_queued_per_client);
  c.field("max-queue-wait", x.max_queue_wait, y.max_queue_wait);
  c.field("command-timeout", x.policy.max_timeout, y.policy.max_timeout);
  c.field("max-output", x.policy.max_output, y.policy.max_output);
  c.field("kill-grace", x.policy.kill_grace, y.policy.kill_grace);
  c.field("env-allow", x.policy.env_allow, y.policy.env_allow);
  c.field("max-auth-failures", x.penalties.max_failures, y.penalties.max_failures);
  c.field("penalty", x.penalties.penalty, y.penalties.penalty);
  const auto user = [](const services::ExecPolicy& p) {
    return p.run_as ? p.run_as->name : std::string();
  };
  c.field("user", user(x.policy), user(y.policy));
  c.field("allow-uid", fmt::format("{}", fmt::join(x.auth.allowed_uids, ",")),
          fmt::format("{}", fmt::join(y.auth.allowed_uids, ",")));
  // The token itself is never logged, only that it is another one.
  c.note(x.auth.token_key != y.auth.token_key, "token: a new one");
  const auto keys = [](const services::AuthPolicy& p) {
    return p.authorized_keys ? p.authorized_keys->keys().size() : 0;
  };
  c.note(x.auth.authorized_keys_path != y.auth.authorized_keys_path || keys(x.auth) != keys(y.auth),
         fmt::format("authorized-keys: {} key(s) from {}", keys(y.auth),
                     y.auth.authorized_keys_path.empty() ? "none" : y.auth.authorized_keys_path));
  c.field("proxy-protocol", before.proxy.enabled, after.proxy.enabled);
  c.field("trusted-proxy", before.proxy.given, after.proxy.given);
  return c.take();
}

}  // namespace duplex::server
