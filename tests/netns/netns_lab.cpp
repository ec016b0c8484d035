// NetnsLab implementation: `ip` (iproute2) commands, each checked; teardown by `ip netns del`.
#include "netns/netns_lab.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace duplex::test {
namespace {

int g_labs = 0;

std::string first_line(std::string s) {
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

}  // namespace

void NetnsLab::remove_stale() {
  std::error_code ec;
  static const std::regex ours(R"(dpx(\d+)l\d+(br|h\d+))");
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, ours)) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(m[1].str()));
    if (owner == ::getpid() || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
    run({"ip", "netns", "del", name}, {}, 10s);
  }
}

bool NetnsLab::step(std::vector<std::string> argv, std::string& why) {
  const auto r = run(argv, {}, 10s);
  if (r.status == ExitStatus{true, 0}) return true;
  why = fmt::format("'{}' failed: {}", fmt::join(argv, " "), first_line(r.err));
  return false;
}

std::unique_ptr<NetnsLab> NetnsLab::create(int hosts, std::string& why) {
  if (::geteuid() != 0) {
    why = "needs root to create network namespaces (ip netns add); CI runs as root";
    return nullptr;
  }
  remove_stale();
  std::unique_ptr<NetnsLab> lab(new NetnsLab);
  lab->prefix_ = fmt::format("dpx{}l{}", ::getpid(), g_labs++);
  const std::string br = lab->prefix_ + "br";
  try {
    if (!lab->step({"ip", "netns", "add", br}, why)) return nullptr;
  } catch (const std::exception& e) {
    why = fmt::format("cannot run ip (iproute2): {}", e.what());
    return nullptr;
  }
  lab->namespaces_.push_back(br);
  // Snooping off: the bridge floods multicast to every port, as a plain switch would.
  if (!lab->step({"ip", "-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"},
                 why) ||
      !lab->step({"ip", "-n", br, "link", "set", "br0", "up"}, why))
    return nullptr;
  for (int i = 0; i < hosts; ++i) {
    const std::string h = fmt::format("{}h{}", lab->prefix_, i);
    const std::string port = fmt::format("v{}", i);
    if (!lab->step({"ip", "netns", "add", h}, why)) return nullptr;
    lab->namespaces_.push_back(h);
    lab->hosts_.push_back(h);
    if (!lab->step({"ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", h},
                   why) ||
        !lab->step({"ip", "-n", br, "link", "set", port, "master", "br0", "up"}, why) ||
        !lab->step(
            {"ip", "-n", h, "addr", "add", address(i) + "/24", "broadcast", "+", "dev", "eth0"},
            why) ||
        // No duplicate address detection: the link-local address is usable at once, not a
        // second or two after the link comes up (the address is unique on this bridge anyway).
        !lab->step({"ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"},
                   why) ||
        !lab->step({"ip", "-n", h, "link", "set", "eth0", "up"}, why) ||
        !lab->step({"ip", "-n", h, "link", "set", "lo", "up"}, why) ||
        // 255.255.255.255 and the multicast groups follow the default route.
        !lab->step({"ip", "-n", h, "route", "add", "default", "dev", "eth0"}, why))
      return nullptr;
  }
  return lab;
}

std::unique_ptr<NetnsLab> NetnsLab::create_loopback_only(std::string& why) {
  if (::geteuid() != 0) {
    why = "needs root to create network namespaces (ip netns add); CI runs as root";
    return nullptr;
  }
  remove_stale();
  std::unique_ptr<NetnsLab> lab(new NetnsLab);
  lab->prefix_ = fmt::format("dpx{}l{}", ::getpid(), g_labs++);
  const std::string h = lab->prefix_ + "h0";
  try {
    if (!lab->step({"ip", "netns", "add", h}, why)) return nullptr;
  } catch (const std::exception& e) {
    why = fmt::format("cannot run ip (iproute2): {}", e.what());
    return nullptr;
  }
  lab->namespaces_.push_back(h);
  lab->hosts_.push_back(h);
  if (!lab->step({"ip", "-n", h, "link", "set", "lo", "up"}, why)) return nullptr;
  return lab;
}

NetnsLab::~NetnsLab() {
  // Deleting a namespace deletes its interfaces; a veth pair goes with either end.
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    const auto r = run({"ip", "netns", "del", *it}, {}, 10s);
    EXPECT_EQ(r.status, (ExitStatus{true, 0}))
        << "cannot remove namespace " << *it << ": " << r.err;
  }
}

std::vector<std::string> NetnsLab::in(int i, std::vector<std::string> argv) const {
  std::vector<std::string> out{"ip", "netns", "exec", host(i)};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string NetnsLab::ip(int i, std::vector<std::string> args) const {
  std::vector<std::string> argv{"ip", "-n", host(i)};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run(argv, {}, 10s);
  if (r.status == ExitStatus{true, 0}) return {};
  return r.err.empty() ? std::string("failed") : first_line(r.err);
}

HostProcess::HostProcess(std::vector<std::string> argv) : proc_(std::move(argv)) {
  drain_ = std::thread([this] {
    while (auto chunk = proc_.read_stderr_some(std::chrono::hours(24))) {
      std::lock_guard lock(mu_);
      err_ += *chunk;
    }
  });
}

HostProcess::~HostProcess() {
  proc_.signal(SIGTERM);
  if (!proc_.wait(5s)) {
    proc_.signal(SIGKILL);
    proc_.wait(5s);
  }
  if (drain_.joinable()) drain_.join();
}

std::vector<std::string> HostProcess::wait_lines(const std::string& prefix, std::size_t count,
                                                 std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto line = proc_.read_line(left);
    if (!line) break;
    if (line->rfind(prefix, 0) == 0) out.push_back(line->substr(prefix.size()));
  }
  return out;
}

std::string HostProcess::stderr_text() {
  std::lock_guard lock(mu_);
  return err_;
}

}  // namespace duplex::test
