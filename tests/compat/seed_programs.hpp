// Running the seed tutorial's Python programs (../shared/seed/python) unmodified but for the port.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace duplex::test {

/// Why the seed's programs cannot run here (no seed folder, no python3), or empty when they can.
std::string seed_unavailable_reason();

/// Base fixture of the interoperability tests: skipped, with the reason, when the seed's programs
/// cannot run.
class SeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = seed_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

/// Copies seed program `name` (e.g. "client.py") into `dir` with its port 8080 replaced by `port`
/// (the only change the tests allow themselves) and returns the copy's path.
std::string seed_copy(const TempDir& dir, const std::string& name, int port);

/// argv that runs a Python program unbuffered: python3 -u PATH.
std::vector<std::string> python(const std::string& script);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int free_tcp_port();

/// The seed's server.py on a free loopback port, ready once it printed its start-up line.
/// It serves one client at a time and never exits: it is killed at destruction.
class SeedServer {
 public:
  explicit SeedServer(const TempDir& dir);
  ~SeedServer();
  SeedServer(const SeedServer&) = delete;
  SeedServer& operator=(const SeedServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *proc_; }

 private:
  int port_ = 0;
  std::unique_ptr<Process> proc_;
};

/// "exit 1", "signal 9" or "still running": exit statuses compared as text read well in failures.
std::string describe(const std::optional<ExitStatus>& st);

/// bytes.upper(): ASCII a-z mapped, every other byte unchanged.
std::string upper(std::string_view s);
/// Splits on '\n'; a trailing fragment without '\n' is kept as the last element.
std::vector<std::string> split_lines(std::string_view s);

/// What client.py prints before each reply ("服务端返回的数据: "; print() adds the space).
inline constexpr std::string_view kReplyPrefix = "服务端返回的数据: ";
/// The replies client.py printed, in order, without kReplyPrefix.
std::vector<std::string> printed_replies(std::string_view client_stdout);

}  // namespace duplex::test
