// TestServer: the real `duplex serve` binary on port 0 / a temp Unix path, ready when it says so.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace duplex::test {

class TestServer {
 public:
  /// Starts `duplex serve` with `args` (add --listen yourself, or none for tcp://127.0.0.1:0;
  /// with --config, the file names them and `listeners` says how many),
  /// and waits for one "listening on URL" line per listener, then, with TLS (--tls, --tls-only or
  /// a tls:// listener), the "fingerprint SHA256:…" line, then with --metrics the "metrics on
  /// URL" line. Fails the test if it does not start.
  explicit TestServer(std::vector<std::string> args = {}, std::size_t listeners = 0);
  ~TestServer();

  const std::vector<std::string>& urls() const { return urls_; }
  const std::string& url(std::size_t i = 0) const { return urls_.at(i); }
  /// "127.0.0.1:PORT" style address of the first TCP listener (for clients that want host:port).
  int port(std::size_t i = 0) const;
  /// The TLS key's fingerprint the server printed ("SHA256:…"); empty without TLS.
  const std::string& fingerprint() const { return fingerprint_; }
  /// With --metrics: where the metrics endpoint answers ("http://127.0.0.1:PORT/metrics").
  const std::string& metrics_url() const { return metrics_url_; }
  pid_t pid() const { return proc_->pid(); }
  Process& process() { return *proc_; }
  /// SIGTERM and wait; returns the exit status (fails the test if it does not exit in time).
  ExitStatus stop(std::chrono::milliseconds timeout = 5s);
  /// Everything the server wrote to stderr so far (complete once it has exited).
  std::string stderr_text();
  /// Waits until the server's stderr holds `needle` (true), or `timeout` passes or the server
  /// closes stderr without it (false).
  bool wait_stderr(std::string_view needle, std::chrono::milliseconds timeout = 10s);

 private:
  std::unique_ptr<Process> proc_;
  // Drains the server's stderr so that a chatty server never blocks on a full pipe.
  std::thread drain_;
  std::mutex mu_;
  std::condition_variable grew_;  // err_ grew, or stderr ended
  std::string err_;
  bool err_done_ = false;
  std::vector<std::string> urls_;
  std::string fingerprint_;
  std::string metrics_url_;
};

}  // namespace duplex::test
