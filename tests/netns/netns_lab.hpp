// NetnsLab: several "hosts" on one machine for multi-host tests. Each host is a network
// namespace with eth0 on a bridge that itself lives in a namespace of its own, so no packet ever
// reaches the machine's real network. Everything is removed at destruction, whatever the test did.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace duplex::test {

class NetnsLab {
 public:
  /// Builds `hosts` hosts on 10.200.0.0/24 (host i is 10.200.0.(10+i), default route on eth0;
  /// IPv6 link-local addresses usable at once).
  /// On failure `why` says what could not be made (not root, no `ip`, no bridge or veth support)
  /// and the result is null; the caller skips with that message.
  static std::unique_ptr<NetnsLab> create(int hosts, std::string& why);
  /// Only the loopback interface, up: one isolated host (for tc qdiscs on lo).
  static std::unique_ptr<NetnsLab> create_loopback_only(std::string& why);
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  /// The namespace name of host i (unique per process and lab: "dpx<pid>l<n>h<i>").
  const std::string& host(int i) const { return hosts_.at(static_cast<std::size_t>(i)); }
  static std::string address(int i) { return "10.200.0." + std::to_string(10 + i); }
  /// `ip netns exec HOST argv...`: runs argv inside host i (exec'd: the pid is argv's own).
  std::vector<std::string> in(int i, std::vector<std::string> argv) const;
  /// Runs `ip ARGS...` inside host i; returns its stderr on failure, empty on success.
  std::string ip(int i, std::vector<std::string> args) const;

 private:
  NetnsLab() = default;
  // Runs a command that builds the lab; false and `why` set when it failed.
  bool step(std::vector<std::string> argv, std::string& why);
  // Removes namespaces left by earlier runs whose process is gone (killed before its destructor).
  static void remove_stale();

  std::string prefix_;
  std::vector<std::string> namespaces_;  // everything we made, removed in reverse
  std::vector<std::string> hosts_;
};

/// A long-running process in a lab host, e.g. `duplex serve`; its stderr is drained on a thread
/// so a chatty server never blocks. Killed and reaped at destruction.
class HostProcess {
 public:
  explicit HostProcess(std::vector<std::string> argv);
  ~HostProcess();
  pid_t pid() const { return proc_.pid(); }
  Process& process() { return proc_; }
  /// Reads stdout until `count` lines starting with `prefix` came; returns their rest (e.g. the
  /// URLs of "listening on URL"). Fewer on timeout or EOF.
  std::vector<std::string> wait_lines(const std::string& prefix, std::size_t count,
                                      std::chrono::milliseconds timeout = 15s);
  std::string stderr_text();

 private:
  Process proc_;
  std::thread drain_;
  std::mutex mu_;
  std::string err_;
};

}  // namespace duplex::test
