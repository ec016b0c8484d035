// Settings: what a reload (SIGHUP) may change — the limits, the exec service's settings and the
// trusted balancers — published as immutable snapshots that sessions on any thread read without a
// lock of their own.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "duplex/core/limits.hpp"
#include "duplex/server/proxy.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::server {

struct Settings {
  Limits limits;
  services::ExecSettings exec;
  /// --proxy-protocol, --trusted-proxy: judged at accept from the snapshot then in force.
  ProxySettings proxy;
};

/// The settings in force. A session takes one snapshot when it begins and keeps it to its end,
/// so a reload changes what new connections get and never what an open one was promised.
/// Every member may be called from any thread.
class SettingsCell {
 public:
  SettingsCell() : current_(std::make_shared<const Settings>()) {}
  SettingsCell(const SettingsCell&) = delete;
  SettingsCell& operator=(const SettingsCell&) = delete;

  std::shared_ptr<const Settings> get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void set(Settings s) {
    auto next = std::make_shared<const Settings>(std::move(s));
    std::lock_guard lock(mu_);
    current_.swap(next);  // the old snapshot is freed outside the lock, by its last reader
  }
  /// A copy of the current settings changed by `f`, then published.
  template <class F>
  void update(F&& f) {
    Settings s = *get();
    std::forward<F>(f)(s);
    set(std::move(s));
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Settings> current_;
};

/// One line per option whose value differs, named as on the command line
/// ("max-connections 10000 -> 5"), for the reload's log. Empty when nothing changed.
std::vector<std::string> describe_changes(const Settings& before, const Settings& after);

}  // namespace duplex::server
